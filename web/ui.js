// ui.js — small DOM helpers shared by every screen: element builder, toasts,
// banners, unread badges, chips and view switching. No app state here; words and
// formats come from i18n.js.

import { t, parseDate, fmtDateTime, fmtAgo } from './i18n.js';

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Build an element. Attributes: class, on<event> handlers, value, booleans, the rest as given. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'value' && 'value' in el) el.value = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace every child of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- words and formats (in the person's language: i18n.js) -------------------

export { parseDate, fmtDateTime, fmtDay, fmtAgo } from './i18n.js';

export const statusLabel = (status) => t(`status.${status}`);
export const priorityLabel = (priority) => t(`priority.${priority}`);

/** A <time> element showing "5 minutes ago" with the full date as tooltip. */
export function timeEl(value, cls = 'muted') {
  const d = parseDate(value);
  if (!d) return null;
  return h('time', { class: cls, datetime: d.toISOString(), title: fmtDateTime(d) }, fmtAgo(d));
}

/** A critical ticket says so in words and with a mark, not by colour alone. */
export function priorityChip(priority) {
  return h('span', { class: `chip prio prio-${priority}` },
    priority === 'critical' ? h('span', { class: 'chip-mark', 'aria-hidden': 'true' }, '⚠ ') : null,
    priorityLabel(priority));
}

export function statusChip(status) {
  return h('span', { class: `chip status status-${status}` }, statusLabel(status));
}

// ---- toasts -----------------------------------------------------------------

/**
 * Show a toast. options: {body, kind: info|success|error|critical, action: {label, run},
 * timeout (ms, 0 = stay)}. The dismiss timer starts only while the page is visible.
 */
export function toast(title, options = {}) {
  const { body = '', kind = 'info', action = null, timeout = 7000 } = options;
  const region = $('#toasts');
  const close = () => {
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 200);
  };
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' || kind === 'critical' ? 'alert' : 'status' },
    kind === 'critical' ? h('span', { class: 'toast-mark', 'aria-hidden': 'true' }, '⚠') : null,
    h('div', { class: 'toast-text' },
      kind === 'critical' ? h('span', { class: 'toast-flag' }, t('common.critical')) : null,
      h('strong', {}, title),
      body ? h('p', {}, body) : null),
    h('div', { class: 'toast-actions' },
      action ? h('button', { type: 'button', class: 'btn btn-small', onclick: () => { close(); action.run(); } }, action.label) : null,
      h('button', { type: 'button', class: 'btn-icon', 'aria-label': t('common.dismiss'), onclick: close }, '×')));
  region.append(el);
  while (region.children.length > 4) region.firstElementChild.remove();
  if (timeout > 0) {
    const arm = () => setTimeout(close, timeout);
    if (document.visibilityState === 'visible') arm();
    else {
      const onVisible = () => {
        if (document.visibilityState !== 'visible') return;
        document.removeEventListener('visibilitychange', onVisible);
        arm();
      };
      document.addEventListener('visibilitychange', onVisible);
    }
  }
}

// ---- banners and badges -----------------------------------------------------

export function setBanner(id, text) {
  const el = document.getElementById(id);
  if (!el) return;
  if (text) {
    el.textContent = text;
    el.hidden = false;
  } else {
    el.hidden = true;
  }
}

/** Update every badge for `kind` ("messages" | "notifications"); text is the count. */
export function setBadge(kind, count) {
  const n = Math.max(0, count);
  for (const el of $$(`[data-unread-${kind}]`)) {
    el.textContent = String(n);
    el.classList.toggle('zero', n === 0);
    el.setAttribute('aria-label', t(`badge.${kind}`, { count: n }));
  }
}

export function getBadge(kind) {
  return Number($(`[data-unread-${kind}]`).textContent);
}

// ---- views ------------------------------------------------------------------

const viewListeners = [];
export function onViewChange(fn) { viewListeners.push(fn); }

export function currentView() {
  return $('[data-view]:not([hidden])')?.dataset.view || 'board';
}

export function showView(name) {
  const known = $$('[data-view]').map((el) => el.dataset.view);
  const view = known.includes(name) ? name : 'board';
  for (const el of $$('[data-view]')) el.hidden = el.dataset.view !== view;
  for (const tab of $$('[data-nav]')) {
    if (tab.dataset.nav === view) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  for (const fn of viewListeners) fn(view);
  return view;
}

/** A random key for Idempotency-Key headers. */
export function randomKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// notifications.js — the notification centre: history (unread first), mark read, mark
// all read, the unread badge, toasts for personal notifications arriving on the stream,
// and the batched POST /api/notifications/seen {ids} for notifications this page showed
// while it was visible (so the gateway does not also push them). A critical notification
// stays on screen until dismissed and sounds the alert (unless sounds are off here).
// Titles and bodies arrive written in the person's language by the server.

import { api } from './api.js';
import { $, h, fill, toast, timeEl, setBadge, getBadge, currentView, onViewChange } from './ui.js';
import { typeLabel } from './events.js';
import { t, onLanguage, describeError } from './i18n.js';
import { playAlert } from './sound.js';

const SEEN_FLUSH_MS = 1000;

let items = []; // newest first
let loadedOnce = false;
let openUrl = () => {};
const seenSent = new Set();
const seenQueue = new Set();
const shownWhileHidden = new Set();
let seenTimer = null;

const isRead = (n) => n.read_at !== null;

export function initNotifications({ onOpenUrl }) {
  openUrl = onOpenUrl;
  $('#mark-all-read').addEventListener('click', markAllRead);
  $('#notifications-unread-only').addEventListener('change', render);
  onViewChange((view) => { if (view === 'notifications') markListSeen(); });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') {
      flushSeen();
      return;
    }
    for (const id of shownWhileHidden) queueSeen(id);
    shownWhileHidden.clear();
    if (currentView() === 'notifications') markListSeen();
  });
  window.addEventListener('pagehide', flushSeen);
  onLanguage(render);
}

/** GET /api/notifications; with announceNew, toast unread ones not known before (polling mode). */
export async function loadNotifications({ announceNew = false } = {}) {
  const known = new Set(items.map((n) => n.id));
  items = await api('/api/notifications?limit=100');
  if (announceNew && loadedOnce) {
    for (const n of items) if (!known.has(n.id) && !isRead(n)) showToast(n);
  }
  loadedOnce = true;
  render();
  if (currentView() === 'notifications') markListSeen();
}

export async function refreshUnreadNotifications() {
  setBadge('notifications', (await api('/api/notifications/unread-count')).count);
}

/** A personal notification from the stream, as the inbox entry it is. The envelope's
 * data holds its title, body and critical flag with the type's own fields. */
export function handlePersonal(envelope) {
  const { notification_id: id, type, url, ts, data } = envelope;
  const n = {
    id, type, url, data, title: data.title, body: data.body, critical: data.critical,
    created_at: ts, seen_at: null, read_at: null,
  };
  if (!items.some((x) => x.id === id)) items = [n, ...items];
  render();
  showToast(n);
}

function showToast(n) {
  toast(n.title, {
    body: n.body,
    kind: n.critical ? 'critical' : 'info',
    timeout: n.critical ? 0 : 8000,
    action: { label: t('common.open'), run: () => open(n) },
  });
  if (n.critical) playAlert();
  displayed(n.id);
}

/** The page showed notification `id`: acknowledge it as seen if the page is visible. */
function displayed(id) {
  if (seenSent.has(id)) return;
  if (document.visibilityState === 'visible') queueSeen(id);
  else shownWhileHidden.add(id);
}

function queueSeen(id) {
  if (seenSent.has(id)) return;
  seenQueue.add(id);
  clearTimeout(seenTimer);
  seenTimer = setTimeout(flushSeen, SEEN_FLUSH_MS);
}

async function flushSeen() {
  clearTimeout(seenTimer);
  const ids = Array.from(seenQueue);
  if (!ids.length) return;
  seenQueue.clear();
  for (const id of ids) seenSent.add(id);
  try {
    await api('/api/notifications/seen', { method: 'POST', body: { ids } });
  } catch (err) {
    if (err.status !== 401 && err.status !== 403) {
      for (const id of ids) { seenSent.delete(id); seenQueue.add(id); }
      seenTimer = setTimeout(flushSeen, 5000);
    }
  }
}

function markListSeen() {
  if (document.visibilityState !== 'visible') return;
  for (const n of items) if (!n.seen_at && !isRead(n)) queueSeen(n.id);
}

async function open(n) {
  if (!isRead(n)) await markRead(n);
  openUrl(n.url);
}

async function markRead(n) {
  try {
    await api(`/api/notifications/${n.id}/read`, { method: 'POST', body: {} });
    const wasUnread = !isRead(n);
    n.read_at = new Date().toISOString();
    if (wasUnread) setBadge('notifications', getBadge('notifications') - 1);
    render();
  } catch (err) {
    toast(t('notifications.read_failed'), { body: describeError(err), kind: 'error' });
  }
}

async function markAllRead() {
  const button = $('#mark-all-read');
  button.disabled = true;
  try {
    await api('/api/notifications/read-all', { method: 'POST', body: {} });
    const now = new Date().toISOString();
    for (const n of items) if (!isRead(n)) n.read_at = now;
    setBadge('notifications', 0);
    render();
  } catch (err) {
    toast(t('notifications.read_all_failed'), { body: describeError(err), kind: 'error' });
  } finally {
    button.disabled = false;
  }
}

function render() {
  const list = $('#notification-list');
  if (!list) return;
  const unreadOnly = $('#notifications-unread-only').checked;
  const shown = items
    .filter((n) => !unreadOnly || !isRead(n))
    .sort((a, b) => (Number(isRead(a)) - Number(isRead(b))) || (b.id - a.id));
  const unread = items.filter((n) => !isRead(n)).length;
  $('#notifications-summary').textContent = items.length
    ? t('notifications.summary', { count: unread, total: items.length }) : '';
  if (!shown.length) {
    fill(list, h('li', { class: 'muted empty' }, t(unreadOnly ? 'notifications.none_unread' : 'notifications.none')));
    return;
  }
  fill(list, shown.map((n) => {
    const read = isRead(n);
    return h('li', {
      class: `notification${read ? ' read' : ' unread'}${n.critical ? ' critical' : ''}`,
      'data-notification-id': n.id,
    },
    h('span', { class: 'notification-marker', 'aria-hidden': 'true' }),
    h('div', { class: 'notification-main' },
      h('div', { class: 'notification-head' },
        n.critical ? h('span', { class: 'chip critical-flag' }, '⚠ ', t('common.critical')) : null,
        h('span', { class: 'chip type' }, typeLabel(n.type)),
        timeEl(n.created_at, 'muted small'),
        read ? null : h('span', { class: 'sr-only' }, t('notifications.unread'))),
      h('button', { type: 'button', class: 'notification-title link', onclick: () => open(n) }, n.title),
      n.body ? h('p', { class: 'notification-body' }, n.body) : null),
    read ? null : h('button', {
      type: 'button', class: 'btn btn-small', onclick: () => markRead(n),
    }, t('notifications.mark_read')));
  }));
}

export function clearNotifications() {
  items = [];
  loadedOnce = false;
  seenQueue.clear();
  seenSent.clear();
  render();
}

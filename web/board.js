// board.js — the Kanban board: six columns (data-status) holding cards (data-ticket-id),
// drag and drop between columns, a per-card "Move to…" menu for touch and keyboard,
// live updates from board events, filters, and a clear message when a move is refused.
// The open columns load whole; completed and archived only their latest cards, with
// older ones a page at a time on demand (GET /api/tickets is paged by column).

import { api } from './api.js';
import { $, h, fill, priorityChip, fmtDay, parseDate, statusLabel, toast } from './ui.js';
// `tr` where a card's fields are called `t`.
import { t, t as tr, onLanguage, describeError } from './i18n.js';
import { on, myId, rememberFromTicket } from './state.js';
import { isOnline } from './presence.js';

export const STATUSES = ['received', 'diagnostic', 'in_progress', 'waiting_parts', 'completed', 'archived'];
const PRIORITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
const SNAPSHOT_KEY = 'floorbell.board';
const OPEN_STATUSES = STATUSES.slice(0, 4);
const CLOSED_PAGE = 20; // cards of a closed column loaded at first, and per "Show older"
const OPEN_PAGE = 500;
const olderCursor = new Map(); // closed status -> cursor of its next page, if any

const tickets = new Map(); // id -> card fields
const columns = new Map(); // status -> {section, list, count}
let openTicket = () => {};
let filterText = '';
let filterMine = false;
let messageTimer = null;
let draggingId = null; // a card being dragged is not replaced until the drag ends

export function getTicket(id) { return tickets.get(id); }
export function allTickets() { return Array.from(tickets.values()); }

export function initBoard({ onOpen }) {
  openTicket = onOpen;
  const board = $('#board');
  fill(board, STATUSES.map((status) => {
    const count = h('span', { class: 'column-count', 'data-i18n-attr': 'aria-label:board.count_label', 'aria-label': t('board.count_label') }, '0');
    const list = h('div', { class: 'column-cards', role: 'list' });
    const section = h('section', {
      class: 'column', 'data-status': status, 'aria-labelledby': `col-${status}`,
    },
    h('header', { class: 'column-head' },
      h('h2', { id: `col-${status}`, 'data-i18n': `status.${status}` }, statusLabel(status)), count),
    list);
    section.addEventListener('dragover', (event) => {
      if (!event.dataTransfer.types.includes('text/x-ticket-id')) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'move';
      section.classList.add('drop-target');
    });
    section.addEventListener('dragleave', (event) => {
      if (!section.contains(event.relatedTarget)) section.classList.remove('drop-target');
    });
    section.addEventListener('drop', (event) => {
      event.preventDefault();
      section.classList.remove('drop-target');
      const id = Number(event.dataTransfer.getData('text/x-ticket-id'));
      draggingId = null;
      if (id) moveTicket(id, status);
    });
    let more = null;
    if (!OPEN_STATUSES.includes(status)) {
      more = h('button', {
        type: 'button', class: 'column-more', 'data-more': status, 'data-i18n': 'board.show_older', hidden: true,
        onclick: () => loadOlder(status).catch((err) => toast(t('board.older_failed'), { body: describeError(err), kind: 'error' })),
      }, t('board.show_older'));
      section.append(more);
    }
    columns.set(status, { section, list, count, more });
    return section;
  }));

  $('#board-search').addEventListener('input', (event) => {
    filterText = event.target.value.trim().toLowerCase();
    applyFilters();
  });
  $('#board-mine').addEventListener('change', (event) => {
    filterMine = event.target.checked;
    applyFilters();
  });
  on('presence', refreshPresenceDots);
  window.addEventListener('pagehide', () => { if (saveTimer) saveSnapshot(); });
  on('users', () => { for (const t of tickets.values()) renderCard(t); });
  onLanguage(() => { for (const t of tickets.values()) renderCard(t); });
}

function ticketsPage(status, limit, cursor) {
  const query = new URLSearchParams({ status, limit: String(limit) });
  if (cursor) query.set('cursor', cursor);
  return api(`/api/tickets?${query}`);
}

async function wholeColumn(status) {
  const cards = [];
  let cursor = null;
  do {
    const page = await ticketsPage(status, OPEN_PAGE, cursor);
    cards.push(...page.tickets);
    cursor = page.next_cursor;
  } while (cursor);
  return cards;
}

async function latestOfColumn(status) {
  const page = await ticketsPage(status, CLOSED_PAGE, null);
  setOlder(status, page.next_cursor);
  return page.tickets;
}

function setOlder(status, cursor) {
  if (cursor) olderCursor.set(status, cursor);
  else olderCursor.delete(status);
  const more = columns.get(status)?.more;
  if (more) more.hidden = !cursor;
}

/** The next page of a closed column, below what it shows. */
export async function loadOlder(status) {
  const cursor = olderCursor.get(status);
  if (!cursor) return;
  const page = await ticketsPage(status, CLOSED_PAGE, cursor);
  for (const t of page.tickets) upsert(t, { save: false });
  setOlder(status, page.next_cursor);
  updateCounts();
}

/** The board from GET /api/tickets: the open columns whole, the latest closed cards. */
export async function loadBoard() {
  try {
    const columnsCards = await Promise.all(STATUSES.map(
      (status) => (OPEN_STATUSES.includes(status) ? wholeColumn(status) : latestOfColumn(status)),
    ));
    replaceAll(columnsCards.flat());
    saveSnapshot();
  } catch (err) {
    if (err.offline && tickets.size === 0) restoreSnapshot();
    throw err;
  }
}

function replaceAll(list) {
  const seen = new Set();
  for (const t of list) {
    seen.add(t.id);
    upsert(t, { save: false });
  }
  for (const id of Array.from(tickets.keys())) if (!seen.has(id)) remove(id, { save: false });
  updateCounts();
}

/** Apply ticket_created / ticket_updated / ticket_moved (`data.ticket` is the card);
 * returns the card merged with what the board knew of the ticket. */
export function applyBoardEvent(envelope) {
  const { ticket } = envelope.data;
  upsert(ticket);
  updateCounts();
  return tickets.get(ticket.id);
}

export function upsert(ticket, { save = true } = {}) {
  const { id } = ticket;
  const merged = { ...tickets.get(id), ...ticket };
  tickets.set(id, merged);
  rememberFromTicket(merged);
  renderCard(merged);
  if (save) scheduleSave();
}

function remove(id, { save = true } = {}) {
  tickets.delete(id);
  document.querySelector(`#board [data-ticket-id="${id}"]`)?.remove();
  if (save) scheduleSave();
}

function cardElement(id) {
  return document.querySelector(`#board [data-ticket-id="${id}"]`);
}

function renderCard(t) {
  if (t.id === draggingId) return;
  const column = columns.get(t.status);
  const existing = cardElement(t.id);
  const card = buildCard(t);
  if (existing) existing.replaceWith(card);
  // Keep each column sorted: priority first, then the most recently updated.
  const siblings = Array.from(column.list.children).filter((el) => el !== card);
  const before = siblings.find((el) => compare(t, tickets.get(Number(el.dataset.ticketId))) < 0);
  if (card.parentElement !== column.list || card.nextElementSibling !== (before || null)) {
    column.list.insertBefore(card, before || null);
  }
  applyFilter(card, t);
}

function compare(a, b) {
  if (!b) return -1;
  const pa = PRIORITY_RANK[a.priority];
  const pb = PRIORITY_RANK[b.priority];
  if (pa !== pb) return pa - pb;
  const ua = parseDate(a.updated_at).getTime();
  const ub = parseDate(b.updated_at).getTime();
  if (ua !== ub) return ub - ua;
  return b.id - a.id;
}

function isOverdue(t) {
  const due = parseDate(t.scheduled_date);
  return Boolean(due && due.getTime() < Date.now() && !['completed', 'archived'].includes(t.status));
}

function buildCard(t) {
  const assignee = t.assignee_name;
  const mine = t.assigned_to != null && t.assigned_to === myId();
  const overdue = isOverdue(t);

  const moveSelect = h('select', {
    class: 'move-select', 'aria-label': tr('board.move_label', { code: t.ticket_id }),
    onchange: (event) => {
      const target = event.target.value;
      event.target.value = '';
      if (target) moveTicket(t.id, target);
    },
  },
  h('option', { value: '' }, tr('board.move_to')),
  STATUSES.filter((s) => s !== t.status).map((s) => h('option', { value: s }, statusLabel(s))));

  const card = h('article', {
    class: `card prio-${t.priority}${mine ? ' mine' : ''}${overdue ? ' overdue' : ''}`,
    'data-ticket-id': t.id,
    draggable: 'true',
    role: 'listitem',
    'aria-label': `${t.ticket_id} ${t.title}`,
  },
  h('div', { class: 'card-top' },
    h('span', { class: 'card-code' }, t.ticket_id),
    priorityChip(t.priority)),
  h('button', { type: 'button', class: 'card-title', onclick: () => openTicket(t.id) }, t.title),
  h('div', { class: 'card-machine' }, t.machine_name),
  h('div', { class: 'card-meta' },
    t.assigned_to != null
      ? h('span', { class: 'card-assignee' },
        h('span', {
          class: 'dot', 'data-user-dot': t.assigned_to,
          'data-online': String(isOnline(t.assigned_to)), 'aria-hidden': 'true',
        }),
        mine ? tr('board.me', { name: assignee }) : assignee)
      : h('span', { class: 'card-assignee muted' }, tr('board.unassigned')),
    t.scheduled_date
      ? h('span', { class: overdue ? 'card-due overdue-text' : 'card-due muted' },
        tr(overdue ? 'board.overdue_since' : 'board.due', { date: fmtDay(t.scheduled_date) }))
      : null),
  t.waiting_since ? waitBadge(t) : null,
  h('div', { class: 'card-actions' }, moveSelect));

  card.addEventListener('dragstart', (event) => {
    event.dataTransfer.setData('text/x-ticket-id', String(t.id));
    event.dataTransfer.setData('text/plain', t.ticket_id);
    event.dataTransfer.effectAllowed = 'move';
    card.classList.add('dragging');
    draggingId = t.id;
  });
  card.addEventListener('dragend', () => {
    card.classList.remove('dragging');
    draggingId = null;
    const latest = tickets.get(t.id);
    if (latest) renderCard(latest);
  });
  return card;
}

/** How long an unanswered critical alert has waited, and where it escalated: « En attente
 * depuis 12 min · escaladé aux superviseurs il y a 2 min ». Its words follow the clock
 * (`tickWaits`); a board event with the card's new escalation redraws it. */
function waitBadge(t) {
  return h('div', {
    class: `card-wait${t.escalated_to ? ' escalated' : ''}`,
    'data-waiting-since': t.waiting_since,
    'data-escalated-to': t.escalated_to || '',
    'data-escalated-at': t.escalated_at || '',
    role: 'status',
  }, waitWords(t.waiting_since, t.escalated_to, t.escalated_at));
}

function waitWords(since, to, at) {
  const minutes = (value) => Math.max(0, Math.floor((Date.now() - parseDate(value).getTime()) / 60000));
  const waited = tr('board.waiting', { count: minutes(since) });
  if (!to) return waited;
  return `${waited} · ${tr('board.escalated', { to: tr(`escalation.to.${to}`), count: minutes(at) })}`;
}

/** Keep every open board's waiting times current. */
function tickWaits() {
  for (const el of document.querySelectorAll('#board [data-waiting-since]')) {
    el.textContent = waitWords(el.dataset.waitingSince, el.dataset.escalatedTo, el.dataset.escalatedAt);
  }
}
setInterval(tickWaits, 15_000);

/** Move a ticket to another column: optimistic, reverted with a message when refused. */
export async function moveTicket(id, status) {
  const before = tickets.get(id);
  if (!before || before.status === status) return;
  upsert({ ...before, status }, { save: false });
  updateCounts();
  const card = cardElement(id);
  card?.classList.add('pending');
  try {
    upsert(await api(`/api/tickets/${id}`, { method: 'PUT', body: { status } }));
    showBoardMessage('');
  } catch (err) {
    upsert(before);
    const words = { code: before.ticket_id, status: statusLabel(status), reason: describeError(err) };
    let text;
    if (err.status === 403) text = t('board.move_forbidden', words);
    else if (err.status === 409) text = t('board.move_conflict', words);
    else text = t('board.move_failed', words);
    showBoardMessage(text);
    toast(t('board.move_refused'), { body: text, kind: 'error' });
  } finally {
    cardElement(id)?.classList.remove('pending');
    updateCounts();
  }
}

export function showBoardMessage(text) {
  const el = $('#board-message');
  clearTimeout(messageTimer);
  if (!text) {
    el.hidden = true;
    return;
  }
  fill(el, h('span', {}, text),
    h('button', { type: 'button', class: 'btn-icon', 'aria-label': t('common.dismiss'), onclick: () => showBoardMessage('') }, '×'));
  el.hidden = false;
  messageTimer = setTimeout(() => { el.hidden = true; }, 12000);
}

function updateCounts() {
  for (const [status, column] of columns) {
    const cards = Array.from(column.list.children);
    const visible = cards.filter((c) => !c.hidden).length;
    column.count.textContent = visible === cards.length ? String(cards.length) : `${visible}/${cards.length}`;
  }
  const empty = tickets.size === 0;
  $('#board-empty').hidden = !empty;
}

function applyFilter(card, t) {
  let show = true;
  if (filterMine && t.assigned_to !== myId()) show = false;
  if (show && filterText) {
    const hay = `${t.ticket_id} ${t.title} ${t.machine_name} ${t.assignee_name ?? ''}`.toLowerCase();
    show = hay.includes(filterText);
  }
  card.hidden = !show;
}

function applyFilters() {
  for (const t of tickets.values()) {
    const card = cardElement(t.id);
    if (card) applyFilter(card, t);
  }
  updateCounts();
}

export function refreshPresenceDots() {
  for (const dot of document.querySelectorAll('#board [data-user-dot]')) {
    dot.dataset.online = String(isOnline(dot.dataset.userDot));
  }
}

// ---- offline snapshot ----------------------------------------------------------

let saveTimer = null;
function scheduleSave() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(saveSnapshot, 1000);
}

function saveSnapshot() {
  clearTimeout(saveTimer);
  saveTimer = null;
  if (tickets.size === 0) return;
  try {
    localStorage.setItem(SNAPSHOT_KEY, JSON.stringify({ at: Date.now(), tickets: allTickets() }));
  } catch { /* quota or private mode */ }
}

function restoreSnapshot() {
  try {
    const snap = JSON.parse(localStorage.getItem(SNAPSHOT_KEY) || 'null');
    if (snap?.tickets) replaceAll(snap.tickets);
  } catch { /* ignore a corrupt snapshot */ }
}

export function clearBoard() {
  tickets.clear();
  for (const column of columns.values()) column.list.replaceChildren();
  try { localStorage.removeItem(SNAPSHOT_KEY); } catch { /* ignore */ }
  updateCounts();
}

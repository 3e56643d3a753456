// ticket.js — the ticket detail dialog (fields, comments list and add, assign, priority,
// status, follow/unfollow, acknowledge) and the "Report a problem" dialog. Keeps the
// ?ticket=<id> deep link in the address bar while a ticket is open. (`tr` is the catalogue:
// `t` names the ticket here.)

import { api } from './api.js';
import {
  $, h, fill, toast, timeEl, fmtDateTime, priorityChip, statusChip, statusLabel, priorityLabel,
  randomKey,
} from './ui.js';
import {
  state, on, isManager, myId, userName, knownUsers, rememberUser, rememberFromTicket,
  loadUsers, loadMachines, roleLabel,
} from './state.js';
import { t as tr, onLanguage, describeError } from './i18n.js';
import { STATUSES, upsert, getTicket } from './board.js';
import { isOnline } from './presence.js';
import { typeLabel } from './events.js';

let dialog;
let current = null; // the open ticket detail
let comments = [];
let timeline = null; // GET /api/tickets/{id}/timeline, once loaded
let following = null; // whether I follow the open ticket; null until its detail is loaded
let loadSeq = 0;

export function openTicketId() { return current ? current.id : null; }

export function initTicket() {
  dialog = $('#ticket-dialog');
  dialog.addEventListener('close', () => {
    current = null;
    setDeepLink(null);
  });
  dialog.addEventListener('click', (event) => {
    if (event.target === dialog) dialog.close(); // backdrop click
  });
  on('users', () => { if (current) render(); });
  on('presence', () => {
    for (const dot of dialog.querySelectorAll('[data-user-dot]')) dot.dataset.online = String(isOnline(dot.dataset.userDot));
  });
  initNewTicket();
  onLanguage(() => {
    if (current) render();
    if ($('#new-ticket-dialog').open) fillMachines();
  });
}

const PRIORITIES = ['low', 'medium', 'high', 'critical'];

function setDeepLink(id) {
  const url = new URL(location.href);
  if (id) url.searchParams.set('ticket', String(id));
  else url.searchParams.delete('ticket');
  if (url.href !== location.href) history.replaceState(history.state, '', url);
}

/** Open the detail of ticket `id` (integer). */
export async function openTicket(id) {
  const ticketId = Number(id);
  if (!ticketId) return;
  const seq = ++loadSeq;
  const fromBoard = getTicket(ticketId);
  current = fromBoard ? { ...fromBoard } : { id: ticketId };
  comments = [];
  timeline = null;
  following = null;
  setDeepLink(ticketId);
  render({ loading: true });
  if (!dialog.open) dialog.showModal();
  try {
    const [detail, list] = await Promise.all([
      api(`/api/tickets/${ticketId}`),
      api(`/api/tickets/${ticketId}/comments`).catch(() => []),
    ]);
    if (seq !== loadSeq) return;
    current = { ...current, ...detail };
    comments = list;
    following = follows(detail);
    learnFrom(current);
    render();
    if (isManager()) loadUsers();
    loadTimeline(ticketId);
  } catch (err) {
    if (seq !== loadSeq) return;
    render({ error: err.status === 404 ? tr('ticket.not_found') : describeError(err) });
  }
}

function learnFrom(t) {
  rememberFromTicket(t);
  for (const c of comments) rememberUser(c.author_id, c.author_name);
}

/** Whether I am among the followers of `t`, a ticket as the API returns it. */
function follows(t) {
  return t.followers.includes(myId());
}

export function closeTicket() { if (dialog?.open) dialog.close(); }

/** A board event's card: when it is the open ticket, merge its fields and redraw. */
export function onTicketEvent(ticket) {
  if (!current || current.id !== ticket.id) return;
  current = { ...current, ...ticket };
  render();
  loadTimeline(ticket.id); // an escalation, an answer: the story goes on
}

/** What happened to the ticket's critical alerts (GET /api/tickets/{id}/timeline). */
async function loadTimeline(id) {
  try {
    const found = await api(`/api/tickets/${id}/timeline`);
    if (!current || current.id !== id) return;
    timeline = found;
    render();
  } catch { /* the dialog shows the ticket without its story */ }
}

const TIMELINE_WORDS = {
  created: (e) => tr('timeline.created', { name: e.user_name }),
  waiting: (e) => tr(`timeline.waiting.${e.reason}`),
  assigned: (e) => tr('timeline.assigned', { name: e.user_name }),
  notified: (e) => tr('timeline.notified', { name: e.user_name, kind: typeLabel(e.type) }),
  pushed: (e) => tr('timeline.pushed', { name: e.user_name, count: e.devices }),
  delivered: (e) => tr('timeline.delivered', { name: e.user_name }),
  seen: (e) => tr('timeline.seen', { name: e.user_name }),
  read: (e) => tr('timeline.read', { name: e.user_name }),
  clicked: (e) => tr('timeline.clicked', { name: e.user_name }),
  escalated: (e) => tr('timeline.escalated', { to: tr(`escalation.to.${e.to}`), count: e.after_minutes }),
  answered: (e) => tr(`timeline.answered.${e.answer}`, { name: e.user_name }),
};

function timelineSection() {
  if (!timeline || timeline.entries.length === 0) return null;
  const entries = timeline.entries.filter((e) => TIMELINE_WORDS[e.what]);
  return h('section', { class: 'timeline-section' },
    h('details', { open: timeline.waiting && !timeline.waiting.answered_at ? true : null },
      h('summary', {}, h('h3', {}, tr('timeline.title'))),
      h('ol', { class: 'timeline', 'data-timeline': '' },
        entries.map((e) => h('li', { class: `timeline-entry what-${e.what}`, 'data-what': e.what },
          timeEl(e.at), ' ', h('span', {}, TIMELINE_WORDS[e.what](e)))))));
}

/** A personal notification about the open ticket (e.g. comment_added): reload comments. */
export async function refreshComments(ticketId) {
  if (!current || current.id !== ticketId) return;
  try {
    comments = await api(`/api/tickets/${ticketId}/comments`);
    learnFrom(current);
    render();
  } catch { /* keep what is shown */ }
}

export async function reloadOpenTicket() {
  if (current) await openTicketQuietly(current.id);
}

async function openTicketQuietly(id) {
  try {
    const [detail, list] = await Promise.all([
      api(`/api/tickets/${id}`), api(`/api/tickets/${id}/comments`).catch(() => null),
    ]);
    if (!current || current.id !== id) return;
    current = { ...current, ...detail };
    if (list) comments = list;
    following = follows(detail);
    render();
  } catch { /* the dialog keeps its content */ }
}

// ---- actions ----------------------------------------------------------------------

/** Run an action named by the catalogue entry `action` (ticket.action.*). */
async function act(action, fn, button) {
  if (button) button.disabled = true;
  try {
    await fn();
  } catch (err) {
    const failed = tr('ticket.action_failed', { action: tr(`ticket.action.${action}`) });
    const reason = describeError(err);
    toast(failed, { body: reason, kind: 'error' });
    render(); // put the controls back to the ticket's real values
    showInlineError(`${failed} — ${reason}`);
  } finally {
    if (button) button.disabled = false;
  }
}

function showInlineError(text) {
  const el = dialog.querySelector('.ticket-error');
  if (el) { el.textContent = text; el.hidden = !text; }
}

/** A route's answer, the whole ticket: into the dialog and onto the board. */
function applyUpdated(t) {
  current = { ...current, ...t };
  upsert(t);
  render();
}

const update = (fields, button, action) => act(action, async () => {
  applyUpdated(await api(`/api/tickets/${current.id}`, { method: 'PUT', body: fields }));
}, button);

const assign = (userId, button) => act('assign', async () => {
  applyUpdated(await api(`/api/tickets/${current.id}/assign`, {
    method: 'POST', body: { assigned_to: userId },
  }));
}, button);

const acknowledge = (button) => act('acknowledge', async () => {
  applyUpdated(await api(`/api/tickets/${current.id}/acknowledge`, { method: 'POST', body: {} }));
  toast(tr('ticket.acknowledged'), { body: tr('ticket.acknowledged_body'), kind: 'success' });
}, button);

const toggleFollow = (button) => act(following ? 'unfollow' : 'follow', async () => {
  following = follows(await api(`/api/tickets/${current.id}/follow`, { method: following ? 'DELETE' : 'POST' }));
  render();
}, button);

async function addComment(form) {
  const textarea = form.elements.body;
  const body = textarea.value.trim();
  if (!body) return;
  const button = form.querySelector('button[type=submit]');
  await act('comment', async () => {
    const created = await api(`/api/tickets/${current.id}/comments`, { method: 'POST', body: { body } });
    textarea.value = '';
    comments = [...comments.filter((c) => c.id !== created.id), created];
    await refreshComments(current.id);
  }, button);
}

// ---- rendering --------------------------------------------------------------------

function assigneeCandidates() {
  return knownUsers().filter((u) => u.role !== 'operator');
}

function render({ loading = false, error = '' } = {}) {
  if (!dialog || !current) return;
  const t = current;
  const me = myId();
  const manager = isManager();
  const isAssignee = t.assigned_to != null && t.assigned_to === me;

  // Until the detail arrives, `t` may hold only the id (a deep link) or the board's card.
  const header = h('header', { class: 'dialog-head' },
    h('div', {},
      h('p', { class: 'eyebrow' }, t.ticket_id ?? tr('ticket.number', { id: t.id })),
      h('h2', { id: 'ticket-dialog-title' }, t.title ?? tr(loading ? 'common.loading' : 'ticket.ticket'))),
    h('button', { type: 'button', class: 'btn-icon close', 'aria-label': tr('common.close'), onclick: () => dialog.close() }, '×'));

  if (error) {
    fill(dialog, h('div', { class: 'dialog-body' }, header, h('p', { class: 'alert' }, error)));
    return;
  }

  const facts = h('dl', { class: 'facts' },
    fact(tr('ticket.status'), t.status ? statusChip(t.status) : '…'),
    fact(tr('ticket.priority'), t.priority ? priorityChip(t.priority) : '…'),
    fact(tr('ticket.machine'), t.machine_name ?? '—'),
    fact(tr('ticket.assigned_to'), t.assigned_to != null
      ? h('span', {},
        h('span', { class: 'dot', 'data-user-dot': t.assigned_to, 'data-online': String(isOnline(t.assigned_to)), 'aria-hidden': 'true' }),
        t.assignee_name)
      : h('span', { class: 'muted' }, tr('ticket.nobody'))),
    fact(tr('ticket.reported_by'), t.reported_by != null ? userName(t.reported_by) : '—'),
    fact(tr('ticket.scheduled'), t.scheduled_date ? fmtDateTime(t.scheduled_date) : '—'),
    t.created_at ? fact(tr('ticket.opened'), fmtDateTime(t.created_at)) : null,
    t.closed_at ? fact(tr('ticket.closed'), fmtDateTime(t.closed_at)) : null);

  const actions = h('div', { class: 'ticket-actions' });
  if (isAssignee && t.status === 'received') {
    actions.append(h('button', {
      type: 'button', class: 'btn btn-primary',
      onclick: (event) => acknowledge(event.currentTarget),
    }, tr('ticket.acknowledge')));
  }
  actions.append(h('button', {
    type: 'button', class: 'btn', 'aria-pressed': following === null ? null : String(following),
    onclick: (event) => toggleFollow(event.currentTarget),
  }, tr(following ? 'ticket.unfollow' : 'ticket.follow')));

  const statusSelect = h('select', { id: 'ticket-status', disabled: loading || t.status === 'archived' },
    STATUSES.map((s) => h('option', { value: s, selected: s === t.status }, statusLabel(s))));
  statusSelect.addEventListener('change', () => update({ status: statusSelect.value }, statusSelect, 'status'));

  const controls = h('div', { class: 'ticket-controls' },
    h('div', { class: 'field' }, h('label', { for: 'ticket-status' }, tr('ticket.status')), statusSelect));

  if (manager) {
    const prioritySelect = h('select', { id: 'ticket-priority', disabled: loading },
      PRIORITIES.map((p) => h('option', { value: p, selected: p === t.priority }, priorityLabel(p))));
    prioritySelect.addEventListener('change', () => update({ priority: prioritySelect.value }, prioritySelect, 'priority'));

    const assignSelect = h('select', { id: 'ticket-assign', disabled: loading },
      h('option', { value: '', selected: t.assigned_to == null }, tr('ticket.unassigned_option')),
      assigneeCandidates().map((u) => h('option', {
        value: u.id, selected: u.id === t.assigned_to,
      }, [userName(u.id), u.role ? ` (${roleLabel(u.role)})` : '', isOnline(u.id) ? ` • ${tr('presence.online')}` : ''].join(''))));
    assignSelect.addEventListener('change', () => {
      const value = assignSelect.value ? Number(assignSelect.value) : null;
      assign(value, assignSelect);
    });
    controls.append(
      h('div', { class: 'field' }, h('label', { for: 'ticket-priority' }, tr('ticket.priority')), prioritySelect),
      h('div', { class: 'field' }, h('label', { for: 'ticket-assign' }, tr('ticket.assign_to')), assignSelect),
    );
  }

  const commentList = h('ol', { class: 'comments', 'aria-live': 'polite' },
    comments.length === 0
      ? h('li', { class: 'muted empty' }, tr(loading ? 'ticket.comments_loading' : 'ticket.no_comments'))
      : comments.map((c) => {
        return h('li', { class: 'comment', 'data-comment-id': c.id },
          h('div', { class: 'comment-head' }, h('strong', {}, c.author_name), ' ', timeEl(c.created_at)),
          h('p', { class: 'comment-body' }, c.body));
      }));

  const form = h('form', { class: 'comment-form' },
    h('label', { for: 'comment-body', class: 'sr-only' }, tr('ticket.comment_label')),
    h('textarea', { id: 'comment-body', name: 'body', rows: '2', required: true, placeholder: tr('ticket.comment_placeholder'), maxlength: '4000' }),
    h('button', { type: 'submit', class: 'btn btn-primary' }, tr('ticket.comment_add')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    addComment(form);
  });
  form.elements.body.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      addComment(form);
    }
  });

  // Keep a half-typed comment across re-renders.
  const draft = dialog.querySelector('#comment-body')?.value || '';
  const hadFocus = document.activeElement?.id === 'comment-body';

  fill(dialog, h('div', { class: 'dialog-body' },
    header,
    h('p', { class: 'alert ticket-error', role: 'alert', hidden: true }),
    facts,
    t.description ? h('section', { class: 'description' }, h('h3', {}, tr('ticket.description')), h('p', {}, t.description)) : null,
    actions,
    controls,
    timelineSection(),
    h('section', { class: 'comments-section' }, h('h3', {}, tr('ticket.comments', { count: comments.length })), commentList, form)));
  const textarea = dialog.querySelector('#comment-body');
  textarea.value = draft;
  if (hadFocus) textarea.focus();
}

function fact(label, value) {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, value));
}

// ---- report a problem -------------------------------------------------------------

function initNewTicket() {
  const newDialog = $('#new-ticket-dialog');
  const form = $('#new-ticket-form');
  $('#new-ticket-button').addEventListener('click', async () => {
    form.reset();
    $('#new-ticket-error').hidden = true;
    form.dataset.key = randomKey();
    newDialog.showModal();
    if (state.machines.size === 0) await loadMachines();
    fillMachines();
  });
  newDialog.addEventListener('click', (event) => { if (event.target === newDialog) newDialog.close(); });
  for (const btn of newDialog.querySelectorAll('[data-close]')) btn.addEventListener('click', () => newDialog.close());

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const machineId = Number(data.get('machine_id'));
    const title = String(data.get('title') || '').trim();
    const description = String(data.get('description') || '').trim();
    const priority = String(data.get('priority') || 'medium');
    const breakdown = data.get('breakdown') === 'on';
    const error = $('#new-ticket-error');
    if (!machineId || (!breakdown && !title)) {
      error.textContent = tr('report.missing');
      error.hidden = false;
      return;
    }
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      let t; // both routes answer with the ticket they opened
      if (breakdown) {
        t = await api(`/api/machines/${machineId}/breakdown`, {
          method: 'POST', body: { description: [title, description].filter(Boolean).join(' — '), priority },
        });
      } else {
        const body = { title, description, machine_id: machineId, priority };
        const scheduled = data.get('scheduled_date');
        if (scheduled) body.scheduled_date = new Date(String(scheduled)).toISOString();
        t = await api('/api/tickets', {
          method: 'POST', body, headers: { 'Idempotency-Key': form.dataset.key },
        });
      }
      newDialog.close();
      upsert(t);
      toast(tr('report.created'), { body: `${t.ticket_id} ${t.title}`, kind: 'success', action: { label: tr('common.open'), run: () => openTicket(t.id) } });
    } catch (err) {
      error.textContent = describeError(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
}

function fillMachines() {
  const select = $('#new-ticket-machine');
  const previous = select.value;
  const machines = Array.from(state.machines.values()).sort((a, b) => a.name.localeCompare(b.name));
  fill(select, h('option', { value: '' }, tr(machines.length ? 'report.choose_machine' : 'report.no_machines')),
    machines.map((m) => h('option', { value: m.id, selected: String(m.id) === previous },
      `${m.name}${m.location ? ` — ${m.location}` : ''}${m.status !== 'operational' ? ` (${tr(`machine.${m.status}`)})` : ''}`)));
}

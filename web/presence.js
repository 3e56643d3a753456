// presence.js — who is online. Loads GET /api/presence, applies `presence` stream events
// {user_id, online}, and keeps one list entry per known person with
// data-presence-user="<id>" and data-online="true|false".

import { api, asList } from './api.js';
import { $, h, fill, timeEl } from './ui.js';
import { state, on, emit, rememberUser, userName, myId, ROLE_LABELS } from './state.js';

const presence = new Map(); // user id -> {online, last_seen, connections}

export function isOnline(id) {
  return Boolean(presence.get(Number(id))?.online);
}

export function initPresence() {
  on('users', render);
}

export async function loadPresence() {
  const list = asList(await api('/api/presence'), 'presence', 'users');
  presence.clear();
  for (const p of list) {
    const id = Number(p.user_id ?? p.id);
    if (!Number.isFinite(id)) continue;
    presence.set(id, { online: Boolean(p.online), last_seen: p.last_seen, connections: p.connections });
    rememberUser(id, p.full_name || p.name || p.user_name, { role: p.role });
  }
  render();
  emit('presence', presence);
}

/** A `presence` event: {user_id, online}. */
export function applyPresence(data) {
  const id = Number(data?.user_id);
  if (!Number.isFinite(id)) return;
  const old = presence.get(id) || {};
  presence.set(id, {
    ...old,
    online: Boolean(data.online),
    last_seen: data.online ? old.last_seen : (data.last_seen || new Date().toISOString()),
  });
  rememberUser(id, data.full_name || data.name);
  render();
  emit('presence', presence);
}

function render() {
  const list = $('#presence-list');
  if (!list) return;
  const ids = new Set([...presence.keys(), ...state.users.keys()]);
  const me = myId();
  if (me != null) {
    ids.add(me);
    // This page holds a stream open, so the signed-in person is online unless told otherwise.
    if (!presence.has(me)) presence.set(me, { online: true });
  }
  const people = Array.from(ids).map((id) => ({ id, ...(presence.get(id) || { online: false }) }));
  people.sort((a, b) => (Number(b.online) - Number(a.online)) || userName(a.id).localeCompare(userName(b.id)));
  const onlineCount = people.filter((p) => p.online).length;
  $('#presence-count').textContent = `${onlineCount} online`;
  fill(list, people.map((p) => {
    const role = state.users.get(p.id)?.role;
    return h('li', {
      class: `presence-item${p.online ? ' online' : ''}`,
      'data-presence-user': p.id,
      'data-online': String(Boolean(p.online)),
    },
    h('span', { class: 'dot', 'data-online': String(Boolean(p.online)), 'aria-hidden': 'true' }),
    h('span', { class: 'presence-name' },
      userName(p.id), p.id === me ? ' (you)' : '',
      role ? h('span', { class: 'muted small' }, ` · ${ROLE_LABELS[role] || role}`) : null),
    h('span', { class: 'sr-only' }, p.online ? ' online' : ' offline'),
    !p.online && p.last_seen ? timeEl(p.last_seen, 'muted small presence-seen') : null);
  }));
}

export function clearPresence() {
  presence.clear();
  render();
}

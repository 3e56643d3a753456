// presence.js — who is online. Loads GET /api/presence, applies `presence` stream events
// {user_id, online}, and keeps one list entry per known person with
// data-presence-user="<id>" and data-online="true|false".

import { api } from './api.js';
import { $, h, fill, timeEl } from './ui.js';
import { state, on, emit, userName, myId, roleLabel } from './state.js';
import { t, onLanguage } from './i18n.js';

const presence = new Map(); // user id -> {online, last_seen, connections}

/** `id` may come from a data attribute: the map is keyed by numbers. */
export function isOnline(id) {
  return Boolean(presence.get(Number(id))?.online);
}

export function initPresence() {
  on('users', render);
  onLanguage(render);
}

/** GET /api/presence: everyone, [{user_id, online, last_seen, connections}]. */
export async function loadPresence() {
  const list = await api('/api/presence');
  presence.clear();
  for (const { user_id: id, online, last_seen, connections } of list) {
    presence.set(id, { online, last_seen, connections });
  }
  render();
  emit('presence', presence);
}

/** A `presence` event, {user_id, online}: someone going offline was last seen now. */
export function applyPresence({ user_id: id, online }) {
  const old = presence.get(id);
  presence.set(id, { ...old, online, last_seen: online ? old?.last_seen : new Date().toISOString() });
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
  $('#presence-count').textContent = t('presence.count', { count: onlineCount });
  fill(list, people.map((p) => {
    const role = state.users.get(p.id)?.role;
    return h('li', {
      class: `presence-item${p.online ? ' online' : ''}`,
      'data-presence-user': p.id,
      'data-online': String(Boolean(p.online)),
    },
    h('span', { class: 'dot', 'data-online': String(Boolean(p.online)), 'aria-hidden': 'true' }),
    h('span', { class: 'presence-name' },
      p.id === me ? t('presence.you', { name: userName(p.id) }) : userName(p.id),
      role ? h('span', { class: 'muted small' }, ` · ${roleLabel(role)}`) : null),
    h('span', { class: 'sr-only' }, ` ${t(p.online ? 'presence.online' : 'presence.offline')}`),
    !p.online && p.last_seen ? timeEl(p.last_seen, 'muted small presence-seen') : null);
  }));
}

export function clearPresence() {
  presence.clear();
  render();
}

// state.js — the shared client state: the signed-in user, the directory of people
// (GET /api/users/directory, and the names tickets, conversations and comments carry),
// the machines, and a tiny publish/subscribe so screens can react.

import { api } from './api.js';
import { t } from './i18n.js';

export const state = {
  me: null,
  users: new Map(), // id -> {id, full_name, role, email?}
  machines: new Map(), // id -> the machine as GET /api/machines gives it
};

const listeners = new Map();

export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
  return () => listeners.get(event).delete(fn);
}

export function emit(event, payload) {
  for (const fn of listeners.get(event) || []) {
    try { fn(payload); } catch (err) { console.error(err); }
  }
}

export const roleLabel = (role) => t(`role.${role}`);

export function isManager() {
  return state.me?.role === 'admin' || state.me?.role === 'supervisor';
}
export function isAdmin() { return state.me?.role === 'admin'; }
export function myId() { return state.me ? state.me.id : null; }
export function signedIn() { return state.me !== null; }

let usersTimer = null;
/** Remember a person; fires "users" (debounced) when something new was learnt. */
export function rememberUser(id, name, extra = {}) {
  const old = state.users.get(id);
  const next = { ...old, ...extra, id, full_name: name };
  state.users.set(id, next);
  if (JSON.stringify(old) !== JSON.stringify(next)) {
    clearTimeout(usersTimer);
    usersTimer = setTimeout(() => emit('users', state.users), 50);
  }
}

/** A person's name; someone who joined since the directory was loaded shows by id. */
export function userName(id) {
  return state.users.get(id)?.full_name ?? t('people.unknown', { id });
}

export function knownUsers() {
  return Array.from(state.users.values()).sort((a, b) => userName(a.id).localeCompare(userName(b.id)));
}

/** Learn the assignee's name a ticket card or detail carries. */
export function rememberFromTicket(t) {
  if (t.assigned_to != null) rememberUser(t.assigned_to, t.assignee_name);
}

/** The people directory, GET /api/users/directory: everyone's name and role. */
let usersInFlight = null;
export function loadUsers() {
  if (!usersInFlight) usersInFlight = fetchUsers().finally(() => { usersInFlight = null; });
  return usersInFlight;
}

async function fetchUsers() {
  try {
    for (const u of await api('/api/users/directory')) rememberUser(u.id, u.full_name, { role: u.role });
  } catch { /* offline or failing: the next call tries again */ }
}

export async function loadMachines() {
  try {
    for (const m of await api('/api/machines')) state.machines.set(m.id, m);
  } catch { /* the cards carry their machine's name; the report dialog asks again */ }
}

export function resetState() {
  state.me = null;
  state.users.clear();
  state.machines.clear();
}

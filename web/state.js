// state.js — the shared client state: the signed-in user, a directory of people the page
// knows about (from /api/users when allowed, else from tickets, conversations, comments,
// presence), the machines, and a tiny publish/subscribe so screens can react.

import { api, asList } from './api.js';

export const state = {
  me: null,
  users: new Map(), // id -> {id, full_name, role?, email?}
  machines: new Map(), // id -> {id, name, location, status}
  usersEndpointAllowed: null, // null unknown, true/false after GET /api/users
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

export const ROLE_LABELS = {
  admin: 'Admin', supervisor: 'Supervisor', technician: 'Technician', operator: 'Operator',
};

export function isManager() {
  return state.me?.role === 'admin' || state.me?.role === 'supervisor';
}
export function isAdmin() { return state.me?.role === 'admin'; }
export function myId() { return state.me ? Number(state.me.id) : null; }

let usersTimer = null;
/** Remember a person; fires "users" (debounced) when something new was learnt. */
export function rememberUser(id, name, extra = {}) {
  if (id == null || id === '') return;
  const key = Number(id);
  if (!Number.isFinite(key)) return;
  const old = state.users.get(key) || { id: key };
  const next = { ...old, ...Object.fromEntries(Object.entries(extra).filter(([, v]) => v != null)) };
  if (name) next.full_name = name;
  const changed = JSON.stringify(old) !== JSON.stringify(next) || !state.users.has(key);
  state.users.set(key, next);
  if (changed) {
    clearTimeout(usersTimer);
    usersTimer = setTimeout(() => emit('users', state.users), 50);
  }
}

export function userName(id) {
  if (id == null) return '';
  const u = state.users.get(Number(id));
  if (u?.full_name) return u.full_name;
  if (u?.email) return u.email;
  return `User #${id}`;
}

export function knownUsers() {
  return Array.from(state.users.values()).sort((a, b) => userName(a.id).localeCompare(userName(b.id)));
}

/** Learn the names carried by a ticket card or detail. */
export function rememberFromTicket(t) {
  if (!t) return;
  if (t.assigned_to != null) rememberUser(t.assigned_to, t.assignee_name);
  if (t.reported_by != null) rememberUser(t.reported_by, t.reporter_name || t.reported_by_name);
  if (t.machine_id != null && t.machine_name && !state.machines.has(Number(t.machine_id))) {
    state.machines.set(Number(t.machine_id), { id: Number(t.machine_id), name: t.machine_name });
  }
}

/**
 * The people directory: GET /api/users/directory (names and roles, for everyone), else
 * GET /api/users (admins). When neither answers, the directory is built from what the page sees.
 */
let usersInFlight = null;
export function loadUsers() {
  if (state.usersEndpointAllowed === false) return Promise.resolve();
  if (!usersInFlight) usersInFlight = fetchUsers().finally(() => { usersInFlight = null; });
  return usersInFlight;
}

async function fetchUsers() {
  for (const path of ['/api/users/directory', '/api/users']) {
    try {
      const users = asList(await api(path), 'users');
      state.usersEndpointAllowed = true;
      for (const u of users) rememberUser(u.id, u.full_name, { email: u.email, role: u.role });
      return;
    } catch (err) {
      if (err.status !== 403 && err.status !== 404) return; // offline or failing: try again later
    }
  }
  state.usersEndpointAllowed = false;
}

export async function loadMachines() {
  try {
    const machines = asList(await api('/api/machines'), 'machines');
    for (const m of machines) state.machines.set(Number(m.id), m);
    emit('machines', state.machines);
  } catch { /* the board still shows machine names carried by the cards */ }
}

export function resetState() {
  state.me = null;
  state.users.clear();
  state.machines.clear();
  state.usersEndpointAllowed = null;
}

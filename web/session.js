// session.js — start-up and the session, the page's entry point: registers the service
// worker, asks who is signed in (GET /api/auth/me, or the user of the last session when
// the server cannot be reached), the login screen with the demo logins, starting the
// signed-in app, and ending it (sign-out, or a session the server no longer accepts).
// Each screen lives in its own module; live.js keeps the page current.

import { api, setToken, onUnauthorized, getToken } from './api.js';
import { $, $$, h, fill, setBadge } from './ui.js';
import { state, rememberUser, loadUsers, loadMachines, resetState, ROLE_LABELS } from './state.js';
import { initBoard, clearBoard } from './board.js';
import { initTicket, openTicket, closeTicket } from './ticket.js';
import { initMessages } from './messages.js';
import { initNotifications, clearNotifications } from './notifications.js';
import { initPreferences } from './preferences.js';
import { initPush, syncSubscription, deviceEndpoint, dropLocalSubscription } from './push.js';
import { initPresence, clearPresence } from './presence.js';
import { initAdmin } from './admin.js';
import { initLive, startLive, stopLive, refreshAll, markServerUnreachable } from './live.js';
import { initNavigation, routeFromLocation, openUrl } from './navigation.js';

const USER_KEY = 'floorbell.user';
const FLASH_KEY = 'floorbell.flash';
const SESSION_ENDED = 'Your session has ended. Please sign in again.';
const STATIC_DEMO_LOGINS = [
  { email: 'admin@example.com', role: 'admin' },
  { email: 'supervisor@example.com', role: 'supervisor' },
  { email: 'tech1@example.com', role: 'technician' },
  { email: 'tech2@example.com', role: 'technician' },
  { email: 'operator@example.com', role: 'operator' },
];
const DEMO_PASSWORD = 'floorbell';

async function boot() {
  registerServiceWorker();
  initLive({ onUnauthorized: () => endSession(SESSION_ENDED) });
  onUnauthorized(() => endSession(SESSION_ENDED));

  initBoard({ onOpen: (id) => openTicket(id) });
  initTicket();
  initMessages();
  initNotifications({ onOpenUrl: openUrl });
  initPreferences();
  initPush();
  initPresence();
  initAdmin();
  initNavigation();
  initLogin();
  $('#logout-button').addEventListener('click', logout);

  let user = null;
  try {
    user = await api('/api/auth/me', { auth401: false });
  } catch (err) {
    if (err.offline) {
      markServerUnreachable();
      const cached = cachedUser();
      if (cached && getToken()) user = cached;
    }
  }
  document.body.classList.remove('booting');
  if (user) startApp(user);
  else showLogin();
}

function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err) => {
    console.warn('service worker registration failed', err);
  });
  // sw.js posts {type: 'navigate', url} for a clicked push, {type: 'acknowledged'} after
  // its "on my way" action.
  navigator.serviceWorker.addEventListener('message', (event) => {
    const msg = event.data;
    if (msg.type === 'navigate') openUrl(msg.url);
    if (msg.type === 'acknowledged') refreshAll();
  });
}

// ---- login ------------------------------------------------------------------------

function initLogin() {
  const form = $('#login-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const email = form.elements.email.value.trim();
    const password = form.elements.password.value;
    const error = $('#login-error');
    error.hidden = true;
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      const { token, user } = await api('/api/auth/login', { method: 'POST', body: { email, password }, auth401: false });
      setToken(token);
      form.reset();
      startApp(user);
    } catch (err) {
      error.textContent = err.status === 401 ? 'Wrong email or password.' : err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  renderDemoLogins(STATIC_DEMO_LOGINS, DEMO_PASSWORD);
}

/** GET /api/demo-logins, {logins: [{email, full_name, role}], password}; 404 when demo mode is off. */
async function loadDemoLogins() {
  try {
    const { logins, password } = await api('/api/demo-logins', { auth401: false });
    if (logins.length) renderDemoLogins(logins, password);
  } catch { /* keep the static list */ }
}

/** `list`: {email, role, full_name?} (the static list has no names). */
function renderDemoLogins(list, password) {
  const form = $('#login-form');
  $('#demo-password').textContent = password;
  fill($('#demo-logins'), list.map((entry) => h('li', {},
    h('button', {
      type: 'button', class: 'demo-login',
      onclick: () => {
        form.elements.email.value = entry.email;
        form.elements.password.value = password;
        form.requestSubmit();
      },
    },
    h('span', { class: 'demo-email' }, entry.email),
    h('span', { class: 'demo-role muted' }, [entry.full_name, ROLE_LABELS[entry.role]].filter(Boolean).join(' · '))))));
}

function showLogin() {
  $('#app-view').hidden = true;
  $('#login-view').hidden = false;
  const flash = sessionStorage.getItem(FLASH_KEY);
  sessionStorage.removeItem(FLASH_KEY);
  const note = $('#login-flash');
  note.textContent = flash || '';
  note.hidden = !flash;
  loadDemoLogins();
  setTimeout(() => $('#login-email')?.focus(), 0);
}

// ---- session ----------------------------------------------------------------------

function cachedUser() {
  try { return JSON.parse(localStorage.getItem(USER_KEY) || 'null'); } catch { return null; }
}

/** `user` as GET /api/auth/me gives it: {id, email, full_name, role}. */
function startApp(user) {
  state.me = user;
  rememberUser(user.id, user.full_name, { email: user.email, role: user.role });
  try { localStorage.setItem(USER_KEY, JSON.stringify(user)); } catch { /* ignore */ }
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  fill($('#user-name'), user.full_name, h('span', { class: 'muted small' }, ` · ${ROLE_LABELS[user.role]}`));
  for (const el of $$('[data-requires]')) {
    el.hidden = !el.dataset.requires.split(' ').includes(user.role);
  }
  routeFromLocation();
  refreshAll();
  loadUsers();
  loadMachines();
  startLive();
  syncSubscription();
}

async function logout() {
  const button = $('#logout-button');
  button.disabled = true;
  let endpoint = null;
  try { endpoint = await deviceEndpoint(); } catch { /* no push on this device */ }
  try {
    await api('/api/auth/logout', { method: 'POST', body: endpoint ? { endpoint } : {}, auth401: false });
  } catch { /* signed out locally either way */ }
  await dropLocalSubscription();
  button.disabled = false;
  endSession('You are signed out.');
}

function endSession(message) {
  stopLive();
  setToken(null);
  try { localStorage.removeItem(USER_KEY); } catch { /* ignore */ }
  closeTicket();
  clearBoard();
  clearPresence();
  clearNotifications();
  resetState();
  setBadge('messages', 0);
  setBadge('notifications', 0);
  if (message) sessionStorage.setItem(FLASH_KEY, message);
  showLogin();
}

boot();

// session.js — start-up and the session, the page's entry point: registers the service
// worker, asks who is signed in (GET /api/auth/me, or the user of the last session when
// the server cannot be reached), the login screen with the demo logins, starting the
// signed-in app, and ending it (sign-out, or a session the server no longer accepts).
// Each screen lives in its own module; live.js keeps the page current. The page speaks
// the person's language from the first paint: the last session's, else the browser's,
// then the account's once it is known.

import { api, setToken, onUnauthorized, getToken } from './api.js';
import { $, $$, h, fill, setBadge } from './ui.js';
import { state, rememberUser, loadUsers, loadMachines, resetState, roleLabel } from './state.js';
import { t, useLanguage, browserLanguage, onLanguage, describeError } from './i18n.js';
import { initPersonal, renderPersonal } from './personal.js';
import { initColumnSwitcher } from './columns.js';
import { initBoard, clearBoard } from './board.js';
import { initTicket, openTicket, closeTicket } from './ticket.js';
import { initMessages } from './messages.js';
import { initNotifications, clearNotifications } from './notifications.js';
import { initPreferences } from './preferences.js';
import { initPush, syncSubscription, deviceEndpoint, dropLocalSubscription } from './push.js';
import { initPresence, clearPresence } from './presence.js';
import { initAdmin } from './admin.js';
import { initStatistics } from './statistics.js';
import { initLive, startLive, stopLive, refreshAll, markServerUnreachable } from './live.js';
import { initNavigation, routeFromLocation, openUrl } from './navigation.js';

const USER_KEY = 'floorbell.user';
const FLASH_KEY = 'floorbell.flash';
const SESSION_ENDED = 'session.ended';
const SIGNED_OUT = 'session.signed_out';
const STATIC_DEMO_LOGINS = [
  { email: 'admin@example.com', role: 'admin' },
  { email: 'supervisor@example.com', role: 'supervisor' },
  { email: 'tech1@example.com', role: 'technician' },
  { email: 'tech2@example.com', role: 'technician' },
  { email: 'operator@example.com', role: 'operator' },
];
const DEMO_PASSWORD = 'floorbell';

async function boot() {
  await useLanguage(cachedUser()?.language || browserLanguage());
  registerServiceWorker();
  initLive({ onUnauthorized: () => endSession(SESSION_ENDED) });
  onUnauthorized(() => endSession(SESSION_ENDED));

  initBoard({ onOpen: (id) => openTicket(id) });
  initColumnSwitcher();
  initTicket();
  initMessages();
  initNotifications({ onOpenUrl: openUrl });
  initPreferences();
  initPush();
  initPresence();
  initAdmin();
  initStatistics();
  initPersonal({ onLanguageSaved: rememberSession });
  initNavigation();
  initLogin();
  onLanguage(renderSessionWords);
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
  if (user) await startApp(user);
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
    button.textContent = t('login.submitting');
    try {
      const { token, user } = await api('/api/auth/login', { method: 'POST', body: { email, password }, auth401: false });
      setToken(token);
      form.reset();
      await startApp(user);
    } catch (err) {
      error.textContent = describeError(err);
      error.hidden = false;
    } finally {
      button.disabled = false;
      button.textContent = t('login.submit');
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

let demoLogins = { list: STATIC_DEMO_LOGINS, password: DEMO_PASSWORD };

/** `list`: {email, role, full_name?} (the static list has no names). */
function renderDemoLogins(list, password) {
  demoLogins = { list, password };
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
    h('span', { class: 'demo-role muted' }, [entry.full_name, roleLabel(entry.role)].filter(Boolean).join(' · '))))));
}

function showLogin() {
  $('#app-view').hidden = true;
  $('#login-view').hidden = false;
  const flash = sessionStorage.getItem(FLASH_KEY);
  sessionStorage.removeItem(FLASH_KEY);
  const note = $('#login-flash');
  note.dataset.key = flash || '';
  note.textContent = flash ? t(flash) : '';
  note.hidden = !flash;
  loadDemoLogins();
  // Focus the e-mail field for the first keystroke, unless the person is already typing in
  // the form (a slow start must not move their password into the e-mail field).
  setTimeout(() => {
    if (!$('#login-form')?.contains(document.activeElement)) $('#login-email')?.focus();
  }, 0);
}

// ---- session ----------------------------------------------------------------------

function cachedUser() {
  try { return JSON.parse(localStorage.getItem(USER_KEY) || 'null'); } catch { return null; }
}

/** Keep the signed-in user for the next start (offline, and its language at first paint). */
function rememberSession(user) {
  state.me = user;
  try { localStorage.setItem(USER_KEY, JSON.stringify(user)); } catch { /* ignore */ }
}

/** `user` as GET /api/auth/me gives it: {id, email, full_name, role, language}. */
async function startApp(user) {
  rememberSession(user);
  await useLanguage(user.language);
  rememberUser(user.id, user.full_name, { email: user.email, role: user.role });
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  renderSessionWords();
  renderPersonal();
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
  endSession(SIGNED_OUT);
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

/** What this module wrote, again in the language just chosen. */
function renderSessionWords() {
  const user = state.me;
  if (user) fill($('#user-name'), user.full_name, h('span', { class: 'muted small' }, ` · ${roleLabel(user.role)}`));
  renderDemoLogins(demoLogins.list, demoLogins.password);
  const note = $('#login-flash');
  if (note.dataset.key) note.textContent = t(note.dataset.key);
}

boot();

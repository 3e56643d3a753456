// app.js — bootstrap and wiring: service worker registration, the login screen (with
// the demo logins), session start and end, navigation between screens, deep links
// (/?ticket=<id>, /?conversation=<user id>, /?messages=public, #view), the offline
// banner, and routing every stream event to the screen that owns it. Each screen lives
// in its own module.

import { api, setToken, onUnauthorized, getToken } from './api.js';
import { $, $$, h, fill, setBanner, setBadge, getBadge, showView, currentView, onViewChange } from './ui.js';
import { state, on, rememberUser, loadUsers, loadMachines, resetState, ROLE_LABELS } from './state.js';
import { createStream, POLL_SECONDS } from './stream.js';
import { initBoard, loadBoard, applyBoardEvent, clearBoard } from './board.js';
import { initTicket, openTicket, closeTicket, onTicketEvent, refreshComments, reloadOpenTicket, openTicketId } from './ticket.js';
import {
  initMessages, loadConversations, refreshUnreadMessages, onNewMessage, reloadThread, openContactFromUrl, PUBLIC,
} from './messages.js';
import {
  initNotifications, loadNotifications, refreshUnreadNotifications, handlePersonal, clearNotifications,
} from './notifications.js';
import { initPreferences, loadPreferences } from './preferences.js';
import { initPush, renderPush, syncSubscription, deviceEndpoint, dropLocalSubscription } from './push.js';
import { initPresence, loadPresence, applyPresence, clearPresence } from './presence.js';
import { initAdmin, loadAdmin } from './admin.js';

const USER_KEY = 'floorbell.user';
const FLASH_KEY = 'floorbell.flash';
const BOARD_EVENTS = new Set(['ticket_created', 'ticket_updated', 'ticket_moved']);
const STATIC_DEMO_LOGINS = [
  { email: 'admin@example.com', role: 'admin' },
  { email: 'supervisor@example.com', role: 'supervisor' },
  { email: 'tech1@example.com', role: 'technician' },
  { email: 'tech2@example.com', role: 'technician' },
  { email: 'operator@example.com', role: 'operator' },
];
const DEMO_PASSWORD = 'floorbell';

let started = false;
let serverUnreachable = false;
let lastUnreadEventAt = 0;
let unreadCheckTimer = null;

const stream = createStream({
  onEvent: onStreamEvent,
  onRefetch: () => refreshAll(),
  onPoll: () => refreshAll({ announceNew: true }),
  onUnauthorized: () => endSession('Your session has ended. Please sign in again.'),
  onStatus: renderLiveStatus,
});

// ---- boot -------------------------------------------------------------------------

async function boot() {
  registerServiceWorker();
  watchConnectivity();
  onUnauthorized(() => endSession('Your session has ended. Please sign in again.'));

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
  on('ticket', onTicketEvent);

  let user = null;
  try {
    user = await api('/api/auth/me', { auth401: false });
  } catch (err) {
    if (err.offline) {
      serverUnreachable = true;
      updateOfflineBanner();
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
  navigator.serviceWorker.addEventListener('message', (event) => {
    const msg = event.data;
    if (msg.type === 'navigate' && msg.url) openUrl(msg.url);
    if (msg.type === 'acknowledged') refreshAll();
  });
}

function watchConnectivity() {
  window.addEventListener('online', () => { serverUnreachable = false; updateOfflineBanner(); if (started) refreshAll(); });
  window.addEventListener('offline', updateOfflineBanner);
  updateOfflineBanner();
}

function updateOfflineBanner() {
  const offline = navigator.onLine === false || serverUnreachable;
  setBanner('offline-banner', offline ? 'You are offline — showing the last loaded data. Changes will not be saved until the connection returns.' : '');
  document.body.classList.toggle('is-offline', offline);
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
  started = false;
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

function startApp(user) {
  state.me = user;
  rememberUser(user.id, user.full_name, { email: user.email, role: user.role });
  try { localStorage.setItem(USER_KEY, JSON.stringify(user)); } catch { /* ignore */ }
  started = true;
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
  stream.start();
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
  stream.stop();
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

// ---- refresh ----------------------------------------------------------------------

let refreshing = null;
let refreshAgain = false;
let refreshOptions = {};

/** Refetch everything the page shows; concurrent calls coalesce into one more round. */
function refreshAll(options = {}) {
  refreshOptions = { ...refreshOptions, ...options };
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      const opts = refreshOptions;
      refreshOptions = {};
      if (!started) break;
      // Live events arriving while the state loads are held, then applied on top of it:
      // a slow answer must not overwrite a change the stream already brought.
      pendingEvents = pendingEvents || [];
      const board = loadBoard();
      const results = await Promise.allSettled([
        board,
        loadPresence(),
        refreshUnreadMessages(),
        refreshUnreadNotifications(),
        loadNotifications({ announceNew: Boolean(opts.announceNew) }),
        loadConversations(),
        reloadThread(),
        reloadOpenTicket(),
      ]);
      const boardResult = results[0];
      const wasUnreachable = serverUnreachable;
      serverUnreachable = boardResult.status === 'rejected' && boardResult.reason?.status === 0;
      if (wasUnreachable !== serverUnreachable) updateOfflineBanner();
      flushPendingEvents();
    } while (refreshAgain && started);
  })().finally(() => {
    refreshing = null;
    flushPendingEvents();
  });
  return refreshing;
}

// ---- stream events ----------------------------------------------------------------

let pendingEvents = null; // [type, envelope] pairs held while a refresh is loading

function onStreamEvent(type, envelope) {
  if (pendingEvents) pendingEvents.push([type, envelope]);
  else routeEvent(type, envelope);
}

function flushPendingEvents() {
  const held = pendingEvents || [];
  pendingEvents = null;
  for (const [type, envelope] of held) routeEvent(type, envelope);
}

function routeEvent(type, envelope) {
  const { data } = envelope;
  if (BOARD_EVENTS.has(type)) applyBoardEvent(type, envelope);
  else if (type === 'presence') applyPresence(data);
  else if (type === 'unread_count') {
    const before = getBadge('messages');
    setBadge('messages', data.messages);
    if (data.messages > before && currentView() === 'messages') {
      loadConversations().catch(() => {});
      reloadThread();
    }
    setBadge('notifications', data.notifications);
    lastUnreadEventAt = Date.now();
  } else if (type === 'connected') {
    if (serverUnreachable) { serverUnreachable = false; updateOfflineBanner(); }
  }

  if (envelope.notification_id != null) {
    handlePersonal(envelope);
    // The gateway follows with unread_count; ask for the count only if that does not come.
    const receivedAt = Date.now();
    clearTimeout(unreadCheckTimer);
    unreadCheckTimer = setTimeout(() => {
      if (lastUnreadEventAt < receivedAt) refreshUnreadNotifications().catch(() => {});
    }, 1500);
    if (type === 'new_message') onNewMessage(envelope);
    // Notifications about a ticket carry its numeric id as data.ticket_id.
    if (data.ticket_id === openTicketId()) {
      if (type === 'comment_added') refreshComments(data.ticket_id);
      else reloadOpenTicket();
    }
  }
}

function renderLiveStatus(status) {
  const el = $('#live-status');
  el.dataset.state = status;
  el.textContent = {
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    polling: `Refreshing every ${POLL_SECONDS} s`,
    stopped: '',
  }[status] || status;
  el.title = status === 'live' ? 'Live updates are on' : el.textContent;
}

// ---- navigation and deep links ----------------------------------------------------

function initNavigation() {
  window.addEventListener('hashchange', () => { if (started) showView(location.hash.slice(1)); });
  window.addEventListener('popstate', () => { if (started) routeFromLocation(); });
  onViewChange(onView);
  $('#logout-button').addEventListener('click', logout);
}

function onView(view) {
  if (!started) return;
  if (location.hash.slice(1) !== view) {
    const url = new URL(location.href);
    url.hash = view === 'board' ? '' : view;
    history.replaceState(history.state, '', url);
  }
  document.title = { board: 'Board', messages: 'Messages', notifications: 'Notifications', settings: 'Settings' }[view] + ' · Floorbell';
  if (view === 'messages') loadConversations().catch(() => {});
  if (view === 'notifications') loadNotifications().catch(() => {});
  if (view === 'settings') {
    loadPreferences();
    renderPush();
    loadAdmin();
  }
  $('main')?.focus({ preventScroll: true });
}

function routeFromLocation() {
  const params = new URLSearchParams(location.search);
  const view = location.hash.slice(1) || params.get('view') || 'board';
  showView(view);
  const ticket = Number(params.get('ticket'));
  if (ticket) openTicket(ticket);
  else closeTicket();
  const contact = contactFrom(params);
  if (contact) {
    const url = new URL(location.href);
    for (const key of ['contact', 'conversation', 'messages']) url.searchParams.delete(key);
    history.replaceState(history.state, '', url);
    openContactFromUrl(contact);
  }
}

/** ?conversation=<user id> (or ?contact=) opens that thread; ?messages=public the public channel. */
function contactFrom(params) {
  if (params.get('messages') === 'public') return PUBLIC;
  const id = Number(params.get('conversation') || params.get('contact'));
  return id > 0 ? id : null;
}

/** Open a notification url (from a toast, the notification centre or the service worker). */
export function openUrl(raw) {
  let url;
  try { url = new URL(raw, location.origin); } catch { return; }
  if (url.origin !== location.origin) {
    window.open(url.href, '_blank', 'noopener');
    return;
  }
  if (url.pathname !== '/' && url.pathname !== '/index.html') {
    location.assign(url.href);
    return;
  }
  if (!started) {
    history.replaceState(null, '', url);
    return;
  }
  const ticket = Number(url.searchParams.get('ticket'));
  const contact = contactFrom(url.searchParams);
  const view = url.hash.slice(1) || url.searchParams.get('view');
  if (ticket) {
    if (view) showView(view);
    openTicket(ticket);
  } else if (contact) {
    closeTicket();
    openContactFromUrl(contact);
  } else if (view) {
    closeTicket();
    showView(view);
  }
}

boot();

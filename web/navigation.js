// navigation.js — screens and deep links: the screen in the address bar (#board,
// #messages, #notifications, #settings, or ?view=), what a screen loads when shown,
// /?ticket=<id>, /?conversation=<user id> (or ?contact=), /?messages=public, and opening
// the url of a notification (a toast, the notification centre, the service worker).

import { $, showView, onViewChange, currentView } from './ui.js';
import { t, onLanguage } from './i18n.js';
import { signedIn } from './state.js';
import { openTicket, closeTicket } from './ticket.js';
import { loadConversations, openContactFromUrl, PUBLIC } from './messages.js';
import { loadNotifications } from './notifications.js';
import { loadPreferences } from './preferences.js';
import { renderPush } from './push.js';
import { loadStatistics } from './statistics.js';

export function initNavigation() {
  onLanguage(() => { if (signedIn()) setTitle(currentView()); });
  window.addEventListener('hashchange', () => { if (signedIn()) showView(location.hash.slice(1)); });
  window.addEventListener('popstate', () => { if (signedIn()) routeFromLocation(); });
  onViewChange(onView);
}

function onView(view) {
  if (!signedIn()) return;
  if (location.hash.slice(1) !== view) {
    const url = new URL(location.href);
    url.hash = view === 'board' ? '' : view;
    history.replaceState(history.state, '', url);
  }
  setTitle(view);
  if (view === 'messages') loadConversations().catch(() => {});
  if (view === 'notifications') loadNotifications().catch(() => {});
  if (view === 'settings') {
    loadPreferences();
    renderPush();
  }
  if (view === 'statistics') loadStatistics();
  $('main')?.focus({ preventScroll: true });
}

function setTitle(view) {
  document.title = `${t(`nav.${view}`)} · Floorbell`;
}

/** Show what the address bar names (at sign-in, and on back and forward). */
export function routeFromLocation() {
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
  if (!signedIn()) {
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

// live.js — keeps the signed-in page current: what each stream event does to the page,
// the full refetch the stream asks for (on a reset, a fresh connection, and every few
// seconds while it polls) with live events held while that loads, the live status in
// the top bar, and the offline banner.

import { $, setBanner, setBadge, getBadge, currentView } from './ui.js';
import { t, onLanguage } from './i18n.js';
import { signedIn } from './state.js';
import { BOARD_EVENTS } from './events.js';
import { createStream, POLL_SECONDS } from './stream.js';
import { loadBoard, applyBoardEvent } from './board.js';
import { onTicketEvent, refreshComments, reloadOpenTicket, openTicketId } from './ticket.js';
import { loadConversations, refreshUnreadMessages, onNewMessage, reloadThread } from './messages.js';
import { loadNotifications, refreshUnreadNotifications, handlePersonal } from './notifications.js';
import { loadPresence, applyPresence } from './presence.js';

// The gateway follows a notification with unread_count; without one by then, ask.
const UNREAD_CHECK_MS = 1500;

let stream = null;
let serverUnreachable = false;
let lastUnreadEventAt = 0;
let unreadCheckTimer = null;
let pendingEvents = null; // [type, envelope] pairs held while a refresh is loading

/** Once at start-up; `onUnauthorized` runs when the stream finds the session gone. */
export function initLive({ onUnauthorized }) {
  stream = createStream({
    onEvent: onStreamEvent,
    onRefetch: () => refreshAll(),
    onPoll: () => refreshAll({ announceNew: true }),
    onUnauthorized,
    onStatus: renderLiveStatus,
  });
  window.addEventListener('online', () => {
    serverUnreachable = false;
    updateOfflineBanner();
    if (signedIn()) refreshAll();
  });
  window.addEventListener('offline', updateOfflineBanner);
  updateOfflineBanner();
  onLanguage(() => {
    updateOfflineBanner();
    const status = $('#live-status').dataset.state;
    renderLiveStatus(status);
    if (status === 'polling') setBanner('live-banner', t('live.polling_banner', { seconds: POLL_SECONDS }));
  });
}

export function startLive() { stream.start(); }
export function stopLive() { stream.stop(); }

/** The server did not answer (at start-up): the offline banner says so. */
export function markServerUnreachable() {
  serverUnreachable = true;
  updateOfflineBanner();
}

function updateOfflineBanner() {
  const offline = navigator.onLine === false || serverUnreachable;
  setBanner('offline-banner', offline ? t('live.offline') : '');
  document.body.classList.toggle('is-offline', offline);
}

// ---- refresh ----------------------------------------------------------------------

let refreshing = null;
let refreshAgain = false;
let refreshOptions = {};

/** Refetch everything the page shows; concurrent calls coalesce into one more round. */
export function refreshAll(options = {}) {
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
      if (!signedIn()) break;
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
    } while (refreshAgain && signedIn());
  })().finally(() => {
    refreshing = null;
    flushPendingEvents();
  });
  return refreshing;
}

// ---- stream events ----------------------------------------------------------------

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
  if (BOARD_EVENTS.includes(type)) onTicketEvent(applyBoardEvent(envelope));
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
    const receivedAt = Date.now();
    clearTimeout(unreadCheckTimer);
    unreadCheckTimer = setTimeout(() => {
      if (lastUnreadEventAt < receivedAt) refreshUnreadNotifications().catch(() => {});
    }, UNREAD_CHECK_MS);
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
  el.textContent = status === 'stopped' ? '' : t(`live.${status}`, { seconds: POLL_SECONDS });
  el.title = status === 'live' ? t('live.live_title') : el.textContent;
}

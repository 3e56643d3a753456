// stream.js — the live connection. Opens an EventSource on /api/sse/stream (the
// HttpOnly cookie authenticates it), remembers the last event id, reconnects with
// jittered exponential backoff passing ?last_event_id=, asks for a state refetch on
// `reset` (and on a fresh, non-resumed connection), goes back to the login on 401,
// and after repeated failures polls the REST API every few seconds with a visible banner.

import { api } from './api.js';
import { setBanner } from './ui.js';
import { t } from './i18n.js';
import { EVENT_TYPES } from './events.js';

export const POLL_SECONDS = 5;
const FAILURES_BEFORE_POLLING = 3;
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

/**
 * createStream({onEvent(type, envelope), onRefetch(reason), onPoll(), onUnauthorized(), onStatus(status)})
 * status is one of: "connecting", "live", "reconnecting", "polling", "stopped".
 */
export function createStream(handlers) {
  const { onEvent, onRefetch, onPoll, onUnauthorized, onStatus = () => {} } = handlers;
  let source = null;
  let lastEventId = null;
  let failures = 0;
  let retryTimer = null;
  let pollTimer = null;
  let stopped = true;
  let status = 'stopped';

  const setStatus = (next) => {
    if (status === next) return;
    status = next;
    onStatus(next);
  };

  function url() {
    const base = '/api/sse/stream';
    return lastEventId ? `${base}?last_event_id=${encodeURIComponent(lastEventId)}` : base;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (stopped) return;
    closeSource();
    if (typeof EventSource === 'undefined') {
      startPolling();
      return;
    }
    if (status !== 'polling') setStatus(failures ? 'reconnecting' : 'connecting');
    const es = new EventSource(url(), { withCredentials: true });
    source = es;
    es.onerror = () => {
      if (source !== es) return;
      // CLOSED: the browser gave up (a non-200 answer such as 401 or 503).
      // CONNECTING: the connection dropped; we reconnect ourselves to pass the id.
      const gaveUp = es.readyState === EventSource.CLOSED;
      closeSource();
      failed(gaveUp);
    };
    const listener = (event) => receive(event.type, event);
    for (const type of EVENT_TYPES) es.addEventListener(type, listener);
  }

  /** Every frame has an `id:`, an `event:` (the type) and the envelope as its data. */
  function receive(type, event) {
    lastEventId = event.lastEventId;
    const envelope = JSON.parse(event.data);

    if (type === 'connected') {
      failures = 0;
      stopPolling();
      setStatus('live');
      // A fresh stream (no resume) may have missed changes since the page loaded.
      if (!envelope.data.resumed) onRefetch('connected');
    } else if (type === 'reset') {
      onRefetch(envelope.data.reason);
    }
    try {
      onEvent(type, envelope);
    } catch (err) {
      console.error('stream handler failed', type, err);
    }
  }

  async function failed(gaveUp) {
    failures += 1;
    if (failures >= FAILURES_BEFORE_POLLING) startPolling();
    else setStatus('reconnecting');
    if (gaveUp) {
      // EventSource hides the status code: ask the API whether the session still holds.
      try {
        await api('/api/auth/me', { auth401: false });
      } catch (err) {
        if (err.status === 401) {
          stop();
          onUnauthorized();
          return;
        }
      }
    }
    schedule();
  }

  function schedule() {
    if (stopped) return;
    clearTimeout(retryTimer);
    const exp = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, failures - 1));
    const delay = Math.round(exp * (0.5 + Math.random())); // ±50 % jitter
    retryTimer = setTimeout(connect, delay);
  }

  function startPolling() {
    if (status === 'polling' || stopped) return;
    setStatus('polling');
    setBanner('live-banner', t('live.polling_banner', { seconds: POLL_SECONDS }));
    clearInterval(pollTimer);
    pollTimer = setInterval(() => { if (!stopped) onPoll(); }, POLL_SECONDS * 1000);
    onPoll();
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
    setBanner('live-banner', '');
  }

  function closeSource() {
    if (source) {
      source.onerror = null;
      source.close();
      source = null;
    }
  }

  // Network back, or the tab shown again: retry now instead of waiting out the backoff.
  const retrySoon = () => {
    if (stopped || source) return;
    if (document.visibilityState === 'visible' && navigator.onLine !== false) connect();
  };
  window.addEventListener('online', retrySoon);
  document.addEventListener('visibilitychange', retrySoon);

  function start() {
    if (!stopped) return;
    stopped = false;
    failures = 0;
    connect();
  }

  function stop() {
    stopped = true;
    clearTimeout(retryTimer);
    closeSource();
    stopPolling();
    lastEventId = null;
    setStatus('stopped');
  }

  return { start, stop };
}

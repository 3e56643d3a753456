// sw.js — the service worker: caches the app shell so the page opens offline, shows
// Web Push notifications, handles their clicks (the "acknowledge" action calls the API;
// anything else focuses or opens data.url; every click is reported), and re-subscribes
// when the browser rotates the push subscription. Authenticates with the session cookie.

const CACHE = 'floorbell-shell-v4';
const SHELL = [
  '/',
  '/styles.css',
  '/session.js',
  '/live.js',
  '/navigation.js',
  '/events.js',
  '/api.js',
  '/ui.js',
  '/state.js',
  '/stream.js',
  '/board.js',
  '/ticket.js',
  '/messages.js',
  '/notifications.js',
  '/preferences.js',
  '/push.js',
  '/presence.js',
  '/admin.js',
  '/statistics.js',
  '/vendor/chartist/chartist.js',
  '/vendor/chartist/chartist.css',
  '/i18n.js',
  '/personal.js',
  '/columns.js',
  '/sound.js',
  '/i18n/fr.json',
  '/i18n/en.json',
  '/manifest.webmanifest',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
  '/icons/icon-maskable-192.png',
  '/icons/icon-maskable-512.png',
  '/icons/badge-72.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One missing file must not prevent the rest of the shell from being cached.
    await Promise.all(SHELL.map((url) => cache.add(new Request(url, { cache: 'reload' })).catch(() => {})));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith('floorbell-') && n !== CACHE).map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

// Network first for the shell (fresh code when online), cache when offline.
// The API and the event stream are never cached.
self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname === '/healthz' || url.pathname === '/readyz'
    || url.pathname === '/metrics' || url.pathname.startsWith('/docs') || url.pathname === '/openapi.json') return;

  if (request.mode === 'navigate') {
    event.respondWith((async () => {
      try {
        const response = await fetch(request);
        if (response.ok && url.pathname === '/') {
          const cache = await caches.open(CACHE);
          await cache.put('/', response.clone());
        }
        return response;
      } catch {
        const cached = await caches.match('/', { ignoreSearch: true });
        return cached || notCachedYet();
      }
    })());
    return;
  }

  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(request);
      if (response.ok && response.type === 'basic') await cache.put(request, response.clone());
      return response;
    } catch (err) {
      const cached = await cache.match(request, { ignoreSearch: true });
      if (cached) return cached;
      throw err;
    }
  })());
});

/** The one page the worker writes itself: in the browser's language, from the catalogue
 * when it was cached, else both languages' words for "offline" (the catalogues are all
 * that know more). */
async function notCachedYet() {
  const language = String(self.navigator.language || '').toLowerCase().startsWith('en') ? 'en' : 'fr';
  let text = 'Hors ligne · Offline';
  try {
    const cached = await caches.match(`/i18n/${language}.json`);
    if (cached) text = (await cached.json())['offline.not_cached'];
  } catch { /* keep the short words */ }
  const page = `<!doctype html><meta charset="utf-8"><title>Floorbell</title><p style="font:16px system-ui;padding:2rem">${text}</p>`;
  return new Response(page, { status: 503, headers: { 'Content-Type': 'text/html; charset=utf-8' } });
}

// ---- push -------------------------------------------------------------------------

// The gateway's payload (CONTRACT section 5): {title, body, icon, badge, tag, actions?,
// data: {url, notification_id, type, ticket_id?}}; notification_id is null for a test
// push or a quiet-hours digest. A newer push with the same tag replaces the shown one.
self.addEventListener('push', (event) => {
  const { title, body, icon, badge, tag, actions = [], data } = event.data.json();
  event.waitUntil(self.registration.showNotification(title, {
    body, icon, badge, tag, renotify: true, actions, data, timestamp: Date.now(),
  }));
});

async function post(path, body) {
  return fetch(path, {
    method: 'POST',
    credentials: 'include',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body || {}),
  });
}

async function focusOrOpen(url) {
  const target = new URL(url, self.location.origin).href;
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const same = windows.filter((c) => new URL(c.url).origin === self.location.origin);
  const client = same.find((c) => c.focused) || same.find((c) => c.visibilityState === 'visible') || same[0];
  if (client) {
    try { await client.focus(); } catch { /* focus may be refused; the message still routes the page */ }
    client.postMessage({ type: 'navigate', url: target });
    return client;
  }
  return self.clients.openWindow(target);
}

self.addEventListener('notificationclick', (event) => {
  const { notification } = event;
  const { data } = notification;
  notification.close();
  event.waitUntil((async () => {
    if (event.action === 'acknowledge') {
      // Only ticket assignments offer it, and they carry data.ticket_id.
      let ok = false;
      try {
        ok = (await post(`/api/tickets/${data.ticket_id}/acknowledge`)).ok;
      } catch { ok = false; }
      if (ok) {
        const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
        for (const c of windows) c.postMessage({ type: 'acknowledged', ticket_id: data.ticket_id });
      } else {
        // Could not acknowledge from the notification (signed out, refused): open the ticket.
        await focusOrOpen(data.url);
      }
    } else {
      await focusOrOpen(data.url);
    }
    if (data.notification_id != null) {
      try { await post(`/api/notifications/${encodeURIComponent(data.notification_id)}/clicked`); } catch { /* best effort */ }
    }
  })());
});

self.addEventListener('pushsubscriptionchange', (event) => {
  event.waitUntil((async () => {
    const old = event.oldSubscription;
    let sub = event.newSubscription;
    if (!sub) {
      let key = old && old.options ? old.options.applicationServerKey : null;
      if (!key) {
        const response = await fetch('/api/push/vapid-public-key', { credentials: 'include' });
        const { publicKey } = await response.json();
        const padding = '='.repeat((4 - (publicKey.length % 4)) % 4);
        const raw = atob((publicKey + padding).replace(/-/g, '+').replace(/_/g, '/'));
        key = Uint8Array.from(raw, (c) => c.charCodeAt(0));
      }
      sub = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    }
    const ua = self.navigator.userAgent || '';
    const mobile = /Android|iPhone|iPad|iPod|Mobile/i.test(ua);
    await post('/api/push/subscribe', {
      subscription: sub.toJSON(),
      deviceType: mobile ? 'mobile' : 'desktop',
      deviceName: mobile ? 'mobile' : 'desktop',
    });
    if (old && old.endpoint && old.endpoint !== sub.endpoint) {
      try { await post('/api/push/unsubscribe', { endpoint: old.endpoint }); } catch { /* best effort */ }
    }
  })());
});

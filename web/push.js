// push.js — Web Push for this device: the on/off switch with a plain status (on, off,
// blocked by the browser, not supported), subscribing with the VAPID key from
// GET /api/push/vapid-public-key, POST /api/push/subscribe / unsubscribe, a test push,
// and the endpoint handed to POST /api/auth/logout so a shared device stops ringing.

import { api } from './api.js';
import { $, toast } from './ui.js';
import { t, onLanguage, describeError } from './i18n.js';

let busy = false;

/** A refusal the page explains with the catalogue entry `key`. */
class PushProblem extends Error {
  constructor(key) {
    super(key);
    this.key = key;
  }
}

export function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window
    && window.isSecureContext !== false;
}

async function registration() {
  if (!('serviceWorker' in navigator)) return null;
  const existing = await navigator.serviceWorker.getRegistration('/');
  if (existing?.active) return existing;
  // Wait for the worker session.js registered to become active; give up after a few seconds.
  return Promise.race([
    navigator.serviceWorker.ready,
    new Promise((resolve) => setTimeout(() => resolve(existing || null), 5000)),
  ]);
}

async function currentSubscription() {
  if (!pushSupported()) return null;
  try {
    const reg = await registration();
    return reg ? await reg.pushManager.getSubscription() : null;
  } catch {
    return null;
  }
}

/** "on" | "off" | "blocked" | "unsupported" */
export async function pushState() {
  if (!pushSupported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'blocked';
  const sub = await currentSubscription();
  return sub && Notification.permission === 'granted' ? 'on' : 'off';
}

export function initPush() {
  onLanguage(() => renderPush($('#push-switch').dataset.state === 'working' ? 'working' : undefined));
  $('#push-switch').addEventListener('click', toggle);
  $('#push-test').addEventListener('click', sendTest);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') renderPush();
  });
}

export async function renderPush(forced) {
  const s = forced || await pushState();
  const button = $('#push-switch');
  const text = $('#push-status');
  text.textContent = t(`device_push.state_${s}`);
  button.dataset.state = s;
  button.setAttribute('aria-checked', String(s === 'on'));
  button.disabled = s === 'unsupported' || s === 'blocked' || s === 'working';
  $('#push-switch-label').textContent = t(`device_push.switch_${s}`);
  $('#push-test').hidden = s !== 'on';
}

async function toggle() {
  if (busy) return;
  busy = true;
  const before = await pushState();
  await renderPush('working');
  try {
    if (before === 'on') await disable();
    else await enable();
  } catch (err) {
    const body = err instanceof PushProblem ? t(err.key) : err.code ? describeError(err) : t('device_push.failed');
    toast(t('device_push.title'), { body, kind: 'error' });
  } finally {
    busy = false;
    await renderPush();
  }
}

function urlBase64ToUint8Array(base64) {
  const padding = '='.repeat((4 - (base64.length % 4)) % 4);
  const raw = atob((base64 + padding).replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export function deviceInfo() {
  const ua = navigator.userAgent || '';
  const mobile = navigator.userAgentData?.mobile ?? /Android|iPhone|iPad|iPod|Mobile/i.test(ua);
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrome\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : '?';
  const os = navigator.userAgentData?.platform
    || (/Android/.test(ua) ? 'Android' : /iPhone|iPad|iPod/.test(ua) ? 'iOS'
      : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '?');
  return { deviceType: mobile ? 'mobile' : 'desktop', deviceName: `${browser} · ${os}` };
}

async function postSubscription(sub) {
  const { deviceType, deviceName } = deviceInfo();
  await api('/api/push/subscribe', {
    method: 'POST',
    body: { subscription: sub.toJSON(), deviceType, deviceName },
  });
}

async function enable() {
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') {
    throw new PushProblem(permission === 'denied' ? 'device_push.denied' : 'device_push.dismissed');
  }
  const reg = await registration();
  if (!reg) throw new PushProblem('device_push.no_worker');
  // 503 with its own message when the server has no push key configured.
  const { publicKey } = await api('/api/push/vapid-public-key');
  const key = urlBase64ToUint8Array(publicKey);
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub, key)) {
    await sub.unsubscribe();
    sub = null;
  }
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  try {
    await postSubscription(sub);
  } catch (err) {
    await sub.unsubscribe().catch(() => {});
    throw err;
  }
  toast(t('device_push.enabled'), { body: t('device_push.enabled_body'), kind: 'success', timeout: 4000 });
}

function sameKey(sub, key) {
  const current = sub.options?.applicationServerKey;
  if (!current) return true;
  const a = new Uint8Array(current);
  return a.length === key.length && a.every((b, i) => b === key[i]);
}

async function disable() {
  const sub = await currentSubscription();
  if (!sub) return;
  await api('/api/push/unsubscribe', { method: 'POST', body: { endpoint: sub.endpoint } }).catch(() => {});
  await sub.unsubscribe();
}

async function sendTest() {
  const button = $('#push-test');
  button.disabled = true;
  try {
    const { sentCount, failedCount } = await api('/api/push/test', { method: 'POST', body: {} });
    toast(t('device_push.test_sent'), {
      body: t('device_push.test_result', { count: sentCount, failed: failedCount }), kind: 'success',
    });
  } catch (err) {
    toast(t('device_push.test_failed'), { body: describeError(err), kind: 'error' });
  } finally {
    button.disabled = false;
  }
}

/** After sign-in: re-register an existing subscription so it belongs to this user. */
export async function syncSubscription() {
  if (!pushSupported() || Notification.permission !== 'granted') {
    renderPush();
    return;
  }
  const sub = await currentSubscription();
  if (sub) {
    try { await postSubscription(sub); } catch { /* the switch still shows the device state */ }
  }
  renderPush();
}

/** The endpoint of this device, for POST /api/auth/logout {endpoint}. */
export async function deviceEndpoint() {
  const sub = await currentSubscription();
  return sub ? sub.endpoint : null;
}

/** After sign-out: forget the browser subscription so the next person opts in themselves. */
export async function dropLocalSubscription() {
  const sub = await currentSubscription();
  if (sub) await sub.unsubscribe().catch(() => {});
}

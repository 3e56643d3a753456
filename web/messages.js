// messages.js — messages: the conversation list with unread counts plus the public
// channel, one thread at a time, sending text (with an Idempotency-Key), recording or
// attaching a voice message, and playing audio through <audio src="/api/messages/{id}/audio">.

import { api, asList, asCount, unwrap } from './api.js';
import { $, h, fill, toast, timeEl, fmtAgo, setBadge, randomKey, currentView, showView } from './ui.js';
import { on, myId, userName, rememberUser, knownUsers } from './state.js';
import { isOnline } from './presence.js';

const MAX_AUDIO_BYTES = 5 * 1024 * 1024;
const MAX_RECORD_MS = 3 * 60 * 1000;
export const PUBLIC = 'public'; // the channel to everyone, shown like a conversation

let conversations = [];
let contactId = null; // the open thread: a user id, or PUBLIC
let thread = [];
let threadSeq = 0;
let recorder = null;

export function initMessages() {
  $('#composer').addEventListener('submit', (event) => {
    event.preventDefault();
    sendText();
  });
  $('#composer-text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      sendText();
    }
  });
  $('#new-conversation').addEventListener('change', (event) => {
    const id = Number(event.target.value);
    event.target.value = '';
    if (id) openConversation(id);
  });
  $('#thread-back').addEventListener('click', () => closeThread());
  $('#audio-file').addEventListener('change', (event) => {
    const file = event.target.files?.[0];
    event.target.value = '';
    if (file) sendAudioFile(file);
  });
  const recordButton = $('#record-button');
  if (typeof MediaRecorder === 'undefined' || !navigator.mediaDevices?.getUserMedia) recordButton.hidden = true;
  recordButton.addEventListener('click', toggleRecording);
  on('users', () => { renderConversations(); fillNewConversation(); });
  on('presence', () => { renderConversations(); renderThreadHeader(); });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && contactId && currentView() === 'messages') markRead(contactId);
  });
  renderThread();
}

export async function loadConversations() {
  const list = asList(await api('/api/messages/conversations'), 'conversations');
  conversations = list;
  for (const c of list) rememberUser(c.contact_id, c.contact_name);
  renderConversations();
  fillNewConversation();
}

export async function refreshUnreadMessages() {
  setBadge('messages', asCount(await api('/api/messages/unread-count')));
}

function publicEntry() {
  return h('li', {},
    h('button', {
      type: 'button',
      class: `conversation public${contactId === PUBLIC ? ' active' : ''}`,
      'data-contact-id': PUBLIC,
      'aria-current': contactId === PUBLIC ? 'true' : null,
      onclick: () => openConversation(PUBLIC),
    },
    h('span', { class: 'public-icon', 'aria-hidden': 'true' }, '#'),
    h('span', { class: 'conversation-text' },
      h('span', { class: 'conversation-name' }, 'Everyone'),
      h('span', { class: 'conversation-last muted' }, 'Public channel for the whole site'))));
}

function renderConversations() {
  const list = $('#conversation-list');
  if (!conversations.length) {
    fill(list, publicEntry(), h('li', { class: 'muted empty' }, 'No private conversations yet. Choose someone above to start one.'));
    return;
  }
  const sorted = [...conversations].sort((a, b) => String(b.last_at || '').localeCompare(String(a.last_at || '')));
  fill(list, publicEntry(), sorted.map((c) => {
    const id = Number(c.contact_id);
    const unread = Number(c.unread_count) || 0;
    return h('li', {},
      h('button', {
        type: 'button',
        class: `conversation${id === contactId ? ' active' : ''}${unread ? ' has-unread' : ''}`,
        'data-contact-id': id,
        'aria-current': id === contactId ? 'true' : null,
        onclick: () => openConversation(id),
      },
      h('span', { class: 'dot', 'data-online': String(isOnline(id)), 'aria-hidden': 'true' }),
      h('span', { class: 'conversation-text' },
        h('span', { class: 'conversation-name' }, c.contact_name || userName(id)),
        h('span', { class: 'conversation-last muted' }, c.last_message || '')),
      h('span', { class: 'conversation-side' },
        c.last_at ? h('span', { class: 'muted small' }, fmtAgo(c.last_at)) : null,
        unread ? h('span', { class: 'count', 'aria-label': `${unread} unread` }, String(unread)) : null)));
  }));
}

function fillNewConversation() {
  const select = $('#new-conversation');
  const me = myId();
  const people = knownUsers().filter((u) => u.id !== me);
  fill(select, h('option', { value: '' }, people.length ? 'New message to…' : 'No contacts known yet'),
    people.map((u) => h('option', { value: u.id }, userName(u.id))));
}

function threadPath(id) {
  return id === PUBLIC ? '/api/messages/public' : `/api/messages/private/${id}`;
}

function sortThread(list) {
  for (const m of list) if (m.sender_id != null) rememberUser(m.sender_id, m.sender_name);
  return [...list].sort((a, b) => (Number(a.id) || 0) - (Number(b.id) || 0));
}

export async function openConversation(id) {
  contactId = id === PUBLIC ? PUBLIC : Number(id);
  const seq = ++threadSeq;
  $('#messages-layout').classList.add('show-thread');
  if (currentView() !== 'messages') showView('messages');
  renderConversations();
  renderThreadHeader();
  fill($('#thread'), h('li', { class: 'muted empty' }, 'Loading…'));
  $('#composer').hidden = false;
  try {
    const list = asList(await api(threadPath(contactId)), 'messages');
    if (seq !== threadSeq) return;
    thread = sortThread(list);
    renderThread();
    markRead(contactId);
  } catch (err) {
    if (seq !== threadSeq) return;
    fill($('#thread'), h('li', { class: 'alert' }, err.message));
  }
}

function closeThread() {
  contactId = null;
  thread = [];
  $('#messages-layout').classList.remove('show-thread');
  renderThread();
  renderConversations();
}

async function markRead(id) {
  if (id === PUBLIC || document.visibilityState !== 'visible') return;
  const conv = conversations.find((c) => Number(c.contact_id) === Number(id));
  const hasUnread = (conv && Number(conv.unread_count) > 0)
    || thread.some((m) => Number(m.sender_id) === Number(id) && m.is_read === false);
  if (!hasUnread) return;
  try {
    await api(`/api/messages/private/${id}/read`, { method: 'POST', body: {} });
    if (conv) conv.unread_count = 0;
    renderConversations();
    refreshUnreadMessages().catch(() => {});
  } catch { /* the badge catches up on the next unread_count event */ }
}

function renderThreadHeader() {
  const head = $('#thread-title');
  if (!contactId) {
    fill(head, 'Messages');
    return;
  }
  if (contactId === PUBLIC) {
    fill(head, 'Everyone', h('span', { class: 'muted small' }, ' · public channel'));
    return;
  }
  fill(head,
    h('span', { class: 'dot', 'data-online': String(isOnline(contactId)), 'aria-hidden': 'true' }),
    userName(contactId),
    h('span', { class: 'muted small' }, isOnline(contactId) ? ' · online' : ' · offline'));
}

function isAudio(m) {
  return Boolean(m.has_audio || m.audio === true || m.is_audio || m.kind === 'audio'
    || m.content_type === 'audio' || m.audio_url || m.audio_duration != null);
}

function renderThread() {
  const list = $('#thread');
  renderThreadHeader();
  if (!contactId) {
    $('#composer').hidden = true;
    fill(list, h('li', { class: 'muted empty' }, 'Choose a conversation.'));
    return;
  }
  if (!thread.length) {
    fill(list, h('li', { class: 'muted empty' }, 'No messages yet — say hello.'));
    return;
  }
  const me = myId();
  fill(list, thread.map((m) => {
    const mine = Number(m.sender_id) === me;
    const duration = Number(m.audio_duration ?? m.duration);
    return h('li', { class: `bubble ${mine ? 'mine' : 'theirs'}`, 'data-message-id': m.id },
      contactId === PUBLIC && !mine ? h('span', { class: 'bubble-author' }, m.sender_name || userName(m.sender_id)) : null,
      isAudio(m)
        ? h('div', { class: 'audio-message' },
          h('audio', { controls: true, preload: 'none', src: m.audio_url || `/api/messages/${m.id}/audio` }),
          Number.isFinite(duration) && duration > 0 ? h('span', { class: 'muted small' }, `${Math.round(duration)} s`) : null,
          m.content ? h('p', {}, m.content) : null)
        : h('p', {}, m.content),
      h('div', { class: 'bubble-meta' }, timeEl(m.created_at, 'small'),
        mine && m.is_read ? h('span', { class: 'small' }, ' · read') : null));
  }));
  list.scrollTop = list.scrollHeight;
}

async function sendText() {
  const input = $('#composer-text');
  const content = input.value.trim();
  if (!content || !contactId) return;
  const button = $('#composer button[type=submit]');
  button.disabled = true;
  try {
    const created = unwrap(await api('/api/messages', {
      method: 'POST',
      headers: { 'Idempotency-Key': randomKey() },
      body: contactId === PUBLIC
        ? { message_type: 'public', content }
        : { message_type: 'private', recipient_id: contactId, content },
    }), 'message');
    input.value = '';
    appendSent(created, { content });
  } catch (err) {
    toast('Message not sent', { body: err.message, kind: 'error' });
  } finally {
    button.disabled = false;
    input.focus();
  }
}

function appendSent(created, fallback) {
  const m = created && typeof created === 'object' && created.id != null
    ? created
    : { id: `local-${Date.now()}`, sender_id: myId(), recipient_id: contactId, created_at: new Date().toISOString(), ...fallback };
  thread = [...thread.filter((x) => x.id !== m.id), m];
  renderThread();
  loadConversations().catch(() => {});
}

async function sendAudio(blob, durationSeconds, filename) {
  if (!contactId) return;
  if (blob.size > MAX_AUDIO_BYTES) {
    toast('Voice message too long', { body: 'Audio messages are limited to 5 MiB.', kind: 'error' });
    return;
  }
  const form = new FormData();
  form.append('file', blob, filename);
  form.append('duration', String(Math.max(0.1, Math.round(durationSeconds * 10) / 10)));
  if (contactId !== PUBLIC) form.append('recipient_id', String(contactId));
  try {
    const created = unwrap(await api('/api/messages/audio', { method: 'POST', body: form }), 'message');
    appendSent(created, { audio_duration: durationSeconds, has_audio: true });
  } catch (err) {
    toast('Voice message not sent', { body: err.message, kind: 'error' });
  }
}

function sendAudioFile(file) {
  const url = URL.createObjectURL(file);
  const probe = new Audio();
  const done = (duration) => {
    URL.revokeObjectURL(url);
    sendAudio(file, Number.isFinite(duration) ? duration : 0, file.name || 'audio');
  };
  probe.preload = 'metadata';
  probe.onloadedmetadata = () => done(probe.duration);
  probe.onerror = () => done(0);
  probe.src = url;
}

async function toggleRecording() {
  const button = $('#record-button');
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch {
    toast('Microphone unavailable', { body: 'Allow the microphone for this site to record voice messages.', kind: 'error' });
    return;
  }
  const chunks = [];
  const started = Date.now();
  const rec = new MediaRecorder(stream);
  recorder = rec;
  const limit = setTimeout(() => rec.state === 'recording' && rec.stop(), MAX_RECORD_MS);
  rec.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
  rec.onstop = () => {
    clearTimeout(limit);
    for (const track of stream.getTracks()) track.stop();
    recorder = null;
    button.textContent = 'Record';
    button.classList.remove('recording');
    button.setAttribute('aria-pressed', 'false');
    const type = rec.mimeType || 'audio/webm';
    const ext = type.includes('ogg') ? 'ogg' : type.includes('mp4') ? 'm4a' : 'webm';
    const blob = new Blob(chunks, { type });
    if (blob.size) sendAudio(blob, (Date.now() - started) / 1000, `voice.${ext}`);
  };
  rec.start();
  button.textContent = 'Stop & send';
  button.classList.add('recording');
  button.setAttribute('aria-pressed', 'true');
}

/** A `new_message` notification: refresh the list, and the open thread when it is theirs. */
export function onNewMessage(envelope) {
  const data = envelope.data || {};
  const from = Number(data.sender_id ?? data.from_user_id ?? data.contact_id);
  if (from) rememberUser(from, data.sender_name || data.contact_name);
  const isPublic = String(envelope.url || data.url || '').includes('messages=public');
  loadConversations().catch(() => {});
  if (isPublic ? contactId === PUBLIC : (contactId && (!from || from === contactId))) reloadThread();
}

export async function reloadThread() {
  if (!contactId) return;
  const seq = ++threadSeq;
  try {
    const list = asList(await api(threadPath(contactId)), 'messages');
    if (seq !== threadSeq) return;
    thread = sortThread(list);
    renderThread();
    if (currentView() === 'messages') markRead(contactId);
  } catch { /* keep the thread shown */ }
}

export function openContactFromUrl(id) {
  showView('messages');
  openConversation(id);
}

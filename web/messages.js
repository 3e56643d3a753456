// messages.js — messages: the conversation list with unread counts plus the public
// channel, one thread at a time, sending text (with an Idempotency-Key), recording or
// attaching a voice message, and playing audio through <audio src="/api/messages/{id}/audio">.

import { api } from './api.js';
import { $, h, fill, toast, timeEl, fmtAgo, setBadge, randomKey, currentView, showView } from './ui.js';
import { on, myId, userName, rememberUser, knownUsers } from './state.js';
import { t, onLanguage, describeError, fmtDuration } from './i18n.js';
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
  onLanguage(() => {
    renderConversations();
    fillNewConversation();
    renderThread();
    renderRecordButton();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && contactId && currentView() === 'messages') markRead(contactId);
  });
  renderThread();
}

/** GET /api/messages/conversations: one line per contact, the latest first. */
export async function loadConversations() {
  conversations = await api('/api/messages/conversations');
  for (const c of conversations) rememberUser(c.contact_id, c.contact_name);
  renderConversations();
  fillNewConversation();
}

export async function refreshUnreadMessages() {
  setBadge('messages', (await api('/api/messages/unread-count')).count);
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
      h('span', { class: 'conversation-name' }, t('messages.everyone')),
      h('span', { class: 'conversation-last muted' }, t('messages.public_about')))));
}

function renderConversations() {
  const list = $('#conversation-list');
  if (!conversations.length) {
    fill(list, publicEntry(), h('li', { class: 'muted empty' }, t('messages.no_conversations')));
    return;
  }
  fill(list, publicEntry(), conversations.map((c) => {
    const id = c.contact_id;
    const unread = c.unread_count;
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
        h('span', { class: 'conversation-name' }, c.contact_name),
        h('span', { class: 'conversation-last muted' }, c.last_audio ? t('messages.audio') : c.last_message)),
      h('span', { class: 'conversation-side' },
        h('span', { class: 'muted small' }, fmtAgo(c.last_at)),
        unread ? h('span', { class: 'count', 'aria-label': t('messages.unread', { count: unread }) }, String(unread)) : null)));
  }));
}

function fillNewConversation() {
  const select = $('#new-conversation');
  const me = myId();
  const people = knownUsers().filter((u) => u.id !== me);
  fill(select, h('option', { value: '' }, t(people.length ? 'messages.new_to' : 'messages.no_contacts')),
    people.map((u) => h('option', { value: u.id }, userName(u.id))));
}

function threadPath(id) {
  return id === PUBLIC ? '/api/messages/public' : `/api/messages/private/${id}`;
}

/** A thread as the API gives it, oldest first; its senders' names are learnt. */
function learnSenders(list) {
  for (const m of list) rememberUser(m.sender_id, m.sender_name);
  return list;
}

export async function openConversation(id) {
  contactId = id === PUBLIC ? PUBLIC : Number(id);
  const seq = ++threadSeq;
  $('#messages-layout').classList.add('show-thread');
  if (currentView() !== 'messages') showView('messages');
  renderConversations();
  renderThreadHeader();
  fill($('#thread'), h('li', { class: 'muted empty' }, t('common.loading')));
  $('#composer').hidden = false;
  try {
    const list = await api(threadPath(contactId));
    if (seq !== threadSeq) return;
    thread = learnSenders(list);
    renderThread();
    markRead(contactId);
  } catch (err) {
    if (seq !== threadSeq) return;
    fill($('#thread'), h('li', { class: 'alert' }, describeError(err)));
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
  const conv = conversations.find((c) => c.contact_id === id);
  const hasUnread = conv?.unread_count > 0 || thread.some((m) => m.sender_id === id && !m.is_read);
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
    fill(head, t('nav.messages'));
    return;
  }
  if (contactId === PUBLIC) {
    fill(head, t('messages.everyone'), h('span', { class: 'muted small' }, ` · ${t('messages.public')}`));
    return;
  }
  fill(head,
    h('span', { class: 'dot', 'data-online': String(isOnline(contactId)), 'aria-hidden': 'true' }),
    userName(contactId),
    h('span', { class: 'muted small' }, ` · ${t(isOnline(contactId) ? 'presence.online' : 'presence.offline')}`));
}

function renderThread() {
  const list = $('#thread');
  renderThreadHeader();
  if (!contactId) {
    $('#composer').hidden = true;
    fill(list, h('li', { class: 'muted empty' }, t('messages.choose')));
    return;
  }
  if (!thread.length) {
    fill(list, h('li', { class: 'muted empty' }, t('messages.empty')));
    return;
  }
  const me = myId();
  fill(list, thread.map((m) => {
    const mine = m.sender_id === me;
    return h('li', { class: `bubble ${mine ? 'mine' : 'theirs'}`, 'data-message-id': m.id },
      contactId === PUBLIC && !mine ? h('span', { class: 'bubble-author' }, m.sender_name) : null,
      m.audio
        ? h('div', { class: 'audio-message' },
          h('audio', {
            controls: true, preload: 'none', src: `/api/messages/${m.id}/audio`,
            'aria-label': t('messages.audio_from', { name: m.sender_name }),
          }),
          m.audio_duration > 0 ? h('span', { class: 'muted small' }, fmtDuration(m.audio_duration)) : null,
          m.content ? h('p', {}, m.content) : null)
        : h('p', {}, m.content),
      h('div', { class: 'bubble-meta' }, timeEl(m.created_at, 'small'),
        mine && m.is_read ? h('span', { class: 'small' }, ` · ${t('messages.read')}`) : null));
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
    const created = await api('/api/messages', {
      method: 'POST',
      headers: { 'Idempotency-Key': randomKey() },
      body: contactId === PUBLIC
        ? { message_type: 'public', content }
        : { message_type: 'private', recipient_id: contactId, content },
    });
    input.value = '';
    appendSent(created);
  } catch (err) {
    toast(t('messages.not_sent'), { body: describeError(err), kind: 'error' });
  } finally {
    button.disabled = false;
    input.focus();
  }
}

/** The message the API stored, as POST /api/messages(/audio) answers it. */
function appendSent(m) {
  thread = [...thread.filter((x) => x.id !== m.id), m];
  renderThread();
  loadConversations().catch(() => {});
}

async function sendAudio(blob, durationSeconds, filename) {
  if (!contactId) return;
  if (blob.size > MAX_AUDIO_BYTES) {
    toast(t('messages.audio_too_long'), { body: t('error.audio_too_large'), kind: 'error' });
    return;
  }
  const form = new FormData();
  form.append('file', blob, filename);
  form.append('duration', String(Math.max(0.1, Math.round(durationSeconds * 10) / 10)));
  if (contactId !== PUBLIC) form.append('recipient_id', String(contactId));
  try {
    appendSent(await api('/api/messages/audio', { method: 'POST', body: form }));
  } catch (err) {
    toast(t('messages.audio_not_sent'), { body: describeError(err), kind: 'error' });
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
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch {
    toast(t('messages.mic_unavailable'), { body: t('messages.mic_help'), kind: 'error' });
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
    renderRecordButton();
    const type = rec.mimeType || 'audio/webm';
    const ext = type.includes('ogg') ? 'ogg' : type.includes('mp4') ? 'm4a' : 'webm';
    const blob = new Blob(chunks, { type });
    if (blob.size) sendAudio(blob, (Date.now() - started) / 1000, `voice.${ext}`);
  };
  rec.start();
  renderRecordButton();
}

function renderRecordButton() {
  const button = $('#record-button');
  const recording = Boolean(recorder);
  button.textContent = t(recording ? 'messages.stop_send' : 'messages.record');
  button.classList.toggle('recording', recording);
  button.setAttribute('aria-pressed', String(recording));
}

/** A `new_message` notification: refresh the list, and the open thread when it is theirs.
 * A public message links to /?messages=public, a private one to /?conversation=<sender>. */
export function onNewMessage(envelope) {
  const isPublic = envelope.url.includes('messages=public');
  loadConversations().catch(() => {});
  if (isPublic ? contactId === PUBLIC : envelope.data.sender_id === contactId) reloadThread();
}

export async function reloadThread() {
  if (!contactId) return;
  const seq = ++threadSeq;
  try {
    const list = await api(threadPath(contactId));
    if (seq !== threadSeq) return;
    thread = learnSenders(list);
    renderThread();
    if (currentView() === 'messages') markRead(contactId);
  } catch { /* keep the thread shown */ }
}

export function openContactFromUrl(id) {
  showView('messages');
  openConversation(id);
}

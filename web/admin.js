// admin.js — admin-only tools on the settings screen: send a broadcast
// (POST /api/sse/broadcast) and the notification delivery statistics
// (GET /api/admin/notification-stats).

import { api } from './api.js';
import { $, h, fill, toast } from './ui.js';
import { t, onLanguage, describeError, fmtNumber } from './i18n.js';
import { isAdmin } from './state.js';
import { typeLabel } from './events.js';

const COLUMNS = ['created', 'pushed', 'push_failed', 'delivered_inapp', 'clicked', 'read', 'dead_lettered'];

export function initAdmin() {
  $('#broadcast-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const title = form.elements.title.value.trim();
    const body = form.elements.body.value.trim();
    if (!title) return;
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await api('/api/sse/broadcast', { method: 'POST', body: { title, body, to: 'all' } });
      form.reset();
      toast(t('admin.broadcast_sent'), { body: title, kind: 'success' });
    } catch (err) {
      toast(t('admin.broadcast_failed'), { body: describeError(err), kind: 'error' });
    } finally {
      button.disabled = false;
    }
  });
  $('#stats-refresh').addEventListener('click', loadStats);
  onLanguage(renderStats);
}

let stats = null; // the last answer, or the error that came instead

export async function loadAdmin() {
  if (!isAdmin()) return;
  await loadStats();
}

async function loadStats() {
  try {
    // {<type>: {created, pushed, push_failed, delivered_inapp, clicked, read}}, every type.
    stats = await api('/api/admin/notification-stats');
  } catch (err) {
    stats = err;
  }
  renderStats();
}

function renderStats() {
  const table = $('#stats-rows');
  if (stats === null) return;
  if (stats instanceof Error) {
    fill(table, h('tr', {}, h('td', { colspan: COLUMNS.length + 1, class: 'muted' }, describeError(stats))));
    return;
  }
  fill(table, Object.entries(stats).map(([type, r]) => h('tr', {},
    h('th', { scope: 'row' }, typeLabel(type)),
    COLUMNS.map((c) => h('td', {}, fmtNumber(r[c]))))));
}

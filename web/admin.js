// admin.js — admin-only tools on the settings screen: send a broadcast
// (POST /api/sse/broadcast). The delivery statistics have a page of their own
// (statistics.js).

import { api } from './api.js';
import { $, toast } from './ui.js';
import { t, describeError } from './i18n.js';

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
}

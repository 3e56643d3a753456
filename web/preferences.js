// preferences.js — notification preferences: per event type "in app" and "push" toggles,
// and quiet hours (do not disturb) with start/end, timezone and "let critical alerts
// through". GET/PUT /api/notifications/preferences.

import { api } from './api.js';
import { $, h, fill, toast } from './ui.js';
import { state } from './state.js';
import { NOTIFICATIONS, NOTIFICATION_TYPES, typeLabel, receivable } from './events.js';

// GET and PUT /api/notifications/preferences answer {types: {<type>: {push, inapp}}, dnd}.
let types = null; // null until loaded
let dnd = null;
// Shown while the preferences could not be loaded.
const NOT_LOADED = { push: true, inapp: true };
const NOT_LOADED_DND = {
  enabled: false, start: '22:00', end: '06:00', allow_critical: true,
  timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
};

export function initPreferences() {
  $('#preferences-form').addEventListener('submit', (event) => {
    event.preventDefault();
    save();
  });
  $('#dnd-enabled').addEventListener('change', syncDndFields);
  fillTimezones();
}

export async function loadPreferences() {
  const status = $('#preferences-status');
  status.textContent = 'Loading…';
  try {
    ({ types, dnd } = await api('/api/notifications/preferences'));
    status.textContent = '';
  } catch (err) {
    status.textContent = `Could not load preferences: ${err.message}`;
  }
  render();
}

/** The types this person's role can receive, in catalogue order. */
function visibleTypes() {
  return NOTIFICATION_TYPES.filter((type) => receivable(type, state.me.role));
}

function render() {
  const body = $('#preferences-rows');
  fill(body, visibleTypes().map((type) => {
    const { inapp, push } = types ? types[type] : NOT_LOADED;
    return h('tr', { 'data-type': type },
      h('th', { scope: 'row' },
        h('span', { class: 'pref-name' }, typeLabel(type)),
        h('span', { class: 'muted small pref-desc' }, NOTIFICATIONS[type].about)),
      h('td', {}, h('input', {
        type: 'checkbox', name: `inapp:${type}`, checked: inapp,
        'aria-label': `${typeLabel(type)}: in app`,
      })),
      h('td', {}, h('input', {
        type: 'checkbox', name: `push:${type}`, checked: push,
        'aria-label': `${typeLabel(type)}: push`,
      })));
  }));

  const quiet = dnd ?? NOT_LOADED_DND;
  $('#dnd-enabled').checked = quiet.enabled;
  $('#dnd-start').value = quiet.start;
  $('#dnd-end').value = quiet.end;
  const tzInput = $('#dnd-timezone');
  if (!Array.from(tzInput.options).some((o) => o.value === quiet.timezone)) {
    tzInput.append(h('option', { value: quiet.timezone }, quiet.timezone));
  }
  tzInput.value = quiet.timezone;
  $('#dnd-critical').checked = quiet.allow_critical;
  syncDndFields();
}

function syncDndFields() {
  const on = $('#dnd-enabled').checked;
  for (const id of ['dnd-start', 'dnd-end', 'dnd-timezone', 'dnd-critical']) $(`#${id}`).disabled = !on;
}

function fillTimezones() {
  const select = $('#dnd-timezone');
  let zones = [];
  try { zones = Intl.supportedValuesOf('timeZone'); } catch { zones = []; }
  if (!zones.includes('UTC')) zones = ['UTC', ...zones];
  fill(select, zones.map((z) => h('option', { value: z }, z.replace(/_/g, ' '))));
}

async function save() {
  const form = $('#preferences-form');
  const status = $('#preferences-status');
  const nextTypes = {};
  for (const type of visibleTypes()) {
    nextTypes[type] = {
      inapp: form.elements[`inapp:${type}`].checked,
      push: form.elements[`push:${type}`].checked,
    };
  }
  const start = $('#dnd-start').value;
  const end = $('#dnd-end').value;
  const nextDnd = {
    enabled: $('#dnd-enabled').checked,
    start: start || '22:00',
    end: end || '06:00',
    timezone: $('#dnd-timezone').value || 'UTC',
    allow_critical: $('#dnd-critical').checked,
  };
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  status.textContent = 'Saving…';
  try {
    ({ types, dnd } = await api('/api/notifications/preferences', {
      method: 'PUT', body: { types: nextTypes, dnd: nextDnd },
    }));
    render();
    status.textContent = 'Saved.';
    toast('Preferences saved', { kind: 'success', timeout: 3000 });
  } catch (err) {
    status.textContent = `Not saved: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

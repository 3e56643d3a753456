// preferences.js — notification preferences: per event type "in app" and "push" toggles,
// and quiet hours (do not disturb) with start/end, timezone and "let critical alerts
// through". GET/PUT /api/notifications/preferences. Only the switches the person changed
// are sent: the others keep following the defaults the admins set.

import { api } from './api.js';
import { $, h, fill, toast } from './ui.js';
import { state } from './state.js';
import { NOTIFICATION_TYPES, typeLabel, typeAbout, receivable } from './events.js';
import { t, onLanguage, describeError, fmtClock } from './i18n.js';

// GET and PUT /api/notifications/preferences answer {types: {<type>: {push, inapp}}, dnd}.
let types = null; // null until loaded
let dnd = null;
let problem = null; // why the preferences could not be loaded or saved: {key, err}
const DEVICE_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
// Shown while the preferences could not be loaded.
const NOT_LOADED = { push: true, inapp: true };
const NOT_LOADED_DND = {
  enabled: false, start: '22:00', end: '06:00', allow_critical: true, timezone: DEVICE_ZONE,
};

export function initPreferences() {
  $('#preferences-form').addEventListener('submit', (event) => {
    event.preventDefault();
    save();
  });
  $('#dnd-enabled').addEventListener('change', syncDndFields);
  for (const id of ['dnd-start', 'dnd-end', 'dnd-timezone']) $(`#${id}`).addEventListener('change', renderSummary);
  fillTimezones();
  onLanguage(() => { if (state.me) render({ keepDraft: true }); });
}

export async function loadPreferences() {
  setStatus('common.loading');
  try {
    ({ types, dnd } = await api('/api/notifications/preferences'));
    setStatus(null);
  } catch (err) {
    setStatus('prefs.load_failed', err);
  }
  render();
}

function setStatus(key, err = null) {
  problem = key ? { key, err } : null;
  renderStatus();
}

function renderStatus() {
  const status = $('#preferences-status');
  if (!problem) status.textContent = '';
  else status.textContent = t(problem.key, { reason: problem.err ? describeError(problem.err) : '' });
}

/** The types this person's role can receive, in catalogue order. */
function visibleTypes() {
  return NOTIFICATION_TYPES.filter((type) => receivable(type, state.me.role));
}

/** The switches as the form shows them now (a half-made change included). */
function shownTypes() {
  const form = $('#preferences-form');
  const shown = {};
  for (const type of visibleTypes()) {
    const inapp = form.elements[`inapp:${type}`];
    const push = form.elements[`push:${type}`];
    if (inapp && push) shown[type] = { inapp: inapp.checked, push: push.checked };
  }
  return shown;
}

function render({ keepDraft = false } = {}) {
  const draft = keepDraft ? shownTypes() : {};
  const body = $('#preferences-rows');
  fill(body, visibleTypes().map((type) => {
    const { inapp, push } = draft[type] ?? (types ? types[type] : NOT_LOADED);
    const label = typeLabel(type);
    return h('tr', { 'data-type': type },
      h('th', { scope: 'row' },
        h('span', { class: 'pref-name' }, label),
        h('span', { class: 'muted small pref-desc' }, typeAbout(type))),
      h('td', {}, h('input', {
        type: 'checkbox', name: `inapp:${type}`, checked: inapp,
        'aria-label': t('prefs.inapp_label', { type: label }),
      })),
      h('td', {}, h('input', {
        type: 'checkbox', name: `push:${type}`, checked: push,
        'aria-label': t('prefs.push_label', { type: label }),
      })));
  }));
  renderStatus();
  if (keepDraft) {
    renderSummary();
    return;
  }
  const quiet = dnd ?? NOT_LOADED_DND;
  $('#dnd-enabled').checked = quiet.enabled;
  $('#dnd-start').value = quiet.start;
  $('#dnd-end').value = quiet.end;
  // Quiet hours never used yet: offer this device's zone rather than the stored default.
  const zone = !quiet.enabled && quiet.timezone === 'UTC' ? DEVICE_ZONE : quiet.timezone;
  const tzInput = $('#dnd-timezone');
  if (!Array.from(tzInput.options).some((o) => o.value === zone)) {
    tzInput.append(h('option', { value: zone }, zone));
  }
  tzInput.value = zone;
  $('#dnd-critical').checked = quiet.allow_critical;
  syncDndFields();
}

function syncDndFields() {
  const on = $('#dnd-enabled').checked;
  for (const id of ['dnd-start', 'dnd-end', 'dnd-timezone', 'dnd-critical']) $(`#${id}`).disabled = !on;
  renderSummary();
}

/** « Silencieux de 22 h 00 à 06 h 00 (America/Toronto) », in the person's language. */
function renderSummary() {
  const summary = $('#dnd-summary');
  const start = $('#dnd-start').value;
  const end = $('#dnd-end').value;
  summary.textContent = $('#dnd-enabled').checked && start && end
    ? t('prefs.quiet_summary', { start: fmtClock(start), end: fmtClock(end), zone: $('#dnd-timezone').value })
    : t('prefs.quiet_off');
}

function fillTimezones() {
  const select = $('#dnd-timezone');
  let zones = [];
  try { zones = Intl.supportedValuesOf('timeZone'); } catch { zones = []; }
  if (!zones.includes('UTC')) zones = ['UTC', ...zones];
  fill(select, zones.map((z) => h('option', { value: z }, z.replace(/_/g, ' '))));
}

/** The switches that differ from what was loaded: only those become the person's own. */
function changedTypes() {
  const changed = {};
  for (const [type, choice] of Object.entries(shownTypes())) {
    const before = types?.[type];
    if (!before || before.inapp !== choice.inapp || before.push !== choice.push) changed[type] = choice;
  }
  return changed;
}

async function save() {
  const form = $('#preferences-form');
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
  setStatus('prefs.saving');
  try {
    ({ types, dnd } = await api('/api/notifications/preferences', {
      method: 'PUT', body: { types: changedTypes(), dnd: nextDnd },
    }));
    setStatus('prefs.saved');
    render();
    toast(t('prefs.saved_toast'), { kind: 'success', timeout: 3000 });
  } catch (err) {
    setStatus('prefs.save_failed', err);
  } finally {
    button.disabled = false;
  }
}

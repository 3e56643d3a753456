// personal.js — the person's own settings at the top of the settings screen: their
// language (saved on their account, PATCH /api/auth/me {language}; the page switches at
// once, nothing reloads) and the alert sound on this device.

import { api } from './api.js';
import { $, h, fill, toast } from './ui.js';
import { state } from './state.js';
import { LANGUAGES, t, currentLanguage, useLanguage, describeError } from './i18n.js';
import { initSound, soundOn, setSound } from './sound.js';

let onSaved = () => {};

/** `onLanguageSaved(user)` keeps the updated user for the next start. */
export function initPersonal({ onLanguageSaved }) {
  onSaved = onLanguageSaved;
  initSound();
  $('#language-select').addEventListener('change', (event) => chooseLanguage(event.target.value));
  $('#sound-switch').addEventListener('change', (event) => setSound(event.target.checked));
  renderPersonal();
}

/** Each language named in itself, so anyone finds their own. */
export function renderPersonal() {
  fill($('#language-select'), LANGUAGES.map((lang) => h('option', {
    value: lang, selected: lang === currentLanguage(), lang,
  }, t(`language.${lang}`))));
  $('#sound-switch').checked = soundOn();
}

async function chooseLanguage(lang) {
  const select = $('#language-select');
  select.disabled = true;
  try {
    const user = await api('/api/auth/me', { method: 'PATCH', body: { language: lang } });
    onSaved({ ...state.me, ...user });
    await useLanguage(user.language);
  } catch (err) {
    toast(t('settings.language_failed'), { body: describeError(err), kind: 'error' });
  } finally {
    select.disabled = false;
    renderPersonal();
  }
}

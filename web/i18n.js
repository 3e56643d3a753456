// i18n.js — the person's language. Its catalogue is /i18n/<language>.json, the very file
// the server writes notifications from: t(key, params) fills the `{name}` parameters
// (numbers written the language's way) and picks the plural form of `count` with
// Intl.PluralRules. Dates, times, durations and numbers are written with Intl in the
// language's locale (`meta.locale`) and the device's time zone. Switching language
// re-fills the static markup (data-i18n, data-i18n-attr) and tells every screen
// (onLanguage) to render again: nothing reloads, nothing typed or open is lost.

export const LANGUAGES = ['fr', 'en'];
export const DEFAULT_LANGUAGE = 'fr';
const PARAMETER = /\{(\w+)\}/g;

const catalogues = new Map(); // language -> entries (or the promise of them)
const listeners = new Set();
let language = null;
let entries = {};
let formats = null;

/** The first of the browser's languages the app speaks, else French. */
export function browserLanguage() {
  for (const tag of navigator.languages?.length ? navigator.languages : [navigator.language]) {
    const primary = String(tag || '').toLowerCase().split('-')[0];
    if (LANGUAGES.includes(primary)) return primary;
  }
  return DEFAULT_LANGUAGE;
}

export function currentLanguage() { return language; }

function load(lang) {
  if (!catalogues.has(lang)) {
    const loading = fetch(`/i18n/${lang}.json`).then((response) => {
      if (!response.ok) throw new Error(`catalogue ${lang}: HTTP ${response.status}`);
      return response.json();
    });
    catalogues.set(lang, loading);
    loading.catch(() => catalogues.delete(lang)); // the next switch asks again
  }
  return catalogues.get(lang);
}

/** Speak `lang` from now on (an unknown one: French). Resolves once the page is in it. */
export async function useLanguage(lang) {
  const next = LANGUAGES.includes(lang) ? lang : DEFAULT_LANGUAGE;
  const loaded = await load(next);
  if (next === language) return;
  language = next;
  entries = loaded;
  formats = formatsFor(loaded['meta.locale']);
  document.documentElement.lang = formats.locale;
  translate(document);
  for (const fn of listeners) {
    try { fn(language); } catch (err) { console.error(err); }
  }
}

/** Call `fn(language)` after every switch (not at the first one: screens render then). */
export function onLanguage(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** The entry `key` with its parameters; a `count` picks the plural form. */
export function t(key, params = {}) {
  let entry = entries[key];
  if (entry === undefined) {
    console.error(`catalogue ${language} has no entry ${key}`);
    return key;
  }
  if (typeof entry === 'object') entry = entry[formats.plural.select(params.count)] ?? entry.other;
  return entry.replace(PARAMETER, (whole, name) => {
    if (!(name in params)) return whole;
    const value = params[name];
    return typeof value === 'number' ? formats.number.format(value) : String(value);
  });
}

/** Whether the catalogue has `key` (for words that exist only for some values). */
export function has(key) { return key in entries; }

/** Fill the static markup under `root`: data-i18n="key" sets the text, and
 * data-i18n-attr="aria-label:key;placeholder:key" sets attributes. */
export function translate(root) {
  if (!formats) return;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((part) => part.trim());
      el.setAttribute(attr, t(key));
    }
  }
}

// ---- Intl, in the person's language and the device's time zone ----------------------

function formatsFor(locale) {
  return {
    locale,
    plural: new Intl.PluralRules(locale),
    number: new Intl.NumberFormat(locale),
    dateTime: new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }),
    day: new Intl.DateTimeFormat(locale, { dateStyle: 'medium' }),
    time: new Intl.DateTimeFormat(locale, { timeStyle: 'short' }),
    relative: new Intl.RelativeTimeFormat(locale, { numeric: 'auto' }),
    duration: 'DurationFormat' in Intl ? new Intl.DurationFormat(locale, { style: 'short' }) : null,
    seconds: new Intl.NumberFormat(locale, { style: 'unit', unit: 'second', unitDisplay: 'short' }),
    list: new Intl.ListFormat(locale, { type: 'conjunction' }),
  };
}

export function parseDate(value) {
  if (!value) return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtDateTime(value) {
  const d = parseDate(value);
  return d ? formats.dateTime.format(d) : '';
}

export function fmtDay(value) {
  const d = parseDate(value);
  return d ? formats.day.format(d) : '';
}

/** "22:00" (a wall-clock time, as quiet hours store it) as the language writes it: « 22 h 00 ». */
export function fmtClock(hhmm) {
  const [hours, minutes] = String(hhmm || '').split(':').map(Number);
  if (!Number.isInteger(hours) || !Number.isInteger(minutes)) return '';
  return formats.time.format(new Date(2000, 0, 1, hours, minutes));
}

/** "5 minutes ago", « il y a 5 minutes »; past a week, the day. */
export function fmtAgo(value) {
  const d = parseDate(value);
  if (!d) return '';
  const seconds = Math.round((d.getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return formats.relative.format(0, 'second');
  if (abs < 3600) return formats.relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return formats.relative.format(Math.round(seconds / 3600), 'hour');
  if (abs < 7 * 86400) return formats.relative.format(Math.round(seconds / 86400), 'day');
  return formats.day.format(d);
}

/** A length of time in seconds: "1 min, 5 sec", « 1 min 5 s ». */
export function fmtDuration(totalSeconds) {
  const whole = Math.max(0, Math.round(Number(totalSeconds) || 0));
  if (!formats.duration) return formats.seconds.format(whole);
  const minutes = Math.floor(whole / 60);
  const seconds = whole % 60;
  return formats.duration.format(minutes ? { minutes, seconds } : { seconds });
}

export function fmtNumber(n) { return formats.number.format(n); }

export function fmtList(items) { return formats.list.format(items.map(String)); }

/** What to tell a person about a failed request: the catalogue's words for its error code
 * (the server's `message` is English, for programs), else for its HTTP status. */
export function describeError(err) {
  if (err?.code && has(`error.${err.code}`)) return t(`error.${err.code}`);
  if (Number.isInteger(err?.status) && has(`error.http_${err.status}`)) return t(`error.http_${err.status}`);
  return t('error.unknown');
}

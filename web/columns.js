// columns.js — the board on a phone: one column at a time, and a switcher naming every
// column with its count, one tap from any other ("Move to…" stays on each card). Wide
// screens show every column and no switcher (styles.css). Kept apart from board.js: it
// reads the columns and their counts from the board's markup (data-status, .column-count)
// as they change.

import { $, $$, h, fill, statusLabel } from './ui.js';
import { t, onLanguage } from './i18n.js';

const ACTIVE_KEY = 'floorbell.column';
let active = 'received';

export function initColumnSwitcher() {
  try { active = sessionStorage.getItem(ACTIVE_KEY) || active; } catch { /* private mode */ }
  render();
  const watch = { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['hidden'] };
  new MutationObserver(update).observe($('#board'), watch);
  onLanguage(render);
}

function columns() { return $$('#board > [data-status]'); }

function render() {
  fill($('#column-switcher'), columns().map((section) => {
    const { status } = section.dataset;
    return h('button', {
      type: 'button', class: 'column-tab', 'data-column': status, onclick: () => choose(status),
    },
    h('span', { class: 'column-tab-label' }, statusLabel(status)), ' ',
    h('span', { class: 'column-tab-count' }, '0'),
    h('span', { class: 'sr-only column-tab-noun' }, ''));
  }));
  update();
}

function choose(status) {
  active = status;
  try { sessionStorage.setItem(ACTIVE_KEY, status); } catch { /* private mode */ }
  update();
  $(`#board > [data-status="${status}"]`)?.scrollIntoView({ block: 'nearest' });
}

/** Show the chosen column (on a phone) and every column's count on its button. */
function update() {
  for (const section of columns()) {
    const { status } = section.dataset;
    section.classList.toggle('column-active', status === active);
    const button = $(`#column-switcher [data-column="${status}"]`);
    if (!button) continue;
    const shown = section.querySelectorAll('[data-ticket-id]:not([hidden])').length;
    const count = section.querySelector('.column-count')?.textContent || String(shown);
    const counter = button.querySelector('.column-tab-count');
    if (counter.textContent !== count) counter.textContent = count;
    button.setAttribute('aria-pressed', String(status === active));
    const noun = ` ${t('board.tickets_noun', { count: shown })}`;
    const said = button.querySelector('.column-tab-noun');
    if (said.textContent !== noun) said.textContent = noun;
  }
}

// statistics.js — the admins' statistics page (GET /api/admin/notification-stats): the
// delivery funnel per type, delivery latencies as histograms, the time to answer critical
// alerts (median and 90th percentile per day, the last 30 days) and where they escalated.
// Each chart is SVG drawn by Chartist (vendored under web/vendor/chartist), with its
// numbers one tap away (the table under it); the CSV export holds every table.

import { BarChart, LineChart } from './vendor/chartist/chartist.js';
import { api } from './api.js';
import { $, h, fill } from './ui.js';
import { t, onLanguage, describeError, fmtDay, fmtNumber } from './i18n.js';
import { typeLabel } from './events.js';

const FUNNEL = ['created', 'delivered_live', 'pushed', 'clicked', 'read'];
const COUNTS = ['created', 'delivered_live', 'pushed', 'push_failed', 'delivered_inapp', 'clicked', 'read', 'dead_lettered'];
const AUDIENCES = ['assignee', 'supervisors', 'admins'];

let stats = null; // the last answer, or the error that came instead

export function initStatistics() {
  $('#statistics-refresh').addEventListener('click', loadStatistics);
  $('#statistics-csv').addEventListener('click', exportCsv);
  onLanguage(render);
}

export async function loadStatistics() {
  try {
    stats = await api('/api/admin/notification-stats');
  } catch (err) {
    stats = err;
  }
  render();
}

function render() {
  if (stats === null) return;
  const status = $('#statistics-status');
  if (stats instanceof Error) {
    status.textContent = describeError(stats);
    return;
  }
  const days = stats.acknowledgement;
  status.textContent = t('stats.window', { from: dayLabel(days[0].day), to: dayLabel(days[days.length - 1].day) });
  for (const table of tables()) drawFigure(table);
}

/** Every chart's numbers: what the figure draws, its table, and the CSV. */
function tables() {
  const active = Object.entries(stats.types).filter(([, counts]) => counts.created > 0);
  const latency = (path) => {
    const { bounds_ms: bounds, counts } = stats.latency[path];
    return {
      name: `latency-${path}`,
      caption: t(`stats.latency_${path}`, summary(stats.latency[path])),
      head: [t('stats.bucket'), t('stats.samples')],
      rows: counts.map((n, i) => [bucketLabel(bounds, i), n]),
      short: counts.map((_, i) => shortBucket(bounds, i)),
      chart: 'bars',
    };
  };
  return [
    {
      name: 'funnel',
      caption: t('stats.funnel'),
      head: [t('admin.stats_type'), ...COUNTS.map((c) => t(`stats.count.${c}`))],
      rows: active.map(([type, c]) => [typeLabel(type), ...COUNTS.map((name) => c[name])]),
      chart: 'funnel',
    },
    latency('frame'),
    latency('push'),
    {
      name: 'answers',
      caption: t('stats.answers'),
      head: [t('stats.day'), t('stats.alerts'), t('stats.answered'), t('stats.waiting'), t('stats.median_min'), t('stats.p90_min')],
      rows: stats.acknowledgement.map((d) => [dayLabel(d.day), d.alerts, d.answered, d.waiting, minutes(d.median_s), minutes(d.p90_s)]),
      chart: 'answers',
    },
    {
      name: 'escalations',
      caption: t('stats.escalations'),
      head: [t('stats.day'), t('stats.escalated'), ...AUDIENCES.map((a) => t(`escalation.to.${a}`))],
      rows: stats.acknowledgement.map((d) => [dayLabel(d.day), d.escalated, ...AUDIENCES.map((a) => d.escalated_to[a])]),
      chart: 'escalations',
    },
  ];
}

function summary(histogram) {
  const ms = (value) => (value == null ? '—' : fmtNumber(Math.round(value)));
  return { count: histogram.count, p50: ms(histogram.p50_ms), p90: ms(histogram.p90_ms) };
}

function minutes(seconds) {
  return seconds == null ? null : Math.round((seconds / 60) * 10) / 10;
}

/** A day of the plant's calendar (`2026-03-01`), as the language writes it: a date, not
 * an instant, so no time zone moves it to the day before. */
function dayLabel(iso) {
  const [year, month, day] = iso.split('-').map(Number);
  return fmtDay(new Date(year, month - 1, day));
}

function duration(ms) {
  return ms >= 1000 ? `${fmtNumber(ms / 1000)} s` : `${fmtNumber(ms)} ms`;
}

/** Under a bar, only its upper bound: « < 250 ms » (the table gives the whole range). */
function shortBucket(bounds, i) {
  return i === bounds.length ? `≥ ${duration(bounds[i - 1])}` : `< ${duration(bounds[i])}`;
}

function bucketLabel(bounds, i) {
  if (i === 0) return `< ${duration(bounds[0])}`;
  if (i === bounds.length) return `≥ ${duration(bounds[bounds.length - 1])}`;
  return `${duration(bounds[i - 1])}–${duration(bounds[i])}`;
}

function drawFigure(table) {
  const figure = $(`[data-chart="${table.name}"]`);
  const plot = h('div', { class: 'chart-plot', role: 'img', 'aria-label': table.caption });
  const numbers = h('details', { class: 'chart-numbers' },
    h('summary', {}, t('stats.numbers')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'stats' },
      h('thead', {}, h('tr', {}, table.head.map((cell) => h('th', { scope: 'col' }, cell)))),
      h('tbody', {}, table.rows.map((row) => h('tr', {},
        row.map((cell, i) => (i === 0 ? h('th', { scope: 'row' }, cell) : h('td', {}, cell == null ? '—' : fmtNumber(cell))))))))));
  fill(figure, h('figcaption', {}, table.caption), plot, numbers);
  if (table.rows.length === 0) {
    plot.append(h('p', { class: 'muted' }, t('stats.no_data')));
    return;
  }
  DRAW[table.chart](plot, table);
}

const DRAW = {
  funnel(plot, table) {
    const stages = FUNNEL.map((stage) => 1 + COUNTS.indexOf(stage));
    new BarChart(plot, {
      labels: table.rows.map((row) => row[0]),
      series: stages.map((column) => table.rows.map((row) => row[column])),
    }, { horizontalBars: true, reverseData: true, seriesBarDistance: 6, height: `${90 + 40 * table.rows.length}px`,
      axisY: { offset: 130 }, axisX: { onlyInteger: true } });
    legend(plot, FUNNEL.map((stage) => t(`stats.count.${stage}`)));
  },
  bars(plot, table) {
    new BarChart(plot, { labels: table.short, series: [table.rows.map((row) => row[1])] },
      { height: '220px', axisY: { onlyInteger: true } });
  },
  answers(plot, table) {
    new LineChart(plot, {
      labels: table.rows.map((row, i) => (i % 5 === 0 ? row[0] : '')),
      series: [table.rows.map((row) => row[4]), table.rows.map((row) => row[5])],
    }, { height: '240px', low: 0, showArea: false, fullWidth: true, chartPadding: { right: 24 } });
    legend(plot, [t('stats.median_min'), t('stats.p90_min')]);
  },
  escalations(plot, table) {
    new BarChart(plot, {
      labels: table.rows.map((row, i) => (i % 5 === 0 ? row[0] : '')),
      series: AUDIENCES.map((_, a) => table.rows.map((row) => row[2 + a])),
    }, { height: '220px', stackBars: true, axisY: { onlyInteger: true } });
    legend(plot, AUDIENCES.map((a) => t(`escalation.to.${a}`)));
  },
};

function legend(plot, names) {
  plot.after(h('ul', { class: 'chart-legend' },
    names.map((name, i) => h('li', { class: `series-${'abcdefghij'[i]}` }, name))));
}

/** Every table of the page in one CSV file, one section after another. */
function exportCsv() {
  if (!stats || stats instanceof Error) return;
  const cell = (value) => {
    const text = value == null ? '' : String(value);
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const raw = rawTables();
  const lines = raw.flatMap((table) => [[table.caption], table.head, ...table.rows, []]);
  const csv = lines.map((row) => row.map(cell).join(',')).join('\r\n');
  const link = h('a', {
    href: URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' })),
    download: `floorbell-statistics-${stats.acknowledgement[0].day}-${stats.acknowledgement.at(-1).day}.csv`,
  });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

/** The tables with machine-readable cells (types and days as the API names them). */
function rawTables() {
  const shown = tables();
  const types = Object.entries(stats.types).filter(([, counts]) => counts.created > 0);
  shown[0].rows = types.map(([type, c]) => [type, ...COUNTS.map((name) => c[name])]);
  for (const table of shown.slice(3)) {
    table.rows = table.rows.map((row, i) => [stats.acknowledgement[i].day, ...row.slice(1)]);
  }
  return shown;
}

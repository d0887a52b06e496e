// The timeline as inline SVG: one row per moment, from today's line to the furthest expiry, on a
// logarithmic scale (hours next to years stay readable). Every row is an image with an accessible name
// saying what expires when, and whether it is inside the warning window; each links to its JSON.
import { formatDuration } from '../../ca/index.js';
import type { TimelineItem } from '../../trust-bundles/index.js';
import { esc, statusHref } from './html.js';

const WIDTH = 1000;
const LABEL_W = 430;
const PLOT_X = LABEL_W + 20;
const PLOT_W = WIDTH - PLOT_X - 30;
const ROW_H = 24;
const TOP = 34;
const HOUR = 3_600_000;
const TICKS: readonly [string, number][] = [
  ['1h', HOUR],
  ['1d', 24 * HOUR],
  ['7d', 7 * 24 * HOUR],
  ['30d', 30 * 24 * HOUR],
  ['90d', 90 * 24 * HOUR],
  ['1y', 365 * 24 * HOUR],
  ['2y', 730 * 24 * HOUR],
  ['5y', 1826 * 24 * HOUR],
  ['10y', 3652 * 24 * HOUR],
];

/** What the accessible name of a row says: what, when, and the mark. */
export function itemDescription(i: TimelineItem, now: Date): string {
  const left = Date.parse(i.at) - now.getTime();
  const when = left >= 0 ? `in ${formatDuration(left)}` : `${formatDuration(-left)} ago`;
  const verb = i.kind === 'renewal-hint' ? 'at' : i.expired ? 'expired' : 'expires';
  const mark = i.expired ? ', EXPIRED' : i.warning ? ', within the warning window' : '';
  return `${i.label}: ${verb} ${i.at} (${when})${mark}`;
}

export function timelineSvg(items: readonly TimelineItem[], now: Date): string {
  const t = now.getTime();
  const furthest = Math.max(t + 24 * HOUR, ...items.map((i) => Date.parse(i.at)));
  const span = Math.log1p((furthest - t) / HOUR);
  const x = (ms: number): number => PLOT_X + (PLOT_W * Math.log1p(Math.max(0, ms - t) / HOUR)) / span;
  const height = TOP + items.length * ROW_H + 16;
  const ticks = TICKS.filter(([, ms]) => t + ms <= furthest)
    .map(
      ([label, ms]) =>
        `<line class="tick" x1="${x(t + ms)}" x2="${x(t + ms)}" y1="${TOP - 8}" y2="${height - 8}"/><text class="tick" x="${x(t + ms)}" y="${TOP - 12}" text-anchor="middle">${label}</text>`,
    )
    .join('');
  const rows = items
    .map((i, n) => {
      const y = TOP + n * ROW_H + ROW_H / 2;
      const end = x(Date.parse(i.at));
      const cls = `item ${i.kind}${i.warning ? ' warning' : ''}${i.expired ? ' expired' : ''}`;
      const desc = esc(itemDescription(i, now));
      const mark = i.expired ? ' ✖' : i.warning ? ' ⚠' : '';
      return `<a href="${statusHref(i.source)}"><g class="${cls}" role="img" aria-label="${desc}"><title>${desc}</title><text class="label" x="${LABEL_W}" y="${y + 4}" text-anchor="end">${esc(i.label)}${mark}</text><line class="bar" x1="${PLOT_X}" x2="${end}" y1="${y}" y2="${y}"/><circle cx="${end}" cy="${y}" r="5"/></g></a>`;
    })
    .join('');
  return `<svg class="timeline" viewBox="0 0 ${WIDTH} ${height}" width="100%" role="group" aria-label="Expiry timeline from now to ${esc(new Date(furthest).toISOString())}"><line class="today" x1="${PLOT_X}" x2="${PLOT_X}" y1="${TOP - 8}" y2="${height - 8}"/><text class="today" x="${PLOT_X}" y="${TOP - 22}" text-anchor="middle">today</text>${ticks}${rows}</svg>`;
}

import { UsageError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Go-style durations ("24h", "1h30m", "90s", "8760h", "30d"), in milliseconds. */
export function parseDuration(s: string): number {
  const trimmed = s.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while (re.lastIndex < trimmed.length && (m = re.exec(trimmed)) !== null) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  const ms = Math.round(total);
  // checked after rounding: "0.4ms" is not a positive number of milliseconds
  if (trimmed.length === 0 || matched !== trimmed.length || !Number.isFinite(ms) || ms <= 0) {
    throw new UsageError(`invalid duration "${s}"; use forms like 24h, 90m, 1h30m, 30d`);
  }
  return ms;
}

/** A compact human form: "3d 4h", "23h 59m", "45s"; negative durations are prefixed with "-". */
export function formatDuration(ms: number): string {
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(Math.round(ms / 1000));
  const d = Math.floor(rest / 86_400);
  rest -= d * 86_400;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  const parts =
    d > 0 ? [`${d}d`, `${h}h`] : h > 0 ? [`${h}h`, `${m}m`] : m > 0 ? [`${m}m`, `${s}s`] : [`${s}s`];
  return sign + parts.join(' ');
}

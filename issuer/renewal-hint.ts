// Renewal hints (`lanyard serve --renew-after TIME --renew-spread DURATION`): a Linkerd proxy asks
// again at 70 % of (valid_until − now) and never reads notAfter for that, so an answer whose
// valid_until is earlier than notAfter brings the next renewal forward. While now < TIME each answer
// aims the caller's renewal at a uniformly random point of [TIME, TIME + spread], so that a fleet
// renews after TIME (an issuer switch, say) without arriving all at once.

/** The share of (valid_until − now) after which a Linkerd proxy (and `lanyard certify`) renews. */
export const RENEWAL_FRACTION = 0.7;

/** --renew-spread when not given: 10 minutes. */
export const DEFAULT_RENEW_SPREAD_MS = 10 * 60_000;

export interface RenewalHint {
  /** renewals are brought forward to this instant or later (--renew-after) */
  readonly after: Date;
  /** ... spread uniformly over this long a window (--renew-spread) */
  readonly spreadMs: number;
}

/**
 * The valid_until of an answer given at `now` for a leaf valid until `notAfter`: without a hint, or
 * once now ≥ hint.after, notAfter itself. Before it, target = after + random() × spread and
 * valid_until = now + (target − now) / 0.7, so that a caller renewing at 70 % of (valid_until − now)
 * renews at target; never after notAfter (a hint beyond the leaf's life gives notAfter). Rounded up
 * to the millisecond (the renewal never falls before `after`). `random` returns [0, 1).
 */
export function validUntilFor(o: {
  readonly now: Date;
  readonly notAfter: Date;
  readonly hint: RenewalHint | undefined;
  readonly random: () => number;
}): Date {
  const nowMs = o.now.getTime();
  const notAfterMs = o.notAfter.getTime();
  if (o.hint === undefined || nowMs >= o.hint.after.getTime()) return o.notAfter;
  const targetMs = o.hint.after.getTime() + o.random() * o.hint.spreadMs;
  const validUntilMs = Math.ceil(nowMs + (targetMs - nowMs) / RENEWAL_FRACTION);
  return validUntilMs >= notAfterMs ? o.notAfter : new Date(validUntilMs);
}

const RFC_3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * An RFC 3339 date-time (`2026-07-01T12:00:00Z`, `2026-07-01T14:00:00.5+02:00`): every field in
 * range (no 30 February), an explicit offset. undefined when `s` is not one. A leap second (:60)
 * reads as the next second; fractions below a millisecond are dropped.
 */
export function parseRfc3339(s: string): Date | undefined {
  const m = RFC_3339.exec(s);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Number(((m[7] ?? '') + '000').slice(0, 3));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMin = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // (Date.UTC reads years 0–99 as 1900–1999: the year is set on its own)
  const midnight = new Date(Date.UTC(2000, month - 1, day));
  midnight.setUTCFullYear(year, month - 1, day);
  const timeMs = ((hour * 60 + minute - offsetMin) * 60 + second) * 1000 + ms;
  return new Date(midnight.getTime() + timeMs);
}

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

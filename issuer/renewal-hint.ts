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

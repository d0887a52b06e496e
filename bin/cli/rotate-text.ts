// The text `rotate status` and `rotate plan` print (the data is in trust-bundles; --json prints it as is).
import { formatDuration } from '../../ca/index.js';
import type {
  ClusterRotationState,
  OfflineAssumptions,
  OldLeafBasis,
  PlanPhase,
  RotationPlan,
  RotationStatus,
} from '../../trust-bundles/index.js';
import type { CliContext } from './kit.js';

const BASIS_TEXT: Record<OldLeafBasis, (a: OfflineAssumptions) => string> = {
  'issuance-record': (a) =>
    `the issuer's record of the leaves it signed, + clock skew + propagation margin ${formatDuration(a.propagationMarginMs)}`,
  'credential-loaded': (a) =>
    `when the issuer loaded its current credential (the switch) + its leaf lifetime + 2 × clock skew + propagation margin ${formatDuration(a.propagationMarginMs)} (other replicas may switch later; give each replica as its own --cluster)`,
  'issuer-files-changed': (a) =>
    `when the issuer files last changed + poll interval ${formatDuration(a.pollIntervalMs)} + max leaf lifetime ${formatDuration(a.maxLeafLifetimeMs)} + 2 × clock skew ${formatDuration(a.clockSkewMs)} (a directory keeps no issuance record)`,
};

const ISSUER_TEXT: Record<ClusterRotationState['issuer']['kind'], string> = {
  old: 'issuer under the old anchor',
  'new-with-cross': 'issuer under the new anchor, serving the cross certificate',
  new: 'issuer under the new anchor (no cross certificate)',
  none: 'issuer chains to NO known anchor',
};

function proxiesText(c: ClusterRotationState): string {
  const p = c.proxies;
  if (p.kind === 'not-given') return 'proxies: unknown (no --kubeconfig)';
  if (p.kind === 'unavailable') return `proxies: unknown (pods not listed: ${p.code})`;
  return `proxies: ${p.proxies}, ${p.onlyOld.length} trusting only old anchors, ${p.unknown.length} unknown`;
}

export function printRotationStatus(ctx: CliContext, s: RotationStatus, offline: OfflineAssumptions): void {
  ctx.out(
    `phase: ${s.phase === 'steady' ? 'steady (no rotation in progress, or rotation complete)' : `${s.phase} of 6`}`,
  );
  if (s.newAnchor !== null)
    ctx.out(
      `${s.phase === 'steady' ? 'anchor' : 'new anchor'}: ${s.newAnchor.subject} ${s.newAnchor.fingerprint ?? `(only a cross certificate names it; key ${s.newAnchor.keyId ?? ''})`}`,
    );
  for (const a of s.oldAnchors) ctx.out(`old anchor: ${a.subject} ${a.fingerprint ?? ''}`);
  for (const c of s.clusters) {
    const bundle = `bundle ${c.bundleHasNew ? 'has' : 'lacks'} the new anchor${c.oldAnchorsInBundle.length > 0 ? ' and holds the old' : ''}`;
    const bound =
      c.oldLeavesValidUntil !== null && c.oldLeavesBasis !== null
        ? `; leaves of earlier issuers valid until ${c.oldLeavesValidUntil} (from ${BASIS_TEXT[c.oldLeavesBasis](offline)})`
        : '';
    ctx.out(
      `  ${c.name}: phase ${c.phase.phase} (${c.phase.name}); ${bundle}; ${ISSUER_TEXT[c.issuer.kind]}; ${proxiesText(c)}${bound}`,
    );
    if (c.serving.kind === 'tls')
      ctx.out(
        `    serving TLS chain reaches ${c.serving.reachesNew ? 'the new anchor' : 'NOT the new anchor'}${c.serving.oldAnchorsReached.length > 0 ? ' and the old' : ''}`,
      );
    if (c.proxies.kind === 'listed')
      for (const p of c.proxies.onlyOld) ctx.out(`    trusts only old anchors: ${p.namespace}/${p.name}`);
  }
  for (const r of s.earlyRemovals)
    ctx.out(
      `removed too early: ${r.anchorFingerprint ?? 'the anchor that signed the cross certificate'} from ${r.clusters.join(', ')} (safe after ${r.safeAfter ?? 'an unknown time'})`,
    );
  // during a rotation the phases say more; in steady state this is what could still hide an old anchor
  for (const g of s.phase === 'steady' ? s.recordGaps : [])
    ctx.out(
      `  note: ${g.cluster}'s record starts at ${g.since}: leaves signed before then under an anchor no bundle names any more may be valid until ${g.until} without showing here`,
    );
  for (const w of s.warnings)
    ctx.out(
      `warning: ${w.cluster}'s cross certificate ends ${w.crossNotAfter}, before ${w.renewedIssuerNotAfter} (a renewed issuer) or within 30 days: renewals past it are rejected (ERR_CROSS_CERT_EXPIRES_FIRST); make a longer one (lanyard anchor cross-sign --lifetime) or finish phase 6`,
    );
  for (const p of s.problems) ctx.out(`UNSAFE: ${p}`);
  const n = s.next;
  ctx.out(
    `next: ${n.action}${n.phase !== null ? ` (phase ${n.phase})` : ''}${n.clusters.length > 0 ? ` [${n.clusters.join(', ')}]` : ''} — ${n.safe ? 'safe' : n.missing.length > 0 ? 'CANNOT BE ESTABLISHED (inputs missing)' : 'NOT SAFE'}: ${n.reason}`,
  );
  for (const m of n.missing)
    ctx.out(`  missing input: --${m} (the step's commands are not printed without it)`);
  for (const step of n.commands) for (const c of step.commands) ctx.out(`  ${c}`);
}

const PHASE_TITLE: Record<PlanPhase['action'], string> = {
  prepare: 'prepare the new anchor, the cross certificate and one new issuer per cluster.',
  'switch-issuers':
    'switch each issuer to its new issuer with the cross certificate (the issuer reloads it without a restart; proxies verify the new leaves through the cross certificate).',
  'add-new-anchor':
    'add the new anchor to every bundle (adding never breaks a handshake; new pods trust both).',
  'wait-old-leaves':
    'wait until no leaf of an old issuer can be valid anywhere (rotate status prints the time, bounded from each switch).',
  'drop-old-anchors': 'drop the old anchor from every bundle.',
  'stop-serving-cross':
    'optional: stop serving the cross certificate once no running proxy trusts only the old anchor (rotate status --kubeconfig NAME=FILE lists them).',
};

/** The plan as the lines `rotate plan` prints. */
export function rotationPlanText(plan: RotationPlan): string[] {
  const lines = [
    `Rotating to ${plan.newAnchor.subject} (${plan.newAnchor.fingerprint}) with the cross certificate ${plan.crossSignedPath}.`,
    'After each phase run:',
    `  ${plan.statusCommand}`,
    'and go on only when it says the next step is safe. No pod needs a restart.',
  ];
  for (const phase of plan.phases) {
    lines.push('', `Phase ${phase.phase}: ${PHASE_TITLE[phase.action]}`, ...waitText(phase));
    for (const step of phase.steps) {
      lines.push(...step.commands.map((c) => `  ${c}`));
      lines.push(...(step.notes ?? []).map((n) => `  # ${step.cluster ?? 'all'}: ${n}`));
    }
  }
  lines.push('', `Finally: ${plan.finalCommand}`);
  return lines;
}

/** Phase 4 for directory clusters: how the time to wait for is found, under which assumptions. */
function waitText(phase: PlanPhase): string[] {
  if (phase.phase !== 4 || phase.offline === null) return [];
  const w = phase.offline;
  return [
    `  For ${w.clusters.join(', ')} (directories keep no issuance record) the time is when the issuer files last changed`,
    `  + ${formatDuration(w.pollIntervalMs)} poll + ${formatDuration(w.maxLeafLifetimeMs)} max leaf lifetime + 2 × ${formatDuration(w.clockSkewMs)} skew: about ${formatDuration(w.windowMs)} after phase 2.`,
    '  If an issuer runs with a longer --leaf-lifetime or --poll-interval, pass them to rotate status (--max-leaf-lifetime, --poll-interval).',
  ];
}

// The six phases of a rotation by cross-signing, with their exact commands for these clusters, as data.
import { isSelfIssued, type CertificateInfo } from '../ca/index.js';
import { RotationInputError } from './errors.js';
import { namesAnchor } from './rotation-anchors.js';
import { servedChainVerifies } from './rotation-next.js';
import { OFFLINE_DEFAULTS, offlineWindowMs, type OfflineAssumptions } from './rotation-bounds.js';
import {
  addAnchorCommands,
  certManagerStopNote,
  certManagerSwitchNote,
  crossSignCommand,
  prepareIssuerCommands,
  removeAnchorCommands,
  renewalHintNote,
  stopCrossCommands,
  switchIssuerCommands,
} from './rotation-commands.js';
import type { Precondition } from './rotation-types.js';
import type { ClusterSnapshot } from './sources.js';

/** For directory clusters (no issuance record): the phase 4 wait counts from when their issuer files changed. */
export interface OfflineWait extends OfflineAssumptions {
  readonly clusters: readonly string[];
  /** pollIntervalMs + maxLeafLifetimeMs + 2 × clockSkewMs */
  readonly windowMs: number;
}

/** The commands of one phase for one cluster (or for the mesh: cluster null). */
export interface PlanStep {
  readonly cluster: string | null;
  readonly kind: ClusterSnapshot['kind'] | null;
  /** phase 5: the old anchor this step removes */
  readonly removesAnchor?: string;
  readonly commands: readonly string[];
  /** what the operator does that is not a command (cert-manager issuers, renewal hints) */
  readonly notes?: readonly string[];
}

type Gate = Precondition['kind'];

interface PhaseBase<P extends number, A extends string> {
  readonly phase: P;
  readonly action: A;
  /** the preconditions `rotate status` measures before this phase may start */
  readonly requires: readonly Gate[];
  readonly steps: readonly PlanStep[];
}

export type PlanPhase =
  | PhaseBase<1, 'prepare'>
  | PhaseBase<2, 'switch-issuers'>
  | PhaseBase<3, 'add-new-anchor'>
  | (PhaseBase<4, 'wait-old-leaves'> & { readonly offline: OfflineWait | null })
  | PhaseBase<5, 'drop-old-anchors'>
  | (PhaseBase<6, 'stop-serving-cross'> & { readonly optional: true });

export interface RotationPlan {
  readonly newAnchor: { readonly fingerprint: string; readonly subject: string };
  readonly newAnchorCertPath: string;
  readonly crossSignedPath: string;
  /** run after each phase; go on only when it says the next step is safe */
  readonly statusCommand: string;
  readonly phases: readonly PlanPhase[];
  readonly finalCommand: string;
}

export interface RotationPlanInput {
  readonly newAnchorDir: string;
  readonly newAnchorCertPath: string;
  readonly newAnchor: {
    readonly fingerprint: string;
    readonly subject: string;
    readonly certificate: CertificateInfo;
  };
  /** the cross certificate file: given and read (`certificate`), or to be made from `oldAnchorDir` */
  readonly cross:
    | { readonly path: string; readonly certificate: CertificateInfo }
    | { readonly path: string; readonly oldAnchorDir: string; readonly oldAnchor: CertificateInfo };
  readonly renewAfter?: string;
  readonly renewSpread?: string;
  readonly offline?: OfflineAssumptions;
  readonly now: Date;
}

/**
 * Pure: the six phases as commands for these clusters. Refuses (ERR_ROTATION_INPUT_INVALID) a cross
 * certificate not for the new anchor, or not signed by an anchor that every bundle holds: phase 2's
 * precondition could not hold with it.
 */
export function planRotation(clusters: readonly ClusterSnapshot[], input: RotationPlanInput): RotationPlan {
  checkCross(clusters, input);
  const offline = input.offline ?? OFFLINE_DEFAULTS;
  const targets = clusters.map((c) => `--cluster ${c.name}=${c.source}`).join(' ');
  const dirs = clusters.filter((c) => c.kind === 'dir').map((c) => c.name);
  const crossPath = input.cross.path;
  const phases = planPhases(clusters, input, offline, dirs);
  return {
    newAnchor: { fingerprint: input.newAnchor.fingerprint, subject: input.newAnchor.subject },
    newAnchorCertPath: input.newAnchorCertPath,
    crossSignedPath: crossPath,
    statusCommand: `lanyard rotate status ${targets} --new-anchor ${input.newAnchorDir} --cross-signed ${crossPath}${dirs.length > 0 ? offlineFlags(offline) : ''}`,
    phases,
    finalCommand: `lanyard check ${targets}`,
  };
}

function planPhases(
  clusters: readonly ClusterSnapshot[],
  input: RotationPlanInput,
  offline: OfflineAssumptions,
  dirs: readonly string[],
): PlanPhase[] {
  const per = (f: (c: ClusterSnapshot) => string[], notes?: (c: ClusterSnapshot) => string[]): PlanStep[] =>
    clusters.map((c) => ({
      cluster: c.name,
      kind: c.kind,
      commands: f(c),
      ...(notes ? { notes: notes(c) } : {}),
    }));
  const crossPath = input.cross.path;
  const { make, hint } = phaseOneExtras(input);
  return [
    {
      phase: 1,
      action: 'prepare',
      requires: [],
      steps: [...make, ...per((c) => prepareIssuerCommands(c, input.newAnchorDir, crossPath)), ...hint],
    },
    {
      phase: 2,
      action: 'switch-issuers',
      requires: ['cross-reaches-every-bundle', 'cross-not-expired'],
      steps: per(switchIssuerCommands, (c) => (c.kind === 'admin' ? [certManagerSwitchNote(crossPath)] : [])),
    },
    {
      phase: 3,
      action: 'add-new-anchor',
      requires: [],
      steps: per((c) => addAnchorCommands(c, input.newAnchorCertPath)),
    },
    {
      phase: 4,
      action: 'wait-old-leaves',
      requires: ['every-issuer-switched', 'new-anchor-in-every-bundle'],
      steps: [],
      offline: dirs.length > 0 ? { ...offline, clusters: dirs, windowMs: offlineWindowMs(offline) } : null,
    },
    {
      phase: 5,
      action: 'drop-old-anchors',
      requires: [
        'every-issuer-switched',
        'new-anchor-in-every-bundle',
        'serving-chain-reaches-new',
        'old-leaves-expired',
      ],
      steps: clusters.flatMap((c) =>
        c.bundle.anchors
          .filter((a) => !namesAnchor(a.certificate, input.newAnchor.certificate))
          .map((a) => ({
            cluster: c.name,
            kind: c.kind,
            removesAnchor: a.fingerprint,
            commands: removeAnchorCommands(c, a.fingerprint),
          })),
      ),
    },
    {
      phase: 6,
      action: 'stop-serving-cross',
      optional: true,
      requires: ['no-proxy-trusts-only-old'],
      steps: per(
        (c) => stopCrossCommands(c, input.newAnchorDir),
        (c) => (c.kind === 'admin' ? [certManagerStopNote(crossPath)] : []),
      ),
    },
  ];
}

/** Phase 1's mesh-wide steps: the cross-sign command (when the file is still to be made), the renewal hint. */
function phaseOneExtras(input: RotationPlanInput): { make: PlanStep[]; hint: PlanStep[] } {
  const make =
    'oldAnchorDir' in input.cross
      ? [
          {
            cluster: null,
            kind: null,
            commands: [crossSignCommand(input.cross.oldAnchorDir, input.newAnchorDir, input.cross.path)],
          },
        ]
      : [];
  const hint =
    input.renewAfter !== undefined
      ? [
          {
            cluster: null,
            kind: null,
            commands: [],
            notes: [renewalHintNote(input.renewAfter, input.renewSpread ?? '10m')],
          },
        ]
      : [];
  return { make, hint };
}

/** The cross certificate (or the old anchor it will be made from) must be for B and under an anchor of every bundle. */
function checkCross(clusters: readonly ClusterSnapshot[], input: RotationPlanInput): void {
  const invalid = (why: string): RotationInputError =>
    new RotationInputError(
      'ERR_ROTATION_INPUT_INVALID',
      why,
      'oldAnchorDir' in input.cross ? 'old-anchor' : 'cross-signed',
    );
  if ('certificate' in input.cross) {
    const cross = input.cross.certificate;
    if (!namesAnchor(cross, input.newAnchor.certificate) || isSelfIssued(cross))
      throw invalid(
        'the cross certificate does not carry the new anchor’s subject and key, or is self-signed',
      );
    const lacking = clusters.filter(
      (c) =>
        !c.bundle.anchors.some((a) => servedChainVerifies(a.certificate, cross, [], input.now.getTime())),
    );
    if (lacking.length > 0)
      throw invalid(
        `the chain [B-issuer, cross certificate] does not verify now (signature, validity, pathLen) against an anchor of the bundle of ${lacking.map((c) => c.name).join(', ')}`,
      );
    return;
  }
  const old = input.cross.oldAnchor;
  const lacking = clusters.filter((c) => !c.bundle.anchors.some((a) => a.certificate.der.equals(old.der)));
  if (lacking.length > 0)
    throw invalid(`the old anchor is not in the bundle of ${lacking.map((c) => c.name).join(', ')}`);
  // the cross certificate and the B-issuer will sit below it
  if (old.pathLen !== undefined && old.pathLen < 2)
    throw invalid(`the old anchor's pathLen ${old.pathLen} refuses [B-issuer, cross certificate] below it`);
}

/** The flags that reproduce non-default offline assumptions on another command line. */
export function offlineFlags(a: OfflineAssumptions): string {
  const parts: string[] = [];
  if (a.maxLeafLifetimeMs !== OFFLINE_DEFAULTS.maxLeafLifetimeMs)
    parts.push(`--max-leaf-lifetime ${a.maxLeafLifetimeMs}ms`);
  if (a.pollIntervalMs !== OFFLINE_DEFAULTS.pollIntervalMs)
    parts.push(`--poll-interval ${a.pollIntervalMs}ms`);
  if (a.clockSkewMs !== OFFLINE_DEFAULTS.clockSkewMs) parts.push(`--clock-skew ${a.clockSkewMs}ms`);
  return parts.map((p) => ` ${p}`).join('');
}

import { join } from 'node:path';
import { ANCHOR_FILES } from '../ca/store/index.js';
import { OFFLINE_DEFAULTS, offlineWindowMs, type OfflineAssumptions } from './rotation.js';
import type { ClusterSnapshot } from './sources.js';

/** The three phases of a trust-anchor rotation, in order (see RotationPhase in rotation.ts). */
export type PlanAction = 'add-new-anchor' | 'reissue-issuers' | 'remove-old-anchors';

/** What must hold before a phase may start (`rotate status` says when it does). */
export type PlanWait =
  /** phase 1: nothing; adding an anchor never breaks a handshake */
  | { readonly kind: 'nothing' }
  /**
   * phase 2: every bundle holds the new anchor, and proxies that read their trust anchors only at
   * start have been restarted (rolling) so they hold it too
   */
  | { readonly kind: 'new-anchor-everywhere'; readonly restartProxies: true }
  /** phase 3: no leaf signed under an old anchor can be valid any more */
  | { readonly kind: 'old-leaves-expired'; readonly offline: OfflineWait | null };

/**
 * For clusters read from a directory (no issuance record): the wait for phase 3 counts from when
 * their issuer files last changed, under these assumptions (null in PlanWait when there is none).
 */
export interface OfflineWait extends OfflineAssumptions {
  readonly clusters: readonly string[];
  /** pollIntervalMs + maxLeafLifetimeMs + 2 × clockSkewMs (offlineWindowMs) */
  readonly windowMs: number;
}

/** The commands of one phase for one cluster (and, in phase 3, one old anchor). */
export interface PlanStep {
  readonly cluster: string;
  readonly kind: ClusterSnapshot['kind'];
  /** phase 3: the fingerprint of the old anchor this step removes */
  readonly removesAnchor?: string;
  /** shell command lines, in order */
  readonly commands: readonly string[];
}

export interface PlanPhase {
  readonly phase: 1 | 2 | 3;
  readonly action: PlanAction;
  readonly waitsFor: PlanWait;
  readonly steps: readonly PlanStep[];
}

/** A rotation to `newAnchor` for these clusters: the phases and their exact commands, as data. */
export interface RotationPlan {
  readonly newAnchor: { readonly fingerprint: string; readonly subject: string };
  /** the new anchor's certificate file, as the commands name it */
  readonly newAnchorCertPath: string;
  /** run after each phase; go on only when it says the next step is safe */
  readonly statusCommand: string;
  readonly phases: readonly [PlanPhase, PlanPhase, PlanPhase];
  /** run when the rotation is done */
  readonly finalCommand: string;
}

export interface RotationPlanInput {
  /** the directory of the new anchor (`lanyard anchor create --out`) */
  readonly newAnchorDir: string;
  readonly newAnchor: { readonly fingerprint: string; readonly subject: string };
  /** what directory issuers are assumed to do; OFFLINE_DEFAULTS when absent */
  readonly offline?: OfflineAssumptions;
}

/**
 * Pure: the phases as commands for these clusters (directory sources get file commands, admin
 * sources Kubernetes ones). The plan reads no clock: its one wait is relative (phase 3 comes a
 * window after phase 2), and `rotate status` is what tells the time.
 */
export function planRotation(clusters: readonly ClusterSnapshot[], input: RotationPlanInput): RotationPlan {
  const offline = input.offline ?? OFFLINE_DEFAULTS;
  const anchorCert = join(input.newAnchorDir, ANCHOR_FILES.cert);
  const targets = clusters.map((c) => `--cluster ${c.name}=${c.source}`).join(' ');
  const anyDir = clusters.some((c) => c.kind === 'dir');
  const dirs = clusters.filter((c) => c.kind === 'dir').map((c) => c.name);
  return {
    newAnchor: { fingerprint: input.newAnchor.fingerprint, subject: input.newAnchor.subject },
    newAnchorCertPath: anchorCert,
    statusCommand: `lanyard rotate status ${targets}${anyDir ? offlineFlags(offline) : ''}`,
    phases: [
      {
        phase: 1,
        action: 'add-new-anchor',
        waitsFor: { kind: 'nothing' },
        steps: clusters.map((c) => step(c, addAnchorCommands(c, anchorCert))),
      },
      {
        phase: 2,
        action: 'reissue-issuers',
        waitsFor: { kind: 'new-anchor-everywhere', restartProxies: true },
        steps: clusters.map((c) => step(c, reissueCommands(c, input.newAnchorDir))),
      },
      {
        phase: 3,
        action: 'remove-old-anchors',
        waitsFor: {
          kind: 'old-leaves-expired',
          offline:
            dirs.length > 0 ? { ...offline, clusters: dirs, windowMs: offlineWindowMs(offline) } : null,
        },
        steps: clusters.flatMap((c) =>
          c.bundle.anchors
            .filter((a) => a.fingerprint !== input.newAnchor.fingerprint)
            .map((a) => ({
              ...step(c, removeAnchorCommands(c, a.fingerprint)),
              removesAnchor: a.fingerprint,
            })),
        ),
      },
    ],
    finalCommand: `lanyard check ${targets}`,
  };
}

function step(c: ClusterSnapshot, commands: readonly string[]): PlanStep {
  return { cluster: c.name, kind: c.kind, commands };
}

/** The bundle file `lanyard bundle add/remove` edits: the directory's, or a local copy of the served one. */
function bundleFile(c: ClusterSnapshot): string {
  return c.kind === 'dir' ? (c.bundlePath ?? join(c.source, 'ca.crt')) : `${c.name}-bundle.crt`;
}

function applyConfigMap(c: ClusterSnapshot): string {
  return `lanyard bundle export ${bundleFile(c)} --format configmap | kubectl --context ${c.name} apply -f -`;
}

function addAnchorCommands(c: ClusterSnapshot, anchorCert: string): string[] {
  const add = `lanyard bundle add ${bundleFile(c)} ${anchorCert}`;
  if (c.kind === 'dir') return [add];
  return [`curl -fsS ${c.source}/v1/bundle > ${bundleFile(c)}`, add, applyConfigMap(c)];
}

function reissueCommands(c: ClusterSnapshot, newAnchorDir: string): string[] {
  const next = `${c.name}-issuer-next`;
  const create = `lanyard issuer create --anchor ${newAnchorDir} --cluster ${c.name} --out ${next}`;
  // Key and certificate are copied, never ca.crt: the bundle must keep the old anchor until phase 3.
  if (c.kind === 'dir') return [create, `cp ${next}/tls.key ${next}/tls.crt ${c.source}/`];
  return [
    create,
    `kubectl --context ${c.name} -n linkerd create secret tls linkerd-identity-issuer --cert=${next}/tls.crt --key=${next}/tls.key --dry-run=client -o yaml | kubectl --context ${c.name} apply -f -`,
  ];
}

function removeAnchorCommands(c: ClusterSnapshot, fingerprint: string): string[] {
  const remove = `lanyard bundle remove ${bundleFile(c)} ${fingerprint}`;
  return c.kind === 'dir' ? [remove] : [remove, applyConfigMap(c)];
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

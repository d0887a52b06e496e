// One cluster's admin endpoints read for the dashboard: /v1/status, /v1/bundle and /metrics, each
// bounded (a deadline and a size limit per request, requestBounded). A cluster that does not answer,
// or answers with something that is not Lanyard's, becomes a reading with a reason, never an error
// thrown at the caller: one bad cluster must not hide or stall the others.
import { isLanyardError } from '../ca/index.js';
import { FetchError, requestBounded, type FetchFailure } from './fetch.js';
import { adminSnapshot, type ClusterSnapshot, type ClusterTarget } from './sources.js';
import type { UntrustedStatus } from './status-contract.js';

/** What the dashboard takes from a cluster's /metrics (null: not exposed). */
export interface MetricsSummary {
  readonly certifyCalls: number;
  readonly certifyErrors: number;
  readonly reloadsOk: number;
  readonly reloadsRejected: number;
  /** the latest credential (re)load and its result, when the issuer exposes it */
  readonly lastReload: { readonly result: string; readonly at: string } | null;
}

/** Why a cluster could not be read: a fetch failure's reason, or an answer that is not Lanyard's. */
export type ReadProblem = FetchFailure | 'not-lanyard-status' | 'invalid-bundle';

interface ReadingBase {
  readonly name: string;
  /** when this reading was taken (ISO) */
  readonly readAt: string;
}

export interface ClusterRead extends ReadingBase {
  readonly state: 'ok';
  readonly snapshot: ClusterSnapshot;
  /** /v1/status as it was read (checked for shape, otherwise as the issuer wrote it) */
  readonly status: UntrustedStatus;
  readonly metrics: MetricsSummary | null;
  /** the /metrics text as read (null when it could not be read) */
  readonly metricsText: string | null;
}

export interface ClusterUnread extends ReadingBase {
  /** unreachable: no connection; broken: it answered, but not as a Lanyard issuer does */
  readonly state: 'unreachable' | 'broken';
  readonly problem: ReadProblem;
  /** what went wrong, for the operator (no URL, no socket detail) */
  readonly reason: string;
}

export type ClusterReading = ClusterRead | ClusterUnread;

export interface ReadLimits {
  /** deadline of each request, ms */
  readonly timeoutMs: number;
  /** largest body of each answer, bytes */
  readonly maxBytes: number;
  readonly signal?: AbortSignal;
}

const REASONS: Readonly<Record<ReadProblem, (timeoutMs: number, maxBytes: number) => string>> = {
  unreachable: () => 'no connection to its admin endpoint (refused, reset or unresolvable)',
  status: () => 'its admin endpoint answered with an HTTP error',
  timeout: (ms) => `no complete answer within ${ms} ms`,
  'too-large': (_ms, bytes) => `an answer larger than ${bytes} bytes`,
  redirect: () => 'its admin endpoint redirects elsewhere',
  cancelled: () => 'the read was cancelled',
  'not-lanyard-status': () => "/v1/status is not a Lanyard issuer's status JSON",
  'invalid-bundle': () => '/v1/bundle is not a PEM trust bundle',
};

/** Reads one cluster; never throws for anything the cluster does. */
export async function readCluster(
  t: ClusterTarget,
  limits: ReadLimits,
  now: () => Date,
): Promise<ClusterReading> {
  const base = t.target.replace(/\/+$/, '');
  const unread = (problem: ReadProblem): ClusterUnread => ({
    name: t.name,
    readAt: now().toISOString(),
    state: problem === 'unreachable' ? 'unreachable' : 'broken',
    problem,
    reason: REASONS[problem](limits.timeoutMs, limits.maxBytes),
  });
  const get = async (path: string): Promise<string> => {
    const res = await requestBounded(new URL(`${base}${path}`), {
      timeoutMs: limits.timeoutMs,
      maxBytes: limits.maxBytes,
      ...(limits.signal !== undefined ? { signal: limits.signal } : {}),
    });
    return res.body.toString('utf8');
  };
  const metricsText = get('/metrics').catch(() => null);
  let statusText: string;
  let bundleText: string;
  try {
    [statusText, bundleText] = await Promise.all([get('/v1/status'), get('/v1/bundle')]);
  } catch (err) {
    await metricsText;
    if (err instanceof FetchError) return unread(err.reason);
    throw err;
  }
  const status = parseStatus(statusText);
  if (status === undefined) {
    await metricsText;
    return unread('not-lanyard-status');
  }
  let snapshot: ClusterSnapshot;
  try {
    snapshot = adminSnapshot(t, bundleText, status);
  } catch (err) {
    await metricsText;
    if (isLanyardError(err)) return unread('invalid-bundle');
    throw err;
  }
  const text = await metricsText;
  return {
    name: t.name,
    readAt: now().toISOString(),
    state: 'ok',
    snapshot,
    status,
    metrics: text === null ? null : summarizeMetrics(text),
    metricsText: text,
  };
}

/** The status JSON when it has the shape of Lanyard's /v1/status; undefined otherwise. */
export function parseStatus(text: string): UntrustedStatus | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const s = v as UntrustedStatus;
  const issuerOk = s.issuer === null || (typeof s.issuer === 'object' && !Array.isArray(s.issuer));
  return typeof s.cluster === 'string' &&
    typeof s.ready === 'boolean' &&
    typeof s.now === 'string' &&
    Array.isArray(s.anchors) &&
    issuerOk
    ? s
    : undefined;
}

/** The Certify counts, reload counts and the latest reload, from Prometheus exposition text. */
export function summarizeMetrics(text: string): MetricsSummary {
  let certifyCalls = 0;
  let certifyErrors = 0;
  let reloadsOk = 0;
  let reloadsRejected = 0;
  let lastReload: { result: string; at: number } | undefined;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    ) as Record<string, string | undefined>;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    switch (m[1]) {
      case 'lanyard_requests_total':
        if (labels.api !== 'Certify') break;
        certifyCalls += value;
        if (labels.result !== 'OK') certifyErrors += value;
        break;
      case 'lanyard_credential_reloads_total':
        if (labels.result === 'ok') reloadsOk += value;
        else if (labels.result === 'rejected') reloadsRejected += value;
        break;
      case 'lanyard_credential_last_reload_timestamp_seconds':
        if (value > 0 && labels.result !== undefined && (lastReload === undefined || value > lastReload.at))
          lastReload = { result: labels.result, at: value };
        break;
    }
  }
  return {
    certifyCalls,
    certifyErrors,
    reloadsOk,
    reloadsRejected,
    lastReload:
      lastReload === undefined
        ? null
        : { result: lastReload.result, at: new Date(lastReload.at * 1000).toISOString() },
  };
}

// A pod's Linkerd proxy, identity side, for the flat-network demo and test, run inside the pod's
// namespace: it gets and keeps the pod's certificate exactly as an unmodified proxy does, through
// the proxy-faithful client (test/support/proxy-client.ts), and writes the files pod-agent serves
// mTLS with (tls.crt = leaf then intermediates, tls.key, ca.crt = the trust anchors).
//
// What a proxy does, and so what this does:
// - the trust anchors (LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS) are read once, at start, and never
//   again (a proxy trusts a new anchor only once it is restarted, or when its answers chain to an anchor
//   it already trusts: a cross certificate served with every answer does that);
// - one P-256 key, made at start, in every CSR;
// - every Certify over TLS 1.3 with no ALPN, SNI = the identity service name, whose certificate must
//   carry that name and chain to the anchors read at start;
// - the next Certify at 70 % of (valid_until − now), bounded by the proxy's defaults (10 s, 24 h),
//   never from the leaf's notAfter; a failed one is retried with backoff.
//
// - a timer never fires before its instant (as tokio's sleep_until in the proxy): the next Certify is
//   never made before refreshAt.
//
// One JSON line per event: {"event":"started", pid} once, then
// {"event":"certified", requestedAt, answeredAt (the files written), alpn, serial, servedBy, validUntil,
// refreshAt, chain (base64 DER: the leaf, then the intermediates as answered)} or
// {"event":"certify-failed", kind, grpcStatus?, error}. --once: one Certify, its line, exit 0 or 1
// (nothing written).
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encodePem, systemClock } from '../../ca/index.js';
import { writeFilesAtomic } from '../../ca/store/index.js';
import { ProxyCertifyError, proxyCertify, type ProxyCertificate } from '../../test/support/index.js';

const { values } = parseArgs({
  options: {
    /** LINKERD2_PROXY_IDENTITY_SVC_ADDR */
    addr: { type: 'string' },
    /** LINKERD2_PROXY_IDENTITY_SVC_NAME */
    'service-name': { type: 'string' },
    /** LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS, as a file */
    'trust-anchors': { type: 'string' },
    /** LINKERD2_PROXY_IDENTITY_LOCAL_NAME */
    identity: { type: 'string' },
    /** LINKERD2_PROXY_IDENTITY_TOKEN_FILE */
    'token-file': { type: 'string' },
    dir: { type: 'string' },
    once: { type: 'boolean', default: false },
  },
});

function required(name: keyof typeof values): string {
  const v = values[name];
  if (typeof v !== 'string') throw new Error(`--${name} is required`);
  return v;
}

const MIN_REFRESH_MS = 10_000;
const MAX_REFRESH_MS = 86_400_000;

const emit = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

const anchorsPem = readFileSync(required('trust-anchors'), 'utf8');
const key: KeyObject = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const base = {
  addr: required('addr'),
  serviceName: required('service-name'),
  trustAnchorsPem: anchorsPem,
  identity: required('identity'),
  tokenFile: required('token-file'),
  key,
  timeoutMs: 10_000,
  now: () => systemClock.now(),
};

function certifyOnce(): Promise<ProxyCertificate> {
  // the client gives up after timeoutMs whether or not the issuer answers, as the proxy does
  return proxyCertify(base);
}

function certifiedEvent(got: ProxyCertificate, requestedAt: Date, answeredAt: Date): Record<string, unknown> {
  return {
    event: 'certified',
    requestedAt: requestedAt.toISOString(),
    answeredAt: answeredAt.toISOString(),
    alpn: got.alpn ?? null,
    serial: new X509Certificate(got.leafDer).serialNumber,
    servedBy: got.servedBy?.serialNumber ?? null,
    validUntil: got.validUntil.toISOString(),
    refreshAt: got.refreshAt.toISOString(),
    chain: [got.leafDer, ...got.intermediatesDer].map((d) => Buffer.from(d).toString('base64')),
  };
}

function failedEvent(err: unknown): Record<string, unknown> {
  return {
    event: 'certify-failed',
    kind: err instanceof ProxyCertifyError ? err.kind : 'error',
    ...(err instanceof ProxyCertifyError && err.grpcStatus !== undefined
      ? { grpcStatus: err.grpcStatus }
      : {}),
    ...(err instanceof ProxyCertifyError && err.code !== undefined ? { code: err.code } : {}),
    error: (err as Error).message,
  };
}

/**
 * Key, chain and anchors in one change (each file old or new; a reader that catches the key of one
 * pair and the chain of another reads again). The key and ca.crt change only when this process
 * started; they are written only when they differ from what is there.
 */
async function writeFiles(dir: string, got: ProxyCertificate): Promise<void> {
  const path = (f: string): string => join(dir, f);
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const unchanged = (f: string, text: string): boolean =>
    existsSync(path(f)) && readFileSync(path(f), 'utf8') === text;
  const files: Parameters<typeof writeFilesAtomic>[0][number][] = [];
  if (!unchanged('tls.key', keyPem))
    files.push({ path: path('tls.key'), data: keyPem, mode: 0o600, overwrite: true });
  files.push({
    path: path('tls.crt'),
    data: [got.leafDer, ...got.intermediatesDer].map((d) => encodePem('CERTIFICATE', d)).join(''),
    overwrite: true,
  });
  if (!unchanged('ca.crt', anchorsPem))
    files.push({ path: path('ca.crt'), data: anchorsPem, overwrite: true });
  await writeFilesAtomic(files);
}

async function run(dir: string): Promise<void> {
  let backoffMs = 1000;
  let stopping = false;
  let wake: (() => void) | undefined;
  process.on('SIGTERM', () => {
    stopping = true;
    wake?.();
  });
  while (!stopping) {
    let delayMs: number;
    try {
      const requestedAt = systemClock.now();
      const got = await certifyOnce();
      await writeFiles(dir, got);
      emit(certifiedEvent(got, requestedAt, systemClock.now()));
      backoffMs = 1000;
      const untilRefresh = got.refreshAt.getTime() - systemClock.now().getTime();
      delayMs = Math.min(Math.max(untilRefresh, MIN_REFRESH_MS), MAX_REFRESH_MS);
    } catch (err) {
      emit(failedEvent(err));
      delayMs = backoffMs;
      backoffMs = Math.min(backoffMs * 2, 10_000);
    }
    if (stopping) break;
    // Node's timers may fire a millisecond before the wall clock reaches their instant: wait out the rest
    const due = systemClock.now().getTime() + delayMs;
    for (let left = delayMs; left > 0 && !stopping; left = due - systemClock.now().getTime()) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
  emit({ event: 'stopped' });
  process.exit(0);
}

if (values.once) {
  const requestedAt = systemClock.now();
  certifyOnce().then(
    (got) => {
      emit(certifiedEvent(got, requestedAt, systemClock.now()));
      process.exit(0);
    },
    (err: unknown) => {
      emit(failedEvent(err));
      process.exit(1);
    },
  );
} else {
  emit({ event: 'started', pid: process.pid });
  void run(required('dir'));
}

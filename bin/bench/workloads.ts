// Bench workloads: one P-256 key, CSR and projected service-account token per workload, made in
// worker threads before any timed phase.
import { generateKeyPairSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DEFAULT_IDENTITY_DOMAIN, buildCsr, systemClock, workloadIdentity } from '../../ca/index.js';
import { createKeyObjectSigner } from '../../ca/keys/index.js';
import { loadSigningKeyDir, mintServiceAccountToken } from '../token/index.js';

/** What one proxy sends to Certify. */
export interface Workload {
  /** Linkerd DNS identity, e.g. wl-12.bench-3.serviceaccount.identity.linkerd.cluster.local */
  readonly identity: string;
  /** PKCS#10 request, DER */
  readonly csr: Uint8Array;
  /** projected service-account token (JWT, ES256) */
  readonly token: Uint8Array;
}

export interface WorkloadJob {
  readonly signingKeyDir: string;
  readonly tokenIssuer: string;
  /** workloads are named by their index: service account `<prefix>-<i>` in namespace `bench-<i % 50>` */
  readonly prefix: string;
  readonly from: number;
  readonly to: number;
  /** token lifetime, ms */
  readonly tokenTtlMs: number;
}

/** Makes workloads [from, to) of `job` in the calling thread. */
export async function makeWorkloads(job: WorkloadJob): Promise<Workload[]> {
  const signing = await loadSigningKeyDir(job.signingKeyDir);
  const out: Workload[] = [];
  for (let i = job.from; i < job.to; i++) {
    const account = { namespace: `bench-${i % 50}`, name: `${job.prefix}-${i}` };
    const identity = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, account);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = buildCsr(createKeyObjectSigner(privateKey), { dnsNames: [identity.dns] });
    const token = await mintServiceAccountToken({
      key: signing.key,
      kid: signing.kid,
      issuer: job.tokenIssuer,
      namespace: account.namespace,
      serviceAccount: account.name,
      ttlMs: job.tokenTtlMs,
      now: systemClock.now(),
    });
    out.push({ identity: identity.dns, csr: new Uint8Array(csr), token: Buffer.from(token, 'latin1') });
  }
  return out;
}

/**
 * Makes workloads [from, to) split over `threads` worker threads (default: one per core), in index
 * order. The worker module sits next to this one, .js when compiled, .ts when run through tsx.
 */
export async function makeWorkloadsInParallel(
  job: WorkloadJob,
  threads = availableParallelism(),
): Promise<Workload[]> {
  const total = job.to - job.from;
  if (total <= 0) return [];
  const n = Math.max(1, Math.min(threads, Math.ceil(total / 200)));
  const ext = extname(new URL(import.meta.url).pathname);
  const workerUrl = new URL(`./workload-worker${ext}`, import.meta.url);
  const parts = await Promise.all(
    Array.from({ length: n }, (_, k) => {
      const from = job.from + Math.floor((total * k) / n);
      const to = job.from + Math.floor((total * (k + 1)) / n);
      return new Promise<Workload[]>((resolve, reject) => {
        const workerData = { ...job, from, to } satisfies WorkloadJob;
        // from sources (tsx): a worker's `--import tsx` does not reach its entry on Node 20; register it first
        const w =
          ext === '.ts'
            ? new Worker(
                `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl.href)}); })`,
                { eval: true, workerData },
              )
            : new Worker(workerUrl, { workerData });
        w.once('message', (m: Workload[]) => {
          resolve(m);
        });
        w.once('error', reject);
        w.once('exit', (code) => {
          if (code !== 0) reject(new Error(`workload worker exited with code ${code}`));
        });
      });
    }),
  );
  return parts.flat();
}

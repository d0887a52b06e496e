// Server CPU per Certify call for CSRs an unauthenticated caller can choose to make the issuer work
// (issue 11, finding 4). In-process: the Certify use case (issuer/certify.ts) with a P-256-only
// policy and an authenticator that refuses every token at no cost, so what is measured is what the
// CSR makes the server do before the token is refused. Run: npx tsx bin/bench/hostile-csr.ts
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  LanyardError,
  systemClock,
  type IssuerCredential,
} from '../../ca/index.js';
import { InvalidTokenError, type Authenticator } from '../../issuer/authn/index.js';
import { createCertifier, type Certify } from '../../issuer/index.js';
import { createStaticCredentialSource } from '../../issuer/index.js';
import {
  HOSTILE_CSR_DESCRIPTIONS,
  HOSTILE_CSR_KINDS,
  hostileCsr,
  type HostileCsrKind,
} from '../../test/support/index.js';
import { testPki } from '../../test/support/index.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const signal = new AbortController().signal;

/** Tokens "good" authenticate as web/default; every other token is refused without any work. */
const authenticator: Authenticator = {
  name: 'bench',
  authenticate(token) {
    if (Buffer.from(token).toString('latin1') === 'good')
      return Promise.resolve({ namespace: 'default', name: 'web' });
    return Promise.reject(new InvalidTokenError('not a token', { reason: 'malformed' }));
  },
};

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return err instanceof LanyardError ? err.code : String(err);
  }
}

/** Mean CPU (user + system, µs) per call over at least `minCpuMs` of CPU and `minCalls` calls. */
async function cpuPerCall(
  certify: Certify,
  csr: Buffer,
  minCpuMs: number,
  minCalls: number,
): Promise<number> {
  const call = (): Promise<string> =>
    codeOf(certify({ identity: ID, token: Buffer.from('junk'), csr }, { signal }));
  for (let i = 0; i < 10; i++) await call();
  const start = process.cpuUsage();
  let calls = 0;
  let used = 0;
  while (calls < minCalls || used < minCpuMs * 1000) {
    for (let i = 0; i < 10; i++) await call();
    calls += 10;
    const d = process.cpuUsage(start);
    used = d.user + d.system;
  }
  return used / calls;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'min-cpu-ms': { type: 'string', default: '1500' },
      'min-calls': { type: 'string', default: '100' },
      json: { type: 'boolean', default: false },
    },
  });
  const pki = await testPki({ now: systemClock.now() });
  const certifier = (): Certify =>
    createCertifier({
      clock: systemClock,
      credentials: createStaticCredentialSource(
        (pki.issuers.east as { credential: IssuerCredential }).credential,
      ),
      authenticator,
      policy: DEFAULT_LEAF_POLICY,
      domain: DEFAULT_IDENTITY_DOMAIN,
    });
  // the answers come from one certifier, the CPU from another whose renewal cache an accepted CSR
  // never entered (an unauthenticated caller has no way to put one there)
  const answers = certifier();
  const measured = certifier();
  const rows: { kind: HostileCsrKind; what: string; badToken: string; goodToken: string; cpuUs: number }[] =
    [];
  for (const kind of HOSTILE_CSR_KINDS) {
    const csr = hostileCsr(kind, ID);
    const badToken = await codeOf(answers({ identity: ID, token: Buffer.from('junk'), csr }, { signal }));
    const goodToken = await codeOf(answers({ identity: ID, token: Buffer.from('good'), csr }, { signal }));
    const cpuUs = await cpuPerCall(measured, csr, Number(values['min-cpu-ms']), Number(values['min-calls']));
    rows.push({ kind, what: HOSTILE_CSR_DESCRIPTIONS[kind], badToken, goodToken, cpuUs });
  }
  if (values.json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  console.log('CSR kind | CPU per call with a bad token | answer (bad token) | answer (good token)');
  for (const r of rows) {
    console.log(`${r.what} | ${Math.round(r.cpuUs)} µs | ${r.badToken} | ${r.goodToken}`);
  }
}

await main();

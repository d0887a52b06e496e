import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  LanyardError,
  createIssuerCredential,
  encodePem,
  parseCertificatesPem,
  type CertificateInfo,
  workloadIdentity,
  type IssuerCredential,
  type ServiceAccountRef,
} from '../../ca/index.js';
import { createStaticCredentialSource } from '../../issuer/credentials.js';
import { statusName, toGrpcError } from '../../issuer/grpc/status.js';
import {
  createIstioCertifier,
  parseSpiffeId,
  type ImpersonationCheck,
  type IstioCertifyInput,
} from '../../issuer/istio-certify.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { istioCsr, rsaKey } from '../support/istio-csr.js';
import { openssl } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { csrKey, testPki } from '../support/pki.js';

const signal = new AbortController().signal;
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });
const ZTUNNEL: ServiceAccountRef = { namespace: 'istio-system', name: 'ztunnel' };
const token = (sa: ServiceAccountRef): Buffer => Buffer.from(`sa:${sa.namespace}:${sa.name}`);

async function setup(
  options: {
    impersonation?: ImpersonationCheck;
    secondAnchor?: boolean;
    maxTtlMs?: number;
  } = {},
) {
  const clock = new FakeClock('2026-06-01T00:00:00Z');
  const pki = await testPki({ now: clock.now(), issuerLifetimeMs: 48 * HOUR, clusters: ['east'] });
  const east = pki.issuers.east;
  assert.ok(east);
  let cred: IssuerCredential = east.credential;
  if (options.secondAnchor === true) {
    const other = await testPki({ now: clock.now(), clusters: ['east'] });
    cred = createIssuerCredential({
      certificatePem: east.certPem,
      signer: east.signer,
      anchorsPem: pki.anchorsPem + other.anchorsPem,
      now: clock.now(),
    });
  }
  const authenticator = scriptedAuthenticator();
  const issued: string[] = [];
  const certify = createIstioCertifier({
    clock,
    credentials: createStaticCredentialSource(cred),
    authenticator,
    policy: DEFAULT_LEAF_POLICY,
    domain: DEFAULT_IDENTITY_DOMAIN,
    maxTtlMs: options.maxTtlMs ?? 24 * HOUR,
    trustedNodeAccounts: [ZTUNNEL],
    ...(options.impersonation !== undefined ? { impersonation: options.impersonation } : {}),
    onIssued: (r) => issued.push(r.identity.spiffeId),
  });
  const call = (input: Partial<IstioCertifyInput> & { csr: Uint8Array }) =>
    certify({ token: token(WEB), validitySeconds: 0, ...input }, { signal });
  return { clock, cred, authenticator, certify: call, issued };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    assert.ok(err instanceof LanyardError, `not a LanyardError: ${String(err)}`);
    return err.code;
  }
}

/** openssl verify of the answer the way istio-agent uses it: the last element as the CA file. */
function verifyAnswer(chain: readonly string[]): void {
  assert.ok(chain.length >= 3);
  const { dir, cleanup } = tempDir('lanyard-istio-answer-');
  try {
    writeFileSync(join(dir, 'leaf.pem'), chain[0] as string);
    writeFileSync(join(dir, 'middle.pem'), chain.slice(1, -1).join(''));
    writeFileSync(join(dir, 'roots.pem'), chain.at(-1) as string);
    for (const purpose of ['sslclient', 'sslserver'] as const) {
      const r = openssl([
        'verify',
        '-x509_strict',
        '-purpose',
        purpose,
        '-attime',
        String(Date.parse('2026-06-01T00:01:00Z') / 1000),
        '-CAfile',
        join(dir, 'roots.pem'),
        '-untrusted',
        join(dir, 'middle.pem'),
        join(dir, 'leaf.pem'),
      ]);
      assert.ok(r.ok, `${purpose}: ${r.stderr}${r.stdout}`);
    }
  } finally {
    cleanup();
  }
}

const leafOf = (chain: readonly string[]) =>
  parseCertificatesPem(chain[0] as string, 'leaf')[0] as CertificateInfo;

describe('createIstioCertifier (the CreateCertificate use case)', () => {
  it('answers an istio-agent style request (RSA-2048, O=, no TTL) with a 24 h URI-only leaf and the chain Istio wants', async () => {
    const { certify, clock, cred, issued } = await setup();
    const csr = await istioCsr({ key: rsaKey(2048), uris: [WEB.spiffeId], subject: [{ O: [''] }] });
    const r = await certify({ csr });
    assert.equal(r.identity.spiffeId, WEB.spiffeId);
    assert.deepEqual(issued, [WEB.spiffeId]);
    assert.equal(r.certChain.length, 3);
    assert.equal(r.certChain[1], encodePem('CERTIFICATE', cred.chainDer[0] as Buffer));
    verifyAnswer(r.certChain);
    const leaf = leafOf(r.certChain);
    assert.equal(
      leaf.notAfter.getTime() - clock.now().getTime(),
      24 * HOUR + DEFAULT_LEAF_POLICY.clockSkewMs,
    );
  });

  it('answers a ztunnel style request (P-256, empty subject) with the TTL it asked for', async () => {
    const { certify, clock } = await setup();
    const csr = await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] });
    const r = await certify({ csr, validitySeconds: 3600 });
    verifyAnswer(r.certChain);
    const leaf = leafOf(r.certChain);
    assert.equal(leaf.notAfter.getTime() - clock.now().getTime(), HOUR + DEFAULT_LEAF_POLICY.clockSkewMs);
  });

  it('puts every anchor of the bundle into the one last element during a rotation', async () => {
    const { certify } = await setup({ secondAnchor: true });
    const r = await certify({ csr: await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] }) });
    assert.equal(r.certChain.length, 3);
    assert.equal((r.certChain[2] as string).match(/BEGIN CERTIFICATE/g)?.length, 2);
    verifyAnswer(r.certChain);
  });

  it('takes the default as the maximum when --istio-max-ttl is below 24 h', async () => {
    const { certify } = await setup({ maxTtlMs: 2 * HOUR });
    const r = await certify({ csr: await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] }) });
    assert.equal(r.leaf.notAfter.getTime() - r.now.getTime(), 2 * HOUR + DEFAULT_LEAF_POLICY.clockSkewMs);
  });

  it('refuses a TTL above the maximum before the token (ERR_TTL_TOO_LONG, INVALID_ARGUMENT)', async () => {
    const { certify, authenticator, issued } = await setup();
    const csr = await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] });
    assert.equal(await codeOf(certify({ csr, validitySeconds: 24 * 3600 + 1 })), 'ERR_TTL_TOO_LONG');
    assert.equal(authenticator.calls, 0);
    assert.deepEqual(issued, []);
  });

  it('refuses a call without a token (ERR_TOKEN_INVALID, UNAUTHENTICATED)', async () => {
    const { certify, issued } = await setup();
    const csr = await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] });
    assert.equal(await codeOf(certify({ csr, token: Buffer.alloc(0) })), 'ERR_TOKEN_INVALID');
    assert.equal(await codeOf(certify({ csr, token: Buffer.from('nonsense') })), 'ERR_TOKEN_INVALID');
    assert.deepEqual(issued, []);
  });

  it('refuses a CSR naming another identity (ERR_CSR_IDENTITY) or with a DNS name, the latter before the token', async () => {
    const { certify, authenticator } = await setup();
    const other = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'db' });
    const forOther = await istioCsr({ key: csrKey('p256'), uris: [other.spiffeId] });
    assert.equal(await codeOf(certify({ csr: forOther })), 'ERR_CSR_IDENTITY');
    assert.equal(authenticator.calls, 1);
    const withDns = await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId], dns: ['web'] });
    assert.equal(await codeOf(certify({ csr: withDns })), 'ERR_CSR_IDENTITY');
    assert.equal(authenticator.calls, 1);
  });

  it('refuses an RSA key under 2048 bits (ERR_CSR_WEAK_KEY) and an empty csr (ERR_INVALID_REQUEST)', async () => {
    const { certify } = await setup();
    const weak = await istioCsr({ key: rsaKey(1024), uris: [WEB.spiffeId] });
    assert.equal(await codeOf(certify({ csr: weak })), 'ERR_CSR_WEAK_KEY');
    assert.equal(await codeOf(certify({ csr: Buffer.alloc(0) })), 'ERR_INVALID_REQUEST');
  });

  it('refuses impersonation by an account that is not a trusted node account', async () => {
    const { certify } = await setup({ impersonation: () => Promise.resolve() });
    const csr = await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] });
    const other = { namespace: 'default', name: 'db' };
    assert.equal(
      await codeOf(certify({ csr, token: token(other), impersonatedIdentity: WEB.spiffeId })),
      'ERR_IMPERSONATION_DENIED',
    );
  });

  it('refuses impersonation by a trusted node account while no node check is wired (the default seam)', async () => {
    const { certify, issued } = await setup();
    const csr = await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] });
    assert.equal(
      await codeOf(certify({ csr, token: token(ZTUNNEL), impersonatedIdentity: WEB.spiffeId })),
      'ERR_IMPERSONATION_DENIED',
    );
    assert.deepEqual(issued, []);
  });

  it('issues for the impersonated identity when the node check allows it, and asks it with caller and target', async () => {
    const asked: string[] = [];
    const { certify } = await setup({
      impersonation: ({ caller, target }) => {
        asked.push(`${caller.namespace}/${caller.name} → ${target.namespace}/${target.name}`);
        return Promise.resolve();
      },
    });
    const csr = await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] });
    const r = await certify({ csr, token: token(ZTUNNEL), impersonatedIdentity: WEB.spiffeId });
    assert.equal(r.identity.spiffeId, WEB.spiffeId);
    assert.deepEqual(r.caller, ZTUNNEL);
    assert.deepEqual(asked, ['istio-system/ztunnel → default/web']);
    verifyAnswer(r.certChain);
  });

  it('reads only SPIFFE IDs of its own trust domain as an impersonation target', () => {
    assert.deepEqual(parseSpiffeId(DEFAULT_IDENTITY_DOMAIN, WEB.spiffeId), {
      namespace: 'default',
      name: 'web',
    });
    for (const id of [
      'spiffe://other.domain/ns/default/sa/web',
      'spiffe://cluster.local/ns/default/sa/web/x',
      'spiffe://cluster.local/ns/Default/sa/web',
      'spiffe://cluster.local/ns/default/pod/web',
      'web.default',
    ]) {
      assert.throws(
        () => parseSpiffeId(DEFAULT_IDENTITY_DOMAIN, id),
        (e: unknown) => e instanceof LanyardError && e.code === 'ERR_IMPERSONATION_DENIED',
        id,
      );
    }
  });

  it('maps the new codes to the statuses of the contract', () => {
    const cases: [string, string][] = [
      ['ERR_TTL_TOO_LONG', 'INVALID_ARGUMENT'],
      ['ERR_CSR_IDENTITY', 'INVALID_ARGUMENT'],
      ['ERR_IMPERSONATION_DENIED', 'UNAUTHENTICATED'],
      ['ERR_CLUSTER_UNKNOWN', 'UNAUTHENTICATED'],
    ];
    for (const [code, name] of cases)
      assert.equal(statusName(toGrpcError(new LanyardError(code, 'x')).grpcCode), name, code);
  });
});

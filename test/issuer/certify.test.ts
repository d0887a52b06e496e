import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  LanyardError,
  type IssuerCredential,
} from '../../ca/index.js';
import { createCertifier } from '../../issuer/certify.js';
import { createStaticCredentialSource } from '../../issuer/credentials.js';
import { toGrpcError, statusName } from '../../issuer/grpc/status.js';
import { createIssuanceLedger } from '../../issuer/ledger.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { makeCsr, testPki } from '../support/pki.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const signal = new AbortController().signal;

async function setup(mutate?: (c: IssuerCredential) => IssuerCredential) {
  const clock = new FakeClock('2026-06-01T00:00:00Z');
  const pki = await testPki({ now: clock.now(), issuerLifetimeMs: 48 * HOUR });
  const cred = pki.issuers.east?.credential as IssuerCredential;
  const ledger = createIssuanceLedger();
  const certify = createCertifier({
    clock,
    credentials: createStaticCredentialSource(mutate ? mutate(cred) : cred),
    authenticator: scriptedAuthenticator(),
    policy: DEFAULT_LEAF_POLICY,
    domain: DEFAULT_IDENTITY_DOMAIN,
    ledger,
  });
  const csr = (await makeCsr({ dns: [ID] })).der;
  return { clock, pki, certify, ledger, csr };
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

describe('certify (use case)', () => {
  it('returns nothing and fails INTERNAL when the new leaf does not verify against the anchors', async () => {
    const { certify, csr } = await setup((c) => ({
      ...c,
      verifier: {
        ...c.verifier,
        verify() {
          throw new LanyardError('ERR_CHAIN_UNTRUSTED', 'simulated verification failure');
        },
        verifyIssued() {
          throw new LanyardError('ERR_CHAIN_UNTRUSTED', 'simulated verification failure');
        },
      },
    }));
    let caught: unknown;
    try {
      await certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal });
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof LanyardError);
    assert.equal(caught.code, 'ERR_INTERNAL');
    const mapped = toGrpcError(caught);
    assert.equal(statusName(mapped.grpcCode), 'INTERNAL');
  });

  it('answers ERR_ISSUER_UNAVAILABLE once the issuer has expired', async () => {
    const { certify, clock, csr } = await setup();
    clock.advance(49 * HOUR);
    assert.equal(
      await codeOf(certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal })),
      'ERR_ISSUER_UNAVAILABLE',
    );
  });

  it('caps the leaf at the issuer expiry and records the latest notAfter per anchor', async () => {
    const { certify, clock, csr, ledger, pki } = await setup();
    clock.advance(40 * HOUR);
    const r = await certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal });
    assert.equal(r.leaf.notAfter.getTime(), pki.issuers.east?.cert.notAfter.getTime());
    const snap = ledger.snapshot();
    assert.equal(snap.length, 1);
    assert.equal(snap[0]?.issued, 1);
    assert.equal(snap[0]?.latestNotAfter, r.leaf.notAfter.toISOString());
  });

  it('maps every failure of the sequence to its gRPC status', () => {
    const cases: [LanyardError['code'], string][] = [
      ['ERR_ISSUER_UNAVAILABLE', 'UNAVAILABLE'],
      ['ERR_INVALID_REQUEST', 'INVALID_ARGUMENT'],
      ['ERR_CSR_SIGNATURE', 'INVALID_ARGUMENT'],
      ['ERR_CSR_NAMES', 'PERMISSION_DENIED'],
      ['ERR_TOKEN_INVALID', 'UNAUTHENTICATED'],
      ['ERR_AUTHENTICATOR_UNAVAILABLE', 'UNAVAILABLE'],
      ['ERR_IDENTITY_MISMATCH', 'PERMISSION_DENIED'],
      ['ERR_KEY_NOT_ALLOWED', 'PERMISSION_DENIED'],
      ['ERR_OVERLOADED', 'RESOURCE_EXHAUSTED'],
      ['ERR_INTERNAL', 'INTERNAL'],
    ];
    for (const [code, grpcName] of cases) {
      assert.equal(statusName(toGrpcError(new LanyardError(code, 'x')).grpcCode), grpcName, code);
    }
    assert.equal(statusName(toGrpcError(new Error('boom')).grpcCode), 'INTERNAL');
  });
});

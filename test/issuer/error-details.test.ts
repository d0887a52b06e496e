// What a caller learns from a refusal: a generic message and a stable code, never the issuer's file
// paths, URLs, addresses or socket errors (those go to the issuer's log). Over real gRPC, with the
// real authenticators.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { systemClock } from '../../ca/index.js';
import {
  createJwtAuthenticator,
  createTokenReviewAuthenticator,
  type Authenticator,
} from '../../issuer/authn/index.js';
import { createSigningKeyDir, mintServiceAccountToken, type SigningKey } from '../../bin/token/index.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { closedPort, startJwksServer, type JwksServer } from '../support/jwks-server.js';
import { tempDir } from '../support/temp-dir.js';
import { makeCsr, testPki, type TestPki } from '../support/pki.js';
import {
  jwtShapedToken,
  startTokenReviewStandIn,
  type TokenReviewStandIn,
} from '../support/token-review-stand-in.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const WEB = 'system:serviceaccount:default:web';

interface Refusal {
  readonly status: string;
  readonly details: string;
  /** the trailer lanyard-error-code */
  readonly code: string | undefined;
}

/** Internals a caller must never see: a path, a URL, an address or port, a socket error. */
function assertNothingInternal(r: Refusal, secrets: readonly string[]): void {
  for (const s of secrets)
    assert.ok(!r.details.includes(s), `the caller was told ${JSON.stringify(s)}: ${r.details}`);
  assert.doesNotMatch(r.details, /\/|https?:|\d+\.\d+\.\d+\.\d+|:\d{2,5}\b|\bE[A-Z]{3,}\b/, r.details);
}

describe('error details over gRPC: generic for the caller, specific in the log', () => {
  let pki: TestPki;
  let csr: Buffer;
  let work: { dir: string; cleanup: () => void };
  const issuers: TestIssuer[] = [];
  before(async () => {
    pki = await testPki({ now: systemClock.now(), clusters: ['east'] });
    csr = (await makeCsr({ dns: [ID] })).der;
    work = tempDir('lanyard-error-details-');
  });
  after(async () => {
    for (const t of issuers) await t.close();
    work.cleanup();
  });

  async function serve(authenticator: Authenticator): Promise<TestIssuer> {
    const t = await startTestIssuer({ pki, authenticator });
    issuers.push(t);
    return t;
  }

  /** One Certify with `token`; the refusal as the caller sees it, and the issuer's log line of it. */
  async function refuse(t: TestIssuer, token: string): Promise<Refusal & { log: string }> {
    const logged = t.logLines.length;
    let err: ServiceError | undefined;
    try {
      await t.certify({ identity: ID, token: Buffer.from(token), certificate_signing_request: csr });
    } catch (e) {
      err = e as ServiceError;
    }
    assert.ok(err !== undefined, 'the call was refused');
    const code = err.metadata.get('lanyard-error-code')[0];
    const log = t.logLines.slice(logged).find((l) => l.includes('"rpc":"Certify"')) ?? '';
    return {
      status: status[err.code],
      details: err.details,
      code: typeof code === 'string' ? code : undefined,
      log,
    };
  }

  const mint = (key: SigningKey): Promise<string> =>
    mintServiceAccountToken({
      key: key.key,
      kid: key.kid,
      namespace: 'default',
      serviceAccount: 'web',
      now: systemClock.now(),
    });

  it('--jwks-file: an unknown kid and an unreadable file name no path', async () => {
    const keys = await createSigningKeyDir(join(work.dir, 'sa-keys'), { clock: systemClock });
    const stranger = await createSigningKeyDir(join(work.dir, 'other-keys'), { clock: systemClock });
    const auth = createJwtAuthenticator({
      jwks: { file: keys.jwksPath },
      issuer: 'https://kubernetes.default.svc.cluster.local',
      clock: systemClock,
      refetchIntervalMs: 0,
      fileCheckIntervalMs: 0,
    });
    await auth.refresh();
    const t = await serve(auth);
    const unknownKid = await refuse(t, await mint(stranger));
    assertNothingInternal(unknownKid, [keys.jwksPath, work.dir, 'jwks.json']);
    assert.equal(unknownKid.status, 'UNAUTHENTICATED');
    assert.equal(unknownKid.code, 'ERR_TOKEN_INVALID');
    assert.ok(unknownKid.log.includes(keys.jwksPath), `the log names the file: ${unknownKid.log}`);

    rmSync(keys.jwksPath);
    const gone = await refuse(t, await mint(stranger));
    assertNothingInternal(gone, [keys.jwksPath, work.dir, 'jwks.json', 'ENOENT']);
    assert.equal(gone.status, 'UNAVAILABLE');
    assert.equal(gone.code, 'ERR_AUTHENTICATOR_UNAVAILABLE');
    assert.ok(gone.log.includes(keys.jwksPath), `the log names the file: ${gone.log}`);
  });

  describe('--jwks-url', () => {
    let server: JwksServer;
    let keys: SigningKey;
    before(async () => {
      keys = await createSigningKeyDir(join(work.dir, 'url-keys'), { clock: systemClock });
      server = await startJwksServer(keys.jwks);
    });
    after(async () => {
      await server.close();
    });

    it('an unknown kid and an unreachable URL name no URL, address or socket error', async () => {
      const caFile = join(work.dir, 'jwks-ca.crt');
      writeFileSync(caFile, server.caPem);
      const stranger = await createSigningKeyDir(join(work.dir, 'url-other'), { clock: systemClock });
      const issuer = 'https://kubernetes.default.svc.cluster.local';
      const t = await serve(
        createJwtAuthenticator({ jwks: { url: server.url, caFile }, issuer, clock: systemClock }),
      );
      const unknownKid = await refuse(t, await mint(stranger));
      assertNothingInternal(unknownKid, [server.url, new URL(server.url).host, caFile]);
      assert.equal(unknownKid.status, 'UNAUTHENTICATED');
      assert.ok(unknownKid.log.includes(server.url), `the log names the URL: ${unknownKid.log}`);

      const port = await closedPort();
      const down = `https://127.0.0.1:${port}/openid/v1/jwks`;
      const t2 = await serve(
        createJwtAuthenticator({ jwks: { url: down, caFile }, issuer, clock: systemClock }),
      );
      const unreachable = await refuse(t2, await mint(keys));
      assertNothingInternal(unreachable, [down, String(port), 'ECONNREFUSED']);
      assert.equal(unreachable.status, 'UNAVAILABLE');
      assert.equal(unreachable.code, 'ERR_AUTHENTICATOR_UNAVAILABLE');
      assert.ok(unreachable.log.includes(String(port)), `the log names the address: ${unreachable.log}`);
    });
  });

  describe('--auth token-review', () => {
    let standIn: TokenReviewStandIn;
    before(async () => {
      standIn = await startTokenReviewStandIn();
    });
    after(async () => {
      await standIn.close();
    });
    const token = (): string => jwtShapedToken(WEB, { now: systemClock.now() });

    it('an unreachable API server, its error answers and an unreadable token file name no address, path or socket error', async () => {
      const port = await closedPort();
      const down = await serve(
        createTokenReviewAuthenticator({
          connection: { server: `https://127.0.0.1:${port}`, caPem: standIn.caPem, token: 'x' },
          clock: systemClock,
        }),
      );
      const unreachable = await refuse(down, token());
      assertNothingInternal(unreachable, [String(port), 'ECONNREFUSED']);
      assert.equal(unreachable.status, 'UNAVAILABLE');
      assert.equal(unreachable.code, 'ERR_AUTHENTICATOR_UNAVAILABLE');
      assert.ok(
        unreachable.log.includes(`127.0.0.1:${port}`),
        `the log names the address: ${unreachable.log}`,
      );

      const t = await serve(
        createTokenReviewAuthenticator({
          connection: { server: standIn.url, caPem: standIn.caPem, token: standIn.callerToken },
          clock: systemClock,
        }),
      );
      const etcd = 'etcdserver: request timed out (https://10.0.0.5:2379)';
      standIn.override({ status: 500, body: JSON.stringify({ kind: 'Status', code: 500, message: etcd }) });
      const failing = await refuse(t, token());
      assertNothingInternal(failing, ['10.0.0.5', 'etcd', new URL(standIn.url).host]);
      assert.equal(failing.status, 'UNAVAILABLE');
      assert.ok(failing.log.includes('10.0.0.5'), failing.log);

      // a webhook token authenticator behind the API server reports its own socket errors
      const webhook =
        '[invalid bearer token, Post "https://authn.kube-system.svc:443/authenticate": dial tcp 10.96.0.12:443: connect: connection refused]';
      standIn.override({
        status: 201,
        body: JSON.stringify({ kind: 'TokenReview', status: { authenticated: false, error: webhook } }),
      });
      const refused = await refuse(t, token());
      assertNothingInternal(refused, ['10.96.0.12', 'authn.kube-system']);
      assert.equal(refused.status, 'UNAUTHENTICATED');
      assert.equal(refused.code, 'ERR_TOKEN_INVALID');
      assert.ok(refused.log.includes('10.96.0.12'), refused.log);
      standIn.override(undefined);

      const tokenFile = join(work.dir, 'no-such-dir', 'token');
      const noToken = await serve(
        createTokenReviewAuthenticator({
          connection: { server: standIn.url, caPem: standIn.caPem, tokenFile },
          clock: systemClock,
        }),
      );
      const unreadable = await refuse(noToken, token());
      assertNothingInternal(unreadable, [tokenFile, work.dir, 'ENOENT']);
      assert.equal(unreadable.status, 'UNAVAILABLE');
      assert.ok(unreadable.log.includes(tokenFile), unreadable.log);
    });
  });
});

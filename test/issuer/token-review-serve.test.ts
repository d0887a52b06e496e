// lanyard serve --auth token-review, composed as main.ts composes it: the peer address reaches the
// authenticator's per-caller budget, and /metrics counts the TokenReviews.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_TOKEN_REVIEW_RATE } from '../../issuer/authn/index.js';
import { buildIssuerConfig } from '../../issuer/config.js';
import { createIssuerLogger } from '../../issuer/logger.js';
import { startIssuer, type RunningIssuer } from '../../issuer/main.js';
import { FakeClock } from '../support/clock.js';
import { createIdentityClient, grpcCodeOf, writeIssuerDir, type IdentityClient } from '../support/issuer.js';
import { tempDir } from '../support/temp-dir.js';
import { makeCsr, testPki } from '../support/pki.js';
import {
  jwtShapedToken,
  startTokenReviewStandIn,
  type TokenReviewStandIn,
} from '../support/token-review-stand-in.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const WEB = 'system:serviceaccount:default:web';

describe('lanyard serve --auth token-review over gRPC', () => {
  const clock = new FakeClock();
  let standIn: TokenReviewStandIn;
  let dir: { dir: string; cleanup: () => void };
  let issuer: RunningIssuer;
  let client: IdentityClient;
  let csr: Buffer;

  before(async () => {
    standIn = await startTokenReviewStandIn({ clock });
    dir = tempDir('lanyard-token-review-serve-');
    writeIssuerDir(dir.dir, await testPki({ now: clock.now(), clusters: ['east'] }));
    const kubeconfig = join(dir.dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `current-context: c
clusters: [{ name: c, cluster: { server: "${standIn.url}", certificate-authority-data: ${Buffer.from(standIn.caPem).toString('base64')} } }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
users: [{ name: u, user: { token: ${standIn.callerToken} } }]
`,
    );
    const config = buildIssuerConfig({
      issuerDir: dir.dir,
      listen: '127.0.0.1:0',
      adminListen: '127.0.0.1:0',
      cluster: 'east',
      trustDomain: 'cluster.local',
      controlNamespace: 'linkerd',
      auth: 'token-review',
      kubeconfig,
      tokenAudience: 'identity.l5d.io',
      leafKeyTypes: 'p256',
      maxInFlight: '64',
      logLevel: 'error',
    });
    const sink = new Writable({
      write(_c, _e, cb) {
        cb();
      },
    });
    issuer = await startIssuer(config, { logger: createIssuerLogger(config, sink), clock });
    client = createIdentityClient(`127.0.0.1:${issuer.grpcAddress.port}`);
    csr = (await makeCsr({ dns: [ID] })).der;
  });
  after(async () => {
    client.close();
    await issuer.shutdown(500);
    await standIn.close();
    dir.cleanup();
  });

  const certify = (token: string): Promise<string> =>
    grpcCodeOf(client.certify({ identity: ID, token: Buffer.from(token), certificate_signing_request: csr }));
  const metric = async (line: RegExp): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${issuer.adminAddress.port}/metrics`)).text();
    const m = new RegExp(`^${line.source} (\\d+)$`, 'm').exec(text);
    return m === null ? NaN : Number(m[1]);
  };

  it('one client address gets its budget of failed TokenReviews, then UNAVAILABLE without a request; /metrics counts both', async () => {
    assert.equal(await certify(standIn.issueToken(WEB)), 'OK');
    const sent = standIn.requests;
    const burst = DEFAULT_TOKEN_REVIEW_RATE.perPeer.burst;
    for (let i = 0; i < burst; i++) {
      const unknown = jwtShapedToken(WEB, { now: clock.now() });
      assert.equal(await certify(unknown), 'UNAUTHENTICATED');
    }
    for (let i = 0; i < 2; i++) {
      assert.equal(await certify(jwtShapedToken(WEB, { now: clock.now() })), 'UNAVAILABLE');
    }
    assert.equal(standIn.requests, sent + burst, 'no TokenReview beyond the budget');
    // refused for its own claims: no request, whatever the budget
    assert.equal(await certify(`not-a-jwt-${randomBytes(8).toString('hex')}`), 'UNAUTHENTICATED');
    assert.equal(standIn.requests, sent + burst);
    assert.equal(await metric(/lanyard_token_reviews_total\{result="authenticated"\}/), 1);
    assert.equal(await metric(/lanyard_token_reviews_total\{result="rejected"\}/), burst);
    assert.equal(await metric(/lanyard_token_reviews_total\{result="unavailable"\}/), 0);
    assert.equal(await metric(/lanyard_token_reviews_skipped_total\{reason="peer_rate_limit"\}/), 2);
    assert.equal(await metric(/lanyard_token_reviews_skipped_total\{reason="malformed"\}/), 1);
    // refilled with time (the issuer's clock), and a valid token costs the budget nothing
    clock.advance(1_000 / DEFAULT_TOKEN_REVIEW_RATE.perPeer.perSecond);
    assert.equal(await certify(standIn.issueToken(WEB)), 'OK');
    assert.equal(await certify(standIn.issueToken(WEB)), 'OK');
  });
});

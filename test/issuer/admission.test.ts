// Admission control: per-peer fairness (issue #11, finding 1), with two loopback peers.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { systemClock } from '../../ca/index.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { startTestIssuer } from '../support/issuer.js';
import { tempDir } from '../support/temp-dir.js';
import { testPki } from '../support/pki.js';
import { proxyCertify, ProxyCertifyError } from '../support/proxy-client.js';
import { waitFor } from '../support/wait.js';
import { defer } from '../support/cleanup.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

/** A plaintext Certify from a loopback proxy of pod web (the proxy speaks plaintext to loopback). */
function loopbackProxy(
  target: string,
  anchorsPem: string,
  tokenFile: string,
  o: { localAddress?: string; timeoutMs?: number } = {},
): ReturnType<typeof proxyCertify> {
  return proxyCertify({
    addr: target,
    serviceName: 'localhost',
    trustAnchorsPem: anchorsPem,
    identity: ID,
    tokenFile,
    plaintext: true,
    ...o,
  });
}

describe('admission control', () => {
  it('keeps one peer from taking the whole in-flight budget', async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const authn = scriptedAuthenticator();
    const t = await startTestIssuer({ pki, authenticator: authn, maxInFlight: 4, maxInFlightPerPeer: 2 });
    const { dir, cleanup } = tempDir('lanyard-admission-');
    defer(ctx, () => t.close());
    defer(ctx, cleanup);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'sa:default:web');
    const call = (from: string): Promise<string> =>
      loopbackProxy(t.target, pki.anchorsPem, tokenFile, { localAddress: from, timeoutMs: 10_000 }).then(
        () => 'OK',
        (e: unknown) =>
          e instanceof ProxyCertifyError && e.grpcStatus !== undefined
            ? (grpc.status[e.grpcStatus] ?? String(e.grpcStatus))
            : String(e),
      );
    authn.hold();
    const a = [call('127.0.0.2'), call('127.0.0.2')];
    await waitFor(() => authn.waiting === 2, 'two calls from peer A in flight');
    // peer A's third call is over its share; peer B is still served
    assert.equal(await call('127.0.0.2'), 'RESOURCE_EXHAUSTED');
    const b = call('127.0.0.3');
    await waitFor(() => authn.waiting === 3, "peer B's call in flight");
    authn.release();
    assert.deepEqual(await Promise.all([...a, b]), ['OK', 'OK', 'OK']);
  });

  it('ends a call without a deadline once it has run for the longest time a call may run', async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const authn = scriptedAuthenticator();
    const t = await startTestIssuer({ pki, authenticator: authn, maxCallMs: 300 });
    const { dir, cleanup } = tempDir('lanyard-admission-');
    defer(ctx, () => t.close());
    defer(ctx, cleanup);
    defer(ctx, () => {
      authn.release();
    });
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'sa:default:web');
    authn.hold();
    // no timeoutMs: no grpc-timeout is sent, the call has no deadline (the client gives up after 10 s)
    const err = await loopbackProxy(t.target, pki.anchorsPem, tokenFile).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProxyCertifyError);
    assert.equal(err.grpcStatus, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(authn.aborted, 1, 'the authenticator was told to stop');
    const m = await t.issuer.metrics.inFlight.get();
    assert.equal(m.values.find((v) => v.labels.api === 'Certify')?.value, 0);
  });
});

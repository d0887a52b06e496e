import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodePemOf, parseCertificate } from '../../ca/index.js';
import { prepareIssuerFiles, startServe, type LongRunning } from '../support/cli.js';
import { createIdentityClient, grpcCodeOf } from '../support/issuer.js';
import { opensslVerify, tempDir } from '../support/openssl.js';
import { makeCsr } from '../support/pki.js';
import { waitFor } from '../support/tls-cert.js';
import { startTokenReviewStandIn, type TokenReviewStandIn } from '../support/token-review-stand-in.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const GRACE_MS = 10_000;

for (const workers of [1, 2])
  describe(`lanyard serve --workers ${workers} on SIGTERM`, () => {
    let dir: string;
    let cleanup: () => void;
    let standIn: TokenReviewStandIn;
    let serve: LongRunning;
    let target: string;
    // a projected token of default/web, as the kubelet would write it
    let TOKEN: string;

    before(async () => {
      ({ dir, cleanup } = tempDir('lanyard-e2e-drain-'));
      prepareIssuerFiles(dir, []);
      standIn = await startTokenReviewStandIn();
      TOKEN = standIn.issueToken('system:serviceaccount:default:web');
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        `apiVersion: v1
kind: Config
current-context: stand-in
clusters:
  - name: stand-in
    cluster:
      server: ${standIn.url}
      certificate-authority-data: ${Buffer.from(standIn.caPem).toString('base64')}
contexts:
  - name: stand-in
    context: { cluster: stand-in, user: issuer }
users:
  - name: issuer
    user: { token: ${standIn.callerToken} }
`,
      );
      serve = startServe(dir, ['--workers', String(workers), '--shutdown-grace', `${GRACE_MS}ms`], {
        auth: ['--auth', 'token-review', '--kubeconfig', kubeconfig],
      });
      target = `127.0.0.1:${(await serve.waitFor(/gRPC on [^:]+:(\d+)/, 60_000))[1] as string}`;
    });

    after(async () => {
      await serve.stop('SIGKILL');
      await standIn.close();
      cleanup();
    });

    it('finishes the call in flight with a leaf, refuses new calls, and exits 0 within the grace period', async () => {
      const csr = (await makeCsr({ dns: [ID] })).der;
      const held = createIdentityClient(target);
      standIn.hold();
      const inFlight = held.certify({
        identity: ID,
        token: Buffer.from(TOKEN),
        certificate_signing_request: csr,
      });
      await waitFor(() => standIn.inFlight === 1, 'the call to reach the TokenReview API', 10_000);

      const exited = new Promise<number | null>((resolve) => serve.child.once('exit', resolve));
      const signalled = performance.now();
      serve.child.kill('SIGTERM');
      await waitFor(() => serve.stderr().includes('"event":"draining"'), 'the issuer to start draining');

      const late = createIdentityClient(target);
      assert.equal(
        await grpcCodeOf(
          late.certify(
            { identity: ID, token: Buffer.from(TOKEN), certificate_signing_request: csr },
            { deadlineMs: 2000 },
          ),
        ),
        'UNAVAILABLE',
        'a new connection is refused while draining',
      );
      late.close();

      standIn.release();
      const res = await inFlight;
      held.close();
      const leaf = parseCertificate(res.leaf_certificate);
      assert.deepEqual(leaf.dnsNames, [ID]);
      const anchors = decodePemOf(
        readFileSync(join(dir, 'anchor', 'anchor.crt'), 'utf8'),
        'CERTIFICATE',
        'anchor',
      );
      const v = opensslVerify({
        leaf: res.leaf_certificate,
        intermediates: res.intermediate_certificates,
        anchors,
        purpose: 'sslclient',
      });
      assert.ok(v.ok, v.stderr);

      assert.equal(await exited, 0);
      assert.ok(performance.now() - signalled < GRACE_MS, 'exited before the grace period ran out');
      assert.ok(!serve.stderr().includes('grace_expired'), 'no call had to be cancelled');
    });
  });

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodePemOf } from '../../ca/pem.js';
import { parseCertificate } from '../../ca/index.js';
import { prepareIssuerFiles, startServe, type LongRunning } from '../support/cli.js';
import { createIdentityClient } from '../support/issuer.js';
import { opensslVerify } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { makeCsr } from '../support/pki.js';
import { waitFor } from '../support/wait.js';
import * as grpc from '@grpc/grpc-js';
import { IDENTITY_SVC_NAME, opensslServingCert } from '../support/openssl-ca.js';
import { ProxyCertifyError, proxyCertify } from '../support/proxy-client.js';
import { startTokenReviewStandIn, type TokenReviewStandIn } from '../support/token-review-stand-in.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const GRACE_MS = 10_000;

/** Certify as a Linkerd proxy over TLS (no ALPN), or with grpc-js over plaintext; the leaf's DER and chain. */
type Call = (deadlineMs: number) => Promise<{ leaf: Buffer; chain: readonly Buffer[] }>;

for (const { workers, tls } of [
  { workers: 1, tls: false },
  { workers: 2, tls: false },
  { workers: 1, tls: true },
])
  describe(`lanyard serve --workers ${workers}${tls ? ' --tls-cert' : ''} on SIGTERM`, () => {
    let dir: string;
    let cleanup: () => void;
    let standIn: TokenReviewStandIn;
    let serve: LongRunning;
    let target: string;
    let call: () => Call;
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
      const serving = tls
        ? opensslServingCert(
            {
              certPem: readFileSync(join(dir, 'east', 'tls.crt'), 'utf8'),
              keyPem: readFileSync(join(dir, 'east', 'tls.key'), 'utf8'),
            },
            dir,
          )
        : undefined;
      serve = startServe(
        dir,
        [
          '--workers',
          String(workers),
          '--shutdown-grace',
          `${GRACE_MS}ms`,
          ...(serving !== undefined ? ['--tls-cert', serving.certPath, '--tls-key', serving.keyPath] : []),
        ],
        { auth: ['--auth', 'token-review', '--kubeconfig', kubeconfig] },
      );
      target = `127.0.0.1:${(await serve.waitFor(/gRPC on [^:]+:(\d+)/, 60_000))[1] as string}`;
      const tokenFile = join(dir, 'web.token');
      writeFileSync(tokenFile, TOKEN);
      const anchorsPem = readFileSync(join(dir, 'anchor', 'anchor.crt'), 'utf8');
      call = () => {
        if (tls)
          return (deadlineMs) =>
            proxyCertify({
              addr: target,
              serviceName: IDENTITY_SVC_NAME,
              trustAnchorsPem: anchorsPem,
              identity: ID,
              tokenFile,
              timeoutMs: deadlineMs,
            }).then((r) => ({ leaf: r.leafDer, chain: r.intermediatesDer }));
        const client = createIdentityClient(target);
        return async (deadlineMs) => {
          const csr = (await makeCsr({ dns: [ID] })).der;
          try {
            const r = await client.certify(
              { identity: ID, token: Buffer.from(TOKEN), certificate_signing_request: csr },
              { deadlineMs },
            );
            return { leaf: r.leaf_certificate, chain: r.intermediate_certificates };
          } finally {
            client.close();
          }
        };
      };
    });

    after(async () => {
      await serve.stop('SIGKILL');
      await standIn.close();
      cleanup();
    });

    it('finishes the call in flight with a leaf, refuses new calls, and exits 0 within the grace period', async () => {
      standIn.hold();
      const inFlight = call()(20_000);
      await waitFor(() => standIn.inFlight === 1, 'the call to reach the TokenReview API', 10_000);

      const exited = new Promise<number | null>((resolve) => serve.child.once('exit', resolve));
      const signalled = performance.now();
      serve.child.kill('SIGTERM');
      await waitFor(() => serve.stderr().includes('"event":"draining"'), 'the issuer to start draining');

      const late = await call()(2000).then(
        () => 'OK',
        (e: unknown) =>
          e instanceof ProxyCertifyError
            ? e.kind === 'transport'
              ? 'UNAVAILABLE' // the connection was refused: what a proxy sees as unavailable
              : (grpc.status[e.grpcStatus ?? -1] ?? '?')
            : (grpc.status[(e as { code?: number }).code ?? -1] ?? String(e)),
      );
      assert.equal(late, 'UNAVAILABLE', 'a new connection is refused while draining');

      standIn.release();
      const res = await inFlight;
      const leaf = parseCertificate(res.leaf);
      assert.deepEqual(leaf.dnsNames, [ID]);
      const anchors = decodePemOf(
        readFileSync(join(dir, 'anchor', 'anchor.crt'), 'utf8'),
        'CERTIFICATE',
        'anchor',
      );
      const v = opensslVerify({
        leaf: res.leaf,
        intermediates: [...res.chain],
        anchors,
        purpose: 'sslclient',
      });
      assert.ok(v.ok, v.stderr);

      assert.equal(await exited, 0);
      assert.ok(performance.now() - signalled < GRACE_MS, 'exited before the grace period ran out');
      assert.ok(!serve.stderr().includes('grace_expired'), 'no call had to be cancelled');
    });
  });

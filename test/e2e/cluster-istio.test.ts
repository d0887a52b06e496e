import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { buildCsr } from '../../ca/index.js';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { runLanyard } from '../support/cli-inproc.js';
import { startCluster, type ServeCluster } from '../support/cluster.js';
import { createIdentityClient } from '../support/issuer.js';
import {
  istioCreateCertificate,
  opensslVerifyIstioChain,
  type IstioClientOptions,
} from '../support/istio/index.js';
import {
  startPodListStandIn,
  writeStandInKubeconfig,
  type PodListStandIn,
} from '../support/pod-list-stand-in.js';
import { testCert } from '../support/tls-cert.js';
import { waitFor } from '../support/wait.js';

const LINKERD_ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const AGENT_ID = 'spiffe://cluster.local/ns/default/sa/web';
const ZTUNNEL_ID = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';

/**
 * A service-account token for the Istio audience, made with the cluster's token-signing key (DIR/sa)
 * by `lanyard token` run in this process (a spawned CLI costs seconds).
 */
async function istioToken(dir: string, namespace: string, sa: string): Promise<string> {
  const r = await runLanyard([
    'token',
    '--signing-key-dir',
    join(dir, 'sa'),
    '--namespace',
    namespace,
    '--service-account',
    sa,
    '--audience',
    'istio-ca',
  ]);
  if (r.code !== 0) throw new Error(`lanyard token failed: ${r.err}`);
  return r.out.trim();
}

/** The worker ids of the call log lines of `rpc`. */
function workersOf(stderr: string, rpc: string): number[] {
  const ids = stderr
    .split('\n')
    .filter((l) => l.includes(`"rpc":"${rpc}"`))
    .map((l) => (JSON.parse(l) as { worker?: number }).worker ?? 0);
  return [...new Set(ids)].sort();
}

interface Status {
  certificatesIssued: number;
  issuedByAnchor: { issued: number }[];
  issuedByApi: { Certify: number; CreateCertificate: number };
  apis: { Certify: { listen: string }; CreateCertificate: unknown };
}

describe('lanyard serve --workers 2 --istio-listen (node:cluster)', () => {
  let cluster: ServeCluster;
  const serving = testCert('server');
  let tokens: { agent: string; ztunnel: string };

  let podApi: PodListStandIn;

  before(async () => {
    // each worker resolves the node check's Kubernetes connection at start (--kubeconfig)
    podApi = await startPodListStandIn([]);
    cluster = await startCluster('lanyard-cluster-istio-', {
      extra: (dir) => {
        writeFileSync(join(dir, 'serving.crt'), serving.certPem);
        writeFileSync(join(dir, 'serving.key'), serving.keyPem, { mode: 0o600 });
        writeStandInKubeconfig(join(dir, 'kubeconfig'), podApi);
        return [
          ...['--tls-cert', join(dir, 'serving.crt'), '--tls-key', join(dir, 'serving.key')],
          ...['--istio-listen', '127.0.0.1:0', '--istio-trusted-node-accounts', 'istio-system/ztunnel'],
          ...['--kubeconfig', join(dir, 'kubeconfig')],
        ];
      },
    });
    // the signing key (DIR/sa) exists since the web token was made: serve's JWKS has it
    tokens = {
      agent: await istioToken(cluster.dir, 'default', 'web'),
      ztunnel: await istioToken(cluster.dir, 'istio-system', 'ztunnel'),
    };
  });
  after(async () => {
    await cluster.stop();
    await podApi.close();
  });

  const transport = (): Pick<IstioClientOptions, 'addr' | 'serverName' | 'rootPem'> => ({
    addr: `127.0.0.1:${cluster.istioPort ?? '?'}`,
    serverName: 'localhost',
    rootPem: serving.certPem,
  });

  it('reports the Istio port the workers bound, in its start line and /v1/status', async () => {
    assert.ok(cluster.istioPort !== undefined && cluster.istioPort !== '0');
    assert.notEqual(cluster.istioPort, cluster.grpcPort);
    const status = (await (await fetch(`${cluster.admin}/v1/status`)).json()) as Status;
    assert.deepEqual(status.apis, {
      Certify: { listen: `127.0.0.1:${cluster.grpcPort}`, tokenAudience: 'identity.l5d.io' },
      CreateCertificate: {
        listen: `127.0.0.1:${cluster.istioPort}`,
        tokenAudience: 'istio-ca',
        trustedNodeAccounts: ['istio-system/ztunnel'],
        maxTtlMs: 24 * 3600_000,
      },
    });
    assert.match(cluster.serve.stderr(), new RegExp(`"istio":"127\\.0\\.0\\.1:${cluster.istioPort}"`));
  });

  it('answers istio-agent and ztunnel from both workers; status and metrics count them by api', async () => {
    // each call makes its own TLS context, so a new connection: the primary spreads them over the workers
    const calls = Array.from({ length: 8 }, (_, i) =>
      i % 2 === 0
        ? istioCreateCertificate({
            ...transport(),
            style: 'istio-agent',
            spiffeId: AGENT_ID,
            token: tokens.agent,
          })
        : istioCreateCertificate({
            ...transport(),
            style: 'ztunnel',
            spiffeId: ZTUNNEL_ID,
            token: tokens.ztunnel,
            impersonate: false,
          }),
    );
    const answers = await Promise.all(calls);
    answers.forEach((a, i) => {
      assert.deepEqual(opensslVerifyIstioChain(a.chain), [], `call ${i}`);
      assert.deepEqual(a.uris, [i % 2 === 0 ? AGENT_ID : ZTUNNEL_ID]);
    });
    // two Linkerd Certify calls on the gRPC port (TLS there too), for the split by api
    const token = Buffer.from(readFileSync(join(cluster.dir, 'web.token'), 'utf8'));
    const csr = buildCsr(createKeyObjectSigner(await generateKey('p256')), { dnsNames: [LINKERD_ID] });
    for (const i of [1, 2]) {
      const c = createIdentityClient(
        `127.0.0.1:${cluster.grpcPort}`,
        grpc.credentials.createSsl(Buffer.from(serving.certPem)),
        { 'grpc.ssl_target_name_override': 'localhost', 'lanyard.test-connection': i },
      );
      await c.certify({ identity: LINKERD_ID, token, certificate_signing_request: csr });
      c.close();
    }
    // a token for the Linkerd audience is not one for Istio's
    await assert.rejects(
      istioCreateCertificate({
        ...transport(),
        style: 'istio-agent',
        spiffeId: AGENT_ID,
        token: String(token),
      }),
      (e: { code?: number }) => e.code === grpc.status.UNAUTHENTICATED,
    );

    // workers report their issuance to the primary within 100 ms
    let status: Status | undefined;
    await waitFor(
      async () => {
        status = (await (await fetch(`${cluster.admin}/v1/status`)).json()) as Status;
        return status.certificatesIssued === 10;
      },
      () => `10 certificates in /v1/status: ${JSON.stringify(status?.issuedByApi)}`,
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    assert.deepEqual(status?.issuedByApi, { Certify: 2, CreateCertificate: 8 });
    assert.equal(status?.issuedByAnchor[0]?.issued, 10);
    const metrics = await (await fetch(`${cluster.admin}/metrics`)).text();
    assert.match(metrics, /lanyard_requests_total\{api="CreateCertificate",result="OK"\} 8\b/);
    assert.match(metrics, /lanyard_requests_total\{api="CreateCertificate",result="UNAUTHENTICATED"\} 1\b/);
    assert.match(metrics, /lanyard_requests_total\{api="Certify",result="OK"\} 2\b/);
    assert.deepEqual(workersOf(cluster.serve.stderr(), 'CreateCertificate'), [1, 2], 'both workers served');
  });

  it('on SIGTERM closes the Istio listener while a call is still in flight, then exits 0', async () => {
    // A CreateCertificate call whose request never comes holds its worker's drain, but only until
    // the server ends it for waiting too long (5 s, the admission default, which serve has no flag
    // for). So the call that must outlive SIGTERM is opened only once the connection is up (a first
    // call warms it), and everything from its opening to the refused port must fit in HOLD_MS.
    const HOLD_MS = 3500;
    const session = http2.connect(`https://127.0.0.1:${cluster.istioPort ?? '?'}`, {
      ca: serving.certPem,
      servername: 'localhost',
    });
    session.on('error', () => undefined);
    const hold = (): { closed: () => boolean; cancel: () => void } => {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/istio.v1.auth.IstioCertificateService/CreateCertificate',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let closed = false;
      stream.on('close', () => {
        closed = true;
      });
      stream.on('error', () => undefined);
      return {
        closed: () => closed,
        cancel: () => {
          stream.close(http2.constants.NGHTTP2_CANCEL);
        },
      };
    };
    const awaiting = async (n: number): Promise<boolean> =>
      new RegExp(`lanyard_requests_awaiting_message\\{api="CreateCertificate"\\} ${n}\\b`).test(
        await (await fetch(`${cluster.admin}/metrics`)).text(),
      );
    const warm = hold();
    await waitFor(() => awaiting(1), 'a worker to hold the first call', {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const heldSince = performance.now();
    const left = (): number => Math.max(0, HOLD_MS - (performance.now() - heldSince));
    const held = hold();
    await waitFor(() => awaiting(2), 'the worker to hold the second call', {
      timeoutMs: left(),
      intervalMs: 20,
    });
    const exited = cluster.serve.stop('SIGTERM');
    await waitFor(
      async () => (await connectResult(Number(cluster.istioPort))) === 'ECONNREFUSED',
      'the Istio port to refuse connections',
      { timeoutMs: left(), intervalMs: 20 },
    );
    assert.equal(held.closed(), false, 'the call was still in flight');
    assert.equal(cluster.serve.child.exitCode, null, 'the issuer was still draining');
    // the calls end (the client gives up): the worker's drain ends with them, before the grace period
    warm.cancel();
    held.cancel();
    session.close();
    assert.equal(await exited, 0);
    assert.match(cluster.serve.stderr(), /"event":"stopped"/);
  });
});

/** Whether a TCP connection to 127.0.0.1:port is accepted ('connected') or its error code. */
function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      resolve(e.code ?? 'error');
    });
  });
}

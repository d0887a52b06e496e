// ztunnel's impersonation end to end: a real issuer (serve flags → startIssuer) with --istio-listen,
// --auth jwt and --istio-trusted-node-accounts, its node check on a stand-in for the Kubernetes Pod API
// reached through --kubeconfig, and the independent Istio test client (ztunnel style) with projected
// tokens that carry pod claims.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { LanyardError, systemClock } from '../../ca/index.js';
import {
  buildIssuerConfig,
  createIssuerLogger,
  startIssuer,
  type RunningIssuer,
  type ServeFlags,
} from '../../issuer/index.js';
import { DEV_TOKEN_ISSUER, createSigningKeyDir, mintServiceAccountToken } from '../../bin/token/index.js';
import { istioCreateCertificate, opensslVerifyIstioChain } from '../support/istio/index.js';
import { extensionBlock, openssl } from '../support/openssl.js';
import { writeIssuerDir } from '../support/issuer.js';
import {
  standInPodUid,
  startPodListStandIn,
  writeStandInKubeconfig,
  type PodListStandIn,
} from '../support/pod-list-stand-in.js';
import { testPki } from '../support/pki.js';
import { tempDir } from '../support/temp-dir.js';
import { testCert } from '../support/tls-cert.js';
import { waitFor } from '../support/wait.js';

const TD = 'cluster.local';
const spiffe = (ns: string, sa: string): string => `spiffe://${TD}/ns/${ns}/sa/${sa}`;
const pod = (namespace: string, name: string, sa: string, nodeName: string) => ({
  namespace,
  name,
  serviceAccountName: sa,
  nodeName,
  containers: [{ name: 'c' }],
});
const ZTUNNEL_POD = pod('istio-system', 'ztunnel-a1', 'ztunnel', 'node-a');
const WEB_POD = pod('default', 'web-1', 'web', 'node-a');

describe('ztunnel impersonation against lanyard serve --istio-listen (Pod API stand-in)', () => {
  let api: PodListStandIn;
  let issuer: RunningIssuer | undefined;
  let cleanup: (() => void) | undefined;
  let rootPem: string;
  let addr: string;
  let flags: ServeFlags;
  let mint: (ns: string, sa: string, p: { name: string; uid: string }) => Promise<string>;

  before(async () => {
    let dir: string;
    ({ dir, cleanup } = tempDir('lanyard-istio-imp-'));
    api = await startPodListStandIn([ZTUNNEL_POD, WEB_POD]);
    writeStandInKubeconfig(join(dir, 'kubeconfig'), api);
    const pki = await testPki({ now: systemClock.now() });
    writeIssuerDir(dir, pki);
    const signing = await createSigningKeyDir(join(dir, 'sa'), { clock: systemClock });
    mint = (namespace, serviceAccount, p) =>
      mintServiceAccountToken({
        key: signing.key,
        kid: signing.kid,
        namespace,
        serviceAccount,
        audience: 'istio-ca',
        now: systemClock.now(),
        podName: p.name,
        podUid: p.uid,
      });
    const serving = testCert('server');
    rootPem = serving.certPem;
    writeFileSync(join(dir, 'serving.key'), serving.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'serving.crt'), serving.certPem);
    flags = {
      issuerDir: dir,
      listen: '127.0.0.1:0',
      adminListen: '127.0.0.1:0',
      cluster: 'east',
      trustDomain: TD,
      controlNamespace: 'linkerd',
      auth: 'jwt',
      jwksFile: signing.jwksPath,
      tokenIssuer: DEV_TOKEN_ISSUER,
      tokenAudience: 'identity.l5d.io',
      tlsCert: join(dir, 'serving.crt'),
      tlsKey: join(dir, 'serving.key'),
      istioListen: '127.0.0.1:0',
      istioTrustedNodeAccounts: 'istio-system/ztunnel',
      kubeconfig: join(dir, 'kubeconfig'),
      leafKeyTypes: 'p256',
      maxInFlight: '64',
      logLevel: 'info',
    };
    const config = buildIssuerConfig(flags);
    const sink = new Writable({
      write: (_c, _e, cb) => {
        cb();
      },
    });
    issuer = await startIssuer(config, { logger: createIssuerLogger(config, sink) });
    assert.ok(issuer.istioAddress);
    addr = `localhost:${issuer.istioAddress.port}`;
  });
  after(async () => {
    // a start that failed leaves some of these unset
    await issuer?.shutdown(0);
    await api?.close();
    cleanup?.();
  });

  const ztunnelToken = () =>
    mint('istio-system', 'ztunnel', { name: ZTUNNEL_POD.name, uid: standInPodUid(ZTUNNEL_POD) });
  const grpcCode = (p: Promise<unknown>): Promise<unknown> =>
    p.then(
      () => 'OK',
      (err: unknown) => (err as { code?: unknown }).code,
    );

  it('issues the leaf of a pod on the caller’s node: its only SAN is the impersonated ID, openssl verifies the chain', async () => {
    const token = await ztunnelToken();
    let answer: Awaited<ReturnType<typeof istioCreateCertificate>> | undefined;
    // the serving files are read asynchronously after start: retry the first moments
    await waitFor(
      async () => {
        answer = await istioCreateCertificate({
          addr,
          rootPem,
          style: 'ztunnel',
          spiffeId: spiffe('default', 'web'),
          token,
        }).catch(() => undefined);
        return answer !== undefined;
      },
      'an impersonated certificate',
      { intervalMs: 100 },
    );
    assert.ok(answer);
    assert.deepEqual(opensslVerifyIstioChain(answer.chain), []);
    // the leaf is the first element, one certificate (the client checked that)
    const text = openssl(['x509', '-noout', '-text'], { input: answer.chain[0] ?? '' });
    assert.ok(text.ok, text.stderr);
    assert.deepEqual(extensionBlock(text.stdout, 'X509v3 Subject Alternative Name'), {
      critical: true,
      value: `URI:${spiffe('default', 'web')}`,
    });
  });

  it('refuses a service account with no pod on the caller’s node: UNAUTHENTICATED', async () => {
    const token = await ztunnelToken();
    const asked = istioCreateCertificate({
      addr,
      rootPem,
      style: 'ztunnel',
      spiffeId: spiffe('default', 'db'),
      token,
    });
    assert.equal(await grpcCode(asked), status.UNAUTHENTICATED);
  });

  it('refuses a caller that is not a trusted node account, without asking the API server: UNAUTHENTICATED', async () => {
    const before = api.requests.length;
    const token = await mint('default', 'web', { name: WEB_POD.name, uid: standInPodUid(WEB_POD) });
    const asked = istioCreateCertificate({
      addr,
      rootPem,
      style: 'ztunnel',
      spiffeId: spiffe('default', 'web'),
      token,
    });
    assert.equal(await grpcCode(asked), status.UNAUTHENTICATED);
    assert.equal(api.requests.length, before);
  });

  it('fails at start when the Kubernetes API of the node check cannot be configured', async () => {
    const config = buildIssuerConfig({ ...flags, kubeconfig: join(flags.issuerDir, 'no-such-kubeconfig') });
    const sink = new Writable({
      write: (_c, _e, cb) => {
        cb();
      },
    });
    await assert.rejects(
      startIssuer(config, { logger: createIssuerLogger(config, sink) }),
      (err: unknown) => err instanceof LanyardError && err.code === 'ERR_FILE_NOT_FOUND',
    );
  });
});

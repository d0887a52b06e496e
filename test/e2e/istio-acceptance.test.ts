// Issue #16's acceptance, against `lanyard serve --istio-listen` as a user runs it (spawned from bin),
// with the independent Istio test client (test/support/istio: written from istio-agent's and
// ztunnel's sources, nothing from issuer/ or ca/) and the Linkerd proxy-style client. One serve
// process: --auth jwt with a JWKS URL, --tls-cert/--tls-key (DNS SANs for both clients' server
// names), --cluster east; started by ./istio-serve-support.ts, which also holds the refusal checks.
// (One file: node:test runs each file in a process of its own, so the refusals in a second file
// would need a second serve.)
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { systemClock } from '../../ca/index.js';
import type { LongRunning } from '../support/cli.js';
import type { JwksServer } from '../support/jwks-server.js';
import { IDENTITY_SVC_NAME } from '../support/openssl-ca.js';
import { extensionBlock, opensslText, opensslVerify } from '../support/openssl.js';
import type { PodListStandIn } from '../support/pod-list-stand-in.js';
import { proxyCertify } from '../support/proxy-client.js';
import { waitFor } from '../support/wait.js';
import {
  ISTIO_CA_PROTO,
  compareIstioCaProtos,
  istioCreateCertificate,
  istioCsr,
  istioRequest,
  opensslVerifyIstioChain,
  rawCreateCertificate,
  type IstioCertificate,
  type IstioClientOptions,
  type IstioCsr,
  type IstioKeyKind,
} from '../support/istio/index.js';
import {
  ISTIOD_SAN,
  LINKERD_WEB,
  WEB,
  ZTUNNEL_POD,
  ZTUNNEL_UID,
  certificatesIssued,
  refusalChecks,
  requestCounts,
  spiffe,
  startAcceptanceServe,
  type AcceptanceServe,
  type Mint,
} from './istio-serve-support.js';

describe('lanyard serve --istio-listen, reached by istio-agent, ztunnel and a Linkerd proxy (#16 acceptance)', () => {
  let s: AcceptanceServe | undefined;
  let dir: string;
  let jwksServer: JwksServer;
  let mint: Mint;
  let podApi: PodListStandIn;
  /** every token sent: none may appear in serve's output */
  const tokens: string[] = ['not-a-jwt'];
  let serve: LongRunning;
  let adminUrl: string;
  let linkerdPort: number;
  let istioAddr: string;
  let rootPem: string;
  const csrs = new Map<string, Promise<IstioCsr>>();
  let jwks: { keys: object[] };
  /** Istio calls answered with a certificate so far */
  let answered = 0;
  /** istioCreateCertificate, counting the calls answered */
  const createCertificate = async (o: IstioClientOptions): Promise<IstioCertificate> => {
    const got = await istioCreateCertificate(o);
    answered++;
    return got;
  };

  /** A CSR for `spiffeId` with a `kind` key, made once per style, identity and kind (RSA keys are slow). */
  function csrWith(style: IstioClientOptions['style'], spiffeId: string, kind: IstioKeyKind) {
    const id = `${style}|${spiffeId}|${kind}`;
    const made = csrs.get(id) ?? istioCsr({ style, spiffeId, key: kind });
    csrs.set(id, made);
    return made;
  }

  const transport = () => ({ addr: istioAddr, serverName: ISTIOD_SAN, rootPem });

  before(async () => {
    // the RSA keys are made while serve starts
    void csrWith('istio-agent', WEB, 'rsa4096');
    void csrWith('istio-agent', WEB, 'rsa2048');
    s = await startAcceptanceServe(tokens);
    ({ dir, serve, adminUrl, linkerdPort, istioAddr, rootPem, jwksServer, jwks, podApi, mint } = s);
  });

  after(async () => {
    await s?.close();
  });
  const { refused, settledIssuance } = refusalChecks(() => s as AcceptanceServe);

  function assertIstioLeaf(got: IstioCertificate, id: string): void {
    assert.deepEqual(opensslVerifyIstioChain(got.chain), []);
    assert.deepEqual(got.uris, [id]);
    const leaf = new X509Certificate(got.chain[0] as string);
    assert.equal(leaf.subjectAltName, `URI:${id}`, 'the SPIFFE ID is the only SAN');
    assert.ok(!leaf.subject, 'an empty subject');
  }

  /** An istio-agent style call (P-256 key: the key type is not what these calls are about). */
  const agent = async (o: Partial<IstioClientOptions> = {}): Promise<IstioCertificate> =>
    createCertificate({
      ...transport(),
      style: 'istio-agent',
      spiffeId: WEB,
      token: await mint('default', 'web'),
      csr: await csrWith('istio-agent', o.spiffeId ?? WEB, 'p256'),
      ...o,
    });

  it('answers UNAVAILABLE while the token keys cannot be fetched (JWKS URL down at start), then serves', async () => {
    await refused(() => agent(), {
      grpc: status.UNAVAILABLE,
      code: 'ERR_AUTHENTICATOR_UNAVAILABLE',
    });
    jwksServer.serve(jwks);
    // each worker process retries a failed fetch on use after a back-off (1 s): wait until three
    // calls in a row (new connections, spread over the workers) are answered
    let streak = 0;
    await waitFor(
      async () => {
        streak = await agent().then(
          () => streak + 1,
          (e: unknown) => {
            assert.equal((e as ServiceError).code, status.UNAVAILABLE);
            return 0;
          },
        );
        return streak >= 3;
      },
      'calls answered once the JWKS is served',
      { timeoutMs: 10_000, intervalMs: 100 },
    );
  });

  it('gives istio-agent (RSA-2048, O="", CertSigner "", clusterid empty or this cluster) a chain openssl verifies', async () => {
    for (const clusterId of ['', 'east']) {
      const got = await createCertificate({
        ...transport(),
        style: 'istio-agent',
        spiffeId: WEB,
        token: await mint('default', 'web'),
        clusterId,
        // CA_HEADER_* extra headers: ignored
        extraHeaders: { 'x-mesh-revision': 'default' },
        csr: await csrWith('istio-agent', WEB, 'rsa2048'),
      });
      assertIstioLeaf(got, WEB);
      assert.equal(got.roots.length, 1);
    }
  });

  it('gives ztunnel (P-256, empty subject, no impersonation) a chain openssl verifies, for the validity asked', async () => {
    const ztunnel = spiffe('istio-system', 'ztunnel');
    const got = await createCertificate({
      ...transport(),
      style: 'ztunnel',
      spiffeId: ztunnel,
      token: await mint('istio-system', 'ztunnel'),
      impersonate: false,
      validitySeconds: 3600,
    });
    assertIstioLeaf(got, ztunnel);
    // validity_duration is seconds: the leaf ends an hour from now, plus the clock skew allowance
    // (--clock-skew, 20 s) that every leaf gets at both ends
    const endsInS = (Date.parse(got.leaf.validTo) - systemClock.now().getTime()) / 1000;
    assert.ok(endsInS > 3600 - 40 && endsInS <= 3600 + 20, `ends in ${String(endsInS)} s`);
  });

  for (const key of ['rsa4096', 'p384'] as const) {
    it(`accepts a ${key} key (istio-agent)`, async () => {
      const got = await createCertificate({
        ...transport(),
        style: 'istio-agent',
        spiffeId: WEB,
        token: await mint('default', 'web'),
        csr: await csrWith('istio-agent', WEB, key),
      });
      assertIstioLeaf(got, WEB);
    });
  }

  it('gives a Linkerd Certify call and an Istio call leaves of the same issuer', async () => {
    const linkerd = await proxyCertify({
      addr: `127.0.0.1:${linkerdPort}`,
      serviceName: IDENTITY_SVC_NAME,
      trustAnchorsPem: rootPem,
      identity: LINKERD_WEB,
      tokenFile: join(dir, 'web.linkerd.token'),
    });
    const anchors = [new X509Certificate(rootPem).raw];
    for (const purpose of ['sslclient', 'sslserver'] as const) {
      const v = opensslVerify({
        leaf: linkerd.leafDer,
        intermediates: [...linkerd.intermediatesDer],
        anchors,
        purpose,
      });
      assert.ok(v.ok, `${purpose}: ${v.stderr}`);
    }
    const istio = await createCertificate({
      ...transport(),
      style: 'ztunnel',
      spiffeId: WEB,
      token: await mint('default', 'web'),
      impersonate: false,
    });
    assertIstioLeaf(istio, WEB);
    const linkerdLeaf = new X509Certificate(linkerd.leafDer);
    const issuer = new X509Certificate(linkerd.intermediatesDer[0] as Buffer);
    assert.ok(linkerdLeaf.checkIssued(issuer) && linkerdLeaf.verify(issuer.publicKey));
    assert.ok(istio.leaf.checkIssued(issuer) && istio.leaf.verify(issuer.publicKey));
    assert.equal(istio.intermediates.length, 1);
    assert.equal(
      istio.intermediates[0]?.fingerprint256,
      issuer.fingerprint256,
      'the same issuer certificate',
    );
    assert.equal(akiOf(istio.leaf), akiOf(linkerdLeaf));
  });

  // ---- refusals: status, one counted sample, one log line, nothing issued ----

  it('refuses a call without a token: UNAUTHENTICATED', async () => {
    await refused(() => agent({ token: '' }), { grpc: status.UNAUTHENTICATED, code: 'ERR_TOKEN_INVALID' });
  });

  it("refuses a token for another audience (Linkerd's): UNAUTHENTICATED", async () => {
    const token = await mint('default', 'web', 'identity.l5d.io');
    await refused(() => agent({ token }), { grpc: status.UNAUTHENTICATED, code: 'ERR_TOKEN_INVALID' });
  });

  it('refuses a garbage token: UNAUTHENTICATED', async () => {
    await refused(() => agent({ token: 'not-a-jwt' }), {
      grpc: status.UNAUTHENTICATED,
      code: 'ERR_TOKEN_INVALID',
    });
  });

  it('refuses a CSR naming another identity: INVALID_ARGUMENT', async () => {
    const csr = await csrWith('istio-agent', spiffe('default', 'db'), 'p256');
    await refused(() => agent({ csr }), { grpc: status.INVALID_ARGUMENT, code: 'ERR_CSR_IDENTITY' });
  });

  const extraNames = [
    { type: 'dns', value: 'web.default.svc' },
    { type: 'ip', value: '10.0.0.7' },
    { type: 'email', value: 'web@example.com' },
    { type: 'url', value: spiffe('default', 'db') },
  ] as const;
  for (const extra of extraNames) {
    it(`refuses a CSR with a second name (${extra.type}) besides the URI: INVALID_ARGUMENT`, async () => {
      const csr = await istioCsr({ style: 'istio-agent', spiffeId: WEB, key: 'p256', extraSans: [extra] });
      await refused(() => agent({ csr }), { grpc: status.INVALID_ARGUMENT, code: 'ERR_CSR_IDENTITY' });
    });
  }

  it('refuses a CSR with a CN: INVALID_ARGUMENT', async () => {
    const csr = await istioCsr({
      style: 'istio-agent',
      spiffeId: WEB,
      key: 'p256',
      subject: [{ '2.5.4.3': ['web'] }],
    });
    await refused(() => agent({ csr }), { grpc: status.INVALID_ARGUMENT, code: 'ERR_CSR_IDENTITY' });
  });

  it('refuses an RSA-1024 key: INVALID_ARGUMENT', async () => {
    const csr = await csrWith('istio-agent', WEB, 'rsa1024');
    await refused(() => agent({ csr }), { grpc: status.INVALID_ARGUMENT, code: 'ERR_CSR_WEAK_KEY' });
  });

  it('refuses a TTL above --istio-max-ttl (24h): INVALID_ARGUMENT', async () => {
    await refused(() => agent({ validitySeconds: 86_401 }), {
      grpc: status.INVALID_ARGUMENT,
      code: 'ERR_TTL_TOO_LONG',
    });
  });

  it('refuses impersonation by an account not in --istio-trusted-node-accounts: UNAUTHENTICATED', async () => {
    // ztunnel's call (ImpersonatedIdentity = web) made with the token of default/db, not a node account
    const token = await mint('default', 'db');
    const csr = await csrWith('ztunnel', WEB, 'p256');
    await refused(
      () => istioCreateCertificate({ ...transport(), style: 'ztunnel', spiffeId: WEB, token, csr }),
      { grpc: status.UNAUTHENTICATED, code: 'ERR_IMPERSONATION_DENIED' },
    );
  });

  /** ztunnel's call for `target`'s certificate, made with the token of its own pod. */
  async function ztunnelFor(target: string): Promise<IstioCertificate> {
    const token = await mint('istio-system', 'ztunnel', 'istio-ca', {
      name: ZTUNNEL_POD.name,
      uid: ZTUNNEL_UID,
    });
    const csr = await csrWith('ztunnel', target, 'p256');
    return istioCreateCertificate({ ...transport(), style: 'ztunnel', spiffeId: target, token, csr });
  }

  it('gives ztunnel (a trusted node account) the certificate of a pod on its node (ImpersonatedIdentity)', async () => {
    const got = await ztunnelFor(WEB);
    answered++;
    assertIstioLeaf(got, WEB);
    // the node check read ztunnel's pod, then the pods of web's namespace on its node
    assert.ok(
      podApi.requests.some((r) => r.startsWith(`/api/v1/namespaces/istio-system/pods/${ZTUNNEL_POD.name}`)),
    );
    assert.ok(podApi.requests.some((r) => r.includes('fieldSelector=spec.nodeName%3Dnode-a')));
  });

  it('refuses ztunnel a service account with no pod on its node: UNAUTHENTICATED', async () => {
    await refused(() => ztunnelFor(spiffe('default', 'db')), {
      grpc: status.UNAUTHENTICATED,
      code: 'ERR_IMPERSONATION_DENIED',
    });
  });

  it('refuses a clusterid of another cluster: UNAUTHENTICATED', async () => {
    await refused(() => agent({ clusterId: 'west' }), {
      grpc: status.UNAUTHENTICATED,
      code: 'ERR_CLUSTER_UNKNOWN',
    });
  });

  /** istio-agent's headers and request for WEB's P-256 CSR, with `change` applied. */
  async function rawAgent(change: (r: ReturnType<typeof istioRequest>) => void): Promise<unknown> {
    const csr = await csrWith('istio-agent', WEB, 'p256');
    const r = istioRequest(
      { ...transport(), style: 'istio-agent', spiffeId: WEB, token: await mint('default', 'web') },
      csr.csrPem,
    );
    change(r);
    return rawCreateCertificate(transport(), r.headers, r.request);
  }

  it('refuses a CSR that is not PEM PKCS#10: INVALID_ARGUMENT', async () => {
    await refused(
      () =>
        rawAgent((r) => {
          r.request.csr = '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n';
        }),
      { grpc: status.INVALID_ARGUMENT, code: 'ERR_DER_MALFORMED' },
    );
  });

  it('refuses a metadata value that is not a string: INVALID_ARGUMENT', async () => {
    await refused(
      () =>
        rawAgent((r) => {
          r.request.metadata = {
            fields: { ImpersonatedIdentity: { numberValue: 1 } as unknown as { stringValue: string } },
          };
        }),
      { grpc: status.INVALID_ARGUMENT, code: 'ERR_INVALID_REQUEST' },
    );
  });

  it('refuses a request above the message size limit: RESOURCE_EXHAUSTED', async () => {
    await refused(
      () =>
        rawAgent((r) => {
          r.request.csr = 'A'.repeat(100 * 1024);
        }),
      { grpc: status.RESOURCE_EXHAUSTED, code: 'ERR_INVALID_REQUEST', trailer: false },
    );
  });

  it("has a proto wire-compatible with the client's copy of istio/api's ca.proto", () => {
    assert.deepEqual(compareIstioCaProtos(ISTIO_CA_PROTO, 'issuer/grpc/istio-ca.proto'), []);
  });

  it('counted and recorded as issued exactly the calls answered (the Istio ones and one Linkerd)', async () => {
    const counts = await requestCounts(adminUrl);
    assert.equal(counts.get('CreateCertificate|OK'), answered);
    assert.equal(counts.get('Certify|OK'), 1);
    await settledIssuance();
    assert.equal(await certificatesIssued(adminUrl), answered + 1);
  });

  it('never wrote a token it was sent, and stops cleanly on SIGTERM (exit 0)', async () => {
    const output = serve.stdout() + serve.stderr();
    for (const token of tokens) assert.ok(!output.includes(token), 'a token in the output');
    // the signatures alone (a JWT's last part) must not appear either
    for (const token of tokens) {
      const sig = token.split('.')[2];
      if (sig !== undefined) assert.ok(!output.includes(sig));
    }
    assert.equal(await serve.stop('SIGTERM'), 0);
    assert.match(serve.stderr(), /"event":"stopped"/);
  });
});

function akiOf(cert: X509Certificate): string | undefined {
  return extensionBlock(opensslText(cert.raw), 'X509v3 Authority Key Identifier')?.value;
}

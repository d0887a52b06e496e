import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { testCert } from '../tls-cert.js';
import {
  ISTIO_CA_METHOD,
  IstioAnswerError,
  istioCreateCertificate,
  istioCsr,
  type IstioCsr,
} from './index.js';
import { startStandInCa, type StandInCa } from './stand-in.js';
import { syntheticCa, syntheticLeaf, type SyntheticCa } from './synthetic-chain.js';

const ID = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.e30.sig';

describe('the Istio test client on the wire (against a recording stand-in)', () => {
  const server = testCert('server');
  let ca: StandInCa;
  let root: SyntheticCa;
  let inter: SyntheticCa;
  before(async () => {
    ca = await startStandInCa(server);
    root = await syntheticCa('root');
    inter = await syntheticCa('intermediate', root);
  });
  after(() => ca.close());

  async function answerFor(csr: IstioCsr, uri = ID): Promise<void> {
    ca.answer = { chain: [await syntheticLeaf(inter, csr.publicKey, uri), inter.pem, root.pem] };
  }
  const transport = (): { addr: string; rootPem: string; serverName: string } => ({
    addr: ca.addr,
    rootPem: server.certPem,
    serverName: 'localhost',
  });

  it('istio-agent: TLS with ALPN h2 and SNI, Bearer token, clusterid (empty), CertSigner "" and a 24 h TTL', async () => {
    const csr = await istioCsr({ style: 'istio-agent', spiffeId: ID });
    await answerFor(csr);
    const got = await istioCreateCertificate({
      ...transport(),
      style: 'istio-agent',
      spiffeId: ID,
      token: TOKEN,
      csr,
    });
    assert.equal(got.chain.length, 3);
    const seen = ca.calls.at(-1);
    assert.ok(seen);
    assert.equal(seen.alpn, 'h2');
    assert.equal(seen.sni, 'localhost');
    assert.match(String(seen.tlsVersion), /^TLSv1\.[23]$/);
    assert.equal(seen.path, ISTIO_CA_METHOD);
    assert.equal(seen.headers['content-type'], 'application/grpc');
    assert.equal(seen.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(seen.headers.clusterid, '');
    assert.equal(seen.request.csr, csr.csrPem);
    assert.equal(seen.request.validity_duration, '86400');
    assert.deepEqual(seen.request.metadata, {
      fields: { CertSigner: { kind: 'stringValue', stringValue: '' } },
    });
  });

  it('istio-agent: no authorization header when the token file is empty; CLUSTER_ID and CERT_SIGNER when set', async () => {
    const csr = await istioCsr({ style: 'istio-agent', spiffeId: ID, key: 'p256' });
    await answerFor(csr);
    await istioCreateCertificate({
      ...transport(),
      style: 'istio-agent',
      spiffeId: ID,
      token: '',
      clusterId: 'east',
      certSigner: 'istio-system',
      validitySeconds: 3600,
      csr,
    });
    const seen = ca.calls.at(-1);
    assert.ok(seen);
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers.clusterid, 'east');
    assert.equal(seen.request.validity_duration, '3600');
    assert.equal(seen.request.metadata?.fields.CertSigner?.stringValue, 'istio-system');
  });

  it('ztunnel: ImpersonatedIdentity = the requested ID, Bearer token, no clusterid header when it is empty', async () => {
    const csr = await istioCsr({ style: 'ztunnel', spiffeId: ID });
    await answerFor(csr);
    const got = await istioCreateCertificate({
      ...transport(),
      style: 'ztunnel',
      spiffeId: ID,
      token: TOKEN,
      csr,
    });
    assert.deepEqual(got.uris, [ID]);
    const seen = ca.calls.at(-1);
    assert.ok(seen);
    assert.equal(seen.alpn, 'h2');
    assert.equal(seen.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(Object.hasOwn(seen.headers, 'clusterid'), false);
    assert.deepEqual(seen.request.metadata, {
      fields: { ImpersonatedIdentity: { kind: 'stringValue', stringValue: ID } },
    });
    // without impersonation ztunnel sends no metadata at all
    await istioCreateCertificate({
      ...transport(),
      style: 'ztunnel',
      spiffeId: ID,
      token: TOKEN,
      csr,
      impersonate: false,
    });
    assert.equal(ca.calls.at(-1)?.request.metadata, undefined);
  });

  it('ztunnel: refuses an empty token file before calling, and an answer for another identity', async () => {
    const before = ca.calls.length;
    await assert.rejects(
      istioCreateCertificate({ ...transport(), style: 'ztunnel', spiffeId: ID, token: '' }),
    );
    assert.equal(ca.calls.length, before);
    const csr = await istioCsr({ style: 'ztunnel', spiffeId: ID });
    await answerFor(csr, 'spiffe://cluster.local/ns/bookinfo/sa/ratings');
    await assert.rejects(
      istioCreateCertificate({ ...transport(), style: 'ztunnel', spiffeId: ID, token: TOKEN, csr }),
      (err) => err instanceof IstioAnswerError && err.problem === 'IDENTITY_MISMATCH',
    );
  });

  it("passes the server's gRPC status through (code only)", async () => {
    ca.answer = { status: status.UNAUTHENTICATED };
    await assert.rejects(
      istioCreateCertificate({
        ...transport(),
        style: 'istio-agent',
        spiffeId: ID,
        token: TOKEN,
        key: 'p256',
      }),
      (err: { code?: number }) => err.code === status.UNAUTHENTICATED,
    );
  });

  it('verifies the server: another root or a name the certificate does not carry fails the call (UNAVAILABLE)', async () => {
    const csr = await istioCsr({ style: 'ztunnel', spiffeId: ID });
    await answerFor(csr);
    const before = ca.calls.length;
    const base = { style: 'ztunnel' as const, spiffeId: ID, token: TOKEN, csr, timeoutMs: 5000 };
    const other = testCert('client', 'not-the-ca');
    await assert.rejects(
      istioCreateCertificate({ ...transport(), ...base, rootPem: other.certPem }),
      (err: { code?: number }) => err.code === status.UNAVAILABLE,
    );
    await assert.rejects(
      istioCreateCertificate({ ...transport(), ...base, serverName: 'istiod.istio-system.svc' }),
      (err: { code?: number }) => err.code === status.UNAVAILABLE,
    );
    assert.equal(ca.calls.length, before);
  });
});

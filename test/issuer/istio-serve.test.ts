import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { parseCertificate, parseCertificatesPem, systemClock } from '../../ca/index.js';
import { createIssuerLogger, startIssuer } from '../../issuer/index.js';
import { protoPath } from '../../issuer/grpc/server.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { createIdentityClient, testConfig, writeIssuerDir } from '../support/issuer.js';
import { istioCsr } from '../support/istio-csr.js';
import { csrKey, makeCsr, testPki } from '../support/pki.js';
import { defer } from '../support/cleanup.js';
import { testDir } from '../support/temp-dir.js';
import { testCert } from '../support/tls-cert.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

type CreateClient = grpc.Client & {
  CreateCertificate(
    req: Record<string, unknown>,
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null, res?: { cert_chain: string[] }) => void,
  ): grpc.ClientUnaryCall;
};

describe('lanyard serve --istio-listen (startIssuer)', () => {
  it('serves CreateCertificate over TLS with h2 on its own listener, from the issuer of Certify', async (t) => {
    const pki = await testPki({ now: systemClock.now() });
    const dir = testDir(t, 'lanyard-istio-serve-');
    writeIssuerDir(dir, pki);
    const serving = testCert('server', 'istio-serving');
    const tls = { certPath: join(dir, 'serving.crt'), keyPath: join(dir, 'serving.key') };
    writeFileSync(tls.keyPath, serving.keyPem, { mode: 0o600 });
    writeFileSync(tls.certPath, serving.certPem);
    const istio = {
      listen: { host: '127.0.0.1', port: 0 },
      tokenAudience: 'istio-ca',
      trustedNodeAccounts: [],
      maxTtlMs: 24 * 3600_000,
    };
    const config = { ...testConfig(dir), tls, istio };
    const sink = new Writable({
      write: (_c, _e, cb) => {
        cb();
      },
    });
    const issuer = await startIssuer(config, {
      logger: createIssuerLogger(config, sink),
      authenticator: scriptedAuthenticator(),
      istioAuthenticator: scriptedAuthenticator(),
    });
    defer(t, () => issuer.shutdown(500));
    const def = protoLoader.loadSync(protoPath('istio-ca.proto'), {
      keepCase: true,
      longs: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
    };
    assert.ok(issuer.istioAddress);
    assert.notEqual(issuer.istioAddress.port, issuer.grpcAddress.port);
    const client = new pkg.istio.v1.auth.IstioCertificateService(
      `localhost:${issuer.istioAddress.port}`,
      grpc.credentials.createSsl(Buffer.from(serving.certPem)),
    ) as unknown as CreateClient;
    defer(t, () => {
      client.close();
    });
    const csr = (
      await istioCsr({ key: csrKey('p256'), uris: ['spiffe://cluster.local/ns/default/sa/web'] })
    ).toString();
    const md = new grpc.Metadata();
    md.set('authorization', 'Bearer sa:default:web');
    // startIssuer reads the serving pair before it binds: the first call is answered
    const chain = await new Promise<string[] | undefined>((resolve, reject) => {
      client.CreateCertificate({ csr }, md, (err, res) => {
        if (err) reject(err);
        else resolve(res?.cert_chain);
      });
    });
    assert.ok(chain, 'no answer over TLS');
    assert.equal(chain.length, 3);
    const leaf = parseCertificatesPem(chain[0] as string, 'leaf')[0];
    const issuerCert = pki.issuers.east?.cert;
    assert.ok(leaf && issuerCert);
    assert.ok(leaf.issuerDer.equals(issuerCert.subjectDer), 'the leaf comes from the issuer Certify uses');
    // a Linkerd Certify on the other port of the same process: a leaf of the same issuer
    const linkerd = createIdentityClient(
      `localhost:${issuer.grpcAddress.port}`,
      grpc.credentials.createSsl(Buffer.from(serving.certPem)),
    );
    defer(t, () => {
      linkerd.close();
    });
    const res = await linkerd.certify({
      identity: ID,
      token: Buffer.from('sa:default:web'),
      certificate_signing_request: (await makeCsr({ dns: [ID] })).der,
    });
    const linkerdLeaf = parseCertificate(res.leaf_certificate);
    assert.ok(linkerdLeaf.issuerDer.equals(leaf.issuerDer));
    assert.ok(linkerdLeaf.authorityKeyId?.equals(leaf.authorityKeyId ?? Buffer.alloc(0)));
  });
});

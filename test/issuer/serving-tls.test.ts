import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { systemClock } from '../../ca/index.js';
import { createIssuerLogger } from '../../issuer/logger.js';
import { startIssuer } from '../../issuer/main.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { createIdentityClient, testConfig, writeIssuerDir } from '../support/issuer.js';
import { opensslVerify, tempDir } from '../support/openssl.js';
import { makeCsr, testPki } from '../support/pki.js';
import { testCert, type TestCert } from '../support/tls-cert.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

/** The CN of the certificate a new TLS connection to 127.0.0.1:`port` is served (undefined: no handshake). */
function servedCommonName(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect(
      { host: '127.0.0.1', port, servername: 'localhost', ALPNProtocols: ['h2'], rejectUnauthorized: false },
      () => {
        const cn = s.getPeerCertificate().subject.CN;
        s.destroy();
        resolve(typeof cn === 'string' ? cn : undefined);
      },
    );
    s.on('error', () => {
      resolve(undefined);
    });
  });
}

/** Polls new connections for up to 10 s until one is served the certificate named `cn`; the last CN seen. */
async function servedWithin(port: number, cn: string): Promise<string | undefined> {
  let served: string | undefined;
  for (let i = 0; i < 100 && served !== cn; i++) {
    served = await servedCommonName(port);
    if (served !== cn) await new Promise((r) => setTimeout(r, 100));
  }
  return served;
}

describe('serving TLS (--tls-cert, --tls-key)', () => {
  it('serves a replaced certificate and key to new connections without a restart', async () => {
    const pki = await testPki({ now: systemClock.now() });
    const { dir, cleanup } = tempDir('lanyard-serving-tls-');
    writeIssuerDir(dir, pki);
    const tls = { certPath: join(dir, 'serving.crt'), keyPath: join(dir, 'serving.key') };
    // what the kubelet does with a renewed Secret: new files swapped in by rename
    const install = (c: TestCert): void => {
      writeFileSync(`${tls.keyPath}.new`, c.keyPem, { mode: 0o600 });
      writeFileSync(`${tls.certPath}.new`, c.certPem);
      renameSync(`${tls.keyPath}.new`, tls.keyPath);
      renameSync(`${tls.certPath}.new`, tls.certPath);
    };
    install(testCert('server', 'first-serving'));
    const config = { ...testConfig(dir, { pollIntervalMs: 200 }), tls };
    const sink = new Writable({
      write: (_c, _e, cb) => {
        cb();
      },
    });
    const issuer = await startIssuer(config, {
      logger: createIssuerLogger(config, sink),
      authenticator: scriptedAuthenticator(),
    });
    try {
      const port = issuer.grpcAddress.port;
      // the files are read asynchronously after start: handshakes fail for the first moments
      assert.equal(await servedWithin(port, 'first-serving'), 'first-serving');
      const second = testCert('server', 'second-serving');
      install(second);
      assert.equal(
        await servedWithin(port, 'second-serving'),
        'second-serving',
        'a new connection is served the new certificate',
      );
      // and a gRPC client that trusts only the new certificate gets a leaf over it
      const client = createIdentityClient(
        `localhost:${port}`,
        grpc.credentials.createSsl(Buffer.from(second.certPem)),
      );
      try {
        const csr = (await makeCsr({ dns: [ID] })).der;
        const res = await client.certify({
          identity: ID,
          token: Buffer.from('sa:default:web'),
          certificate_signing_request: csr,
        });
        const v = opensslVerify({
          leaf: res.leaf_certificate,
          intermediates: res.intermediate_certificates,
          anchors: [pki.anchor.cert.der],
          purpose: 'sslclient',
        });
        assert.ok(v.ok, v.stderr);
      } finally {
        client.close();
      }
    } finally {
      await issuer.shutdown(1000);
      cleanup();
    }
  });
});

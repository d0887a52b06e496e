import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { systemClock } from '../../ca/index.js';
import { createSigningKeyDir } from '../../bin/token/index.js';
import { createIssuerLogger } from '../../issuer/logger.js';
import { startIssuer } from '../../issuer/main.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { lanyard, startLanyard } from '../support/cli.js';
import { runLanyard } from '../support/cli-inproc.js';
import { DAY, FakeClock } from '../support/clock.js';
import { createIdentityClient, testConfig, writeIssuerDir } from '../support/issuer.js';
import { opensslVerify } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { makeCsr, testPki } from '../support/pki.js';
import { testCert, type TestCert } from '../support/tls-cert.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const codeIn = (s: string): string | undefined => /\((ERR_[A-Z_]+)\)\s*$/m.exec(s)?.[1];
const quiet = (): Writable =>
  new Writable({
    write: (_c, _e, cb) => {
      cb();
    },
  });

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

describe('serving TLS at start', () => {
  /** `lanyard serve` flags for an issuer directory and a serving pair (ports picked by the system) */
  const serveArgs = (dir: string, cert: string, key: string, workers = '1', jwks = '/dev/null'): string[] => [
    'serve',
    '--issuer-dir',
    dir,
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    '--jwks-file',
    jwks,
    '--token-issuer',
    'test',
    '--tls-cert',
    cert,
    '--tls-key',
    key,
    '--workers',
    workers,
  ];

  it(
    'refuses an unusable --tls-cert/--tls-key pair before binding: exit 1 with the code of the problem',
    { timeout: 60_000 },
    async () => {
      const { dir, cleanup } = tempDir('lanyard-serving-tls-bad-');
      try {
        const good = testCert('server', 'bad-pairs');
        const other = testCert('server', 'bad-pairs-other');
        const file = (name: string, text: string): string => {
          writeFileSync(join(dir, name), text, { mode: 0o600 });
          return join(dir, name);
        };
        const cert = file('serving.crt', good.certPem);
        const key = file('serving.key', good.keyPem);
        const now = systemClock.now();
        const cases: { name: string; cert: string; key: string; clock?: FakeClock; code: string }[] = [
          { name: 'missing certificate', cert: join(dir, 'none.crt'), key, code: 'ERR_FILE_NOT_FOUND' },
          { name: 'missing key', cert, key: join(dir, 'none.key'), code: 'ERR_FILE_NOT_FOUND' },
          {
            name: 'certificate not PEM',
            cert: file('junk.crt', 'not a certificate\n'),
            key,
            code: 'ERR_PEM_MALFORMED',
          },
          {
            name: 'key file holding a certificate',
            cert,
            key: file('cert-as.key', good.certPem),
            code: 'ERR_FILE_INVALID',
          },
          {
            name: 'a private key where the certificate belongs',
            cert: file('key-as.crt', good.keyPem),
            key,
            code: 'ERR_PEM_UNEXPECTED_TYPE',
          },
          {
            name: 'key of another certificate',
            cert,
            key: file('other.key', other.keyPem),
            code: 'ERR_KEY_MISMATCH',
          },
          {
            name: 'expired certificate',
            cert,
            key,
            clock: new FakeClock(now.getTime() + 2 * DAY),
            code: 'ERR_CERT_EXPIRED',
          },
          {
            name: 'certificate not yet valid',
            cert,
            key,
            clock: new FakeClock(now.getTime() - DAY),
            code: 'ERR_CERT_NOT_YET_VALID',
          },
        ];
        for (const c of cases) {
          const r = await runLanyard(
            serveArgs(dir, c.cert, c.key),
            c.clock !== undefined ? { clock: c.clock } : {},
          );
          assert.equal(r.code, 1, `${c.name}: exit code (${r.err})`);
          assert.equal(codeIn(r.err), c.code, `${c.name}: ${r.err}`);
        }
      } finally {
        cleanup();
      }
    },
  );

  it(
    'with several workers reports a bad pair once, from the primary, and exits 1',
    { timeout: 60_000 },
    () => {
      const { dir, cleanup } = tempDir('lanyard-serving-tls-bad-');
      try {
        const good = testCert('server', 'bad-pairs');
        const other = testCert('server', 'bad-pairs-other');
        writeFileSync(join(dir, 'serving.crt'), good.certPem);
        writeFileSync(join(dir, 'other.key'), other.keyPem, { mode: 0o600 });
        const r = lanyard(serveArgs(dir, join(dir, 'serving.crt'), join(dir, 'other.key'), '2'));
        assert.equal(r.code, 1, r.stderr);
        const errors = r.stderr.split('\n').filter((l) => l.startsWith('lanyard:'));
        assert.equal(errors.length, 1, r.stderr);
        assert.equal(codeIn(errors[0] as string), 'ERR_KEY_MISMATCH', r.stderr);
      } finally {
        cleanup();
      }
    },
  );

  it('completes a TLS handshake on the first connection made right after startIssuer returns', async () => {
    const pki = await testPki({ now: systemClock.now() });
    const { dir, cleanup } = tempDir('lanyard-serving-tls-race-');
    try {
      writeIssuerDir(dir, pki);
      const c = testCert('server', 'at-start');
      writeFileSync(join(dir, 'serving.crt'), c.certPem);
      writeFileSync(join(dir, 'serving.key'), c.keyPem, { mode: 0o600 });
      const config = {
        ...testConfig(dir),
        tls: { certPath: join(dir, 'serving.crt'), keyPath: join(dir, 'serving.key') },
      };
      // each start is a new grpc-js file watcher: the race between its first read and the first client
      for (let i = 0; i < 5; i++) {
        const issuer = await startIssuer(config, {
          logger: createIssuerLogger(config, quiet()),
          authenticator: scriptedAuthenticator(),
        });
        try {
          assert.equal(await servedCommonName(issuer.grpcAddress.port), 'at-start', `start ${i + 1}`);
        } finally {
          await issuer.shutdown(1000);
        }
      }
    } finally {
      cleanup();
    }
  });

  it('lanyard serve prints its address only once a TLS handshake there succeeds (one process and workers)', async () => {
    const pki = await testPki({ now: systemClock.now() });
    const { dir, cleanup } = tempDir('lanyard-serving-tls-cli-');
    try {
      writeIssuerDir(dir, pki);
      const c = testCert('server', 'cli-start');
      writeFileSync(join(dir, 'serving.crt'), c.certPem);
      writeFileSync(join(dir, 'serving.key'), c.keyPem, { mode: 0o600 });
      const jwks = (await createSigningKeyDir(join(dir, 'sa'), { clock: systemClock })).jwksPath;
      for (const workers of ['1', '2']) {
        const serve = startLanyard(
          serveArgs(dir, join(dir, 'serving.crt'), join(dir, 'serving.key'), workers, jwks),
        );
        try {
          const m = await serve.waitFor(/gRPC on 127\.0\.0\.1:(\d+)/);
          assert.equal(await servedCommonName(Number(m[1])), 'cli-start', `--workers ${workers}`);
          assert.equal(await serve.stop('SIGTERM'), 0);
        } finally {
          await serve.stop('SIGKILL');
        }
      }
    } finally {
      cleanup();
    }
  });
});

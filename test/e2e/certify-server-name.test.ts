// `lanyard certify --server-name NAME --tls-ca FILE` reaches a TLS-serving `lanyard serve` as a Linkerd
// proxy does: connecting to an address, sending NAME as SNI and requiring it as a DNS SAN of the
// serving certificate, which must chain to FILE.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodePemOf } from '../../ca/pem.js';
import { lanyard, prepareIssuerFiles, startServe, type CliResult, type LongRunning } from '../support/cli.js';
import { IDENTITY_SVC_NAME, opensslServingCert } from '../support/openssl-ca.js';
import { opensslVerify } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

/**
 * The codes of a failed `lanyard certify --once`: its own (the last "(ERR_…)") and the cause it
 * reports first ("lanyard: <cause>: …", an ERR_ code or a gRPC status name).
 */
function codesOf(r: CliResult): { code?: string; cause?: string } {
  const code = /\((ERR_[A-Z_]+)\)\s*$/m.exec(r.stderr)?.[1];
  const cause = /^lanyard: ([A-Z_]+): /m.exec(r.stderr)?.[1];
  return { ...(code !== undefined ? { code } : {}), ...(cause !== undefined ? { cause } : {}) };
}

function certify(dir: string, out: string, extra: readonly string[], server = '127.0.0.1:1'): CliResult {
  return lanyard([
    'certify',
    '--server',
    server,
    '--identity',
    ID,
    '--token-file',
    join(dir, 'web.token'),
    '--trust-anchors',
    join(dir, 'anchor', 'anchor.crt'),
    '--out',
    join(dir, out),
    '--once',
    ...extra,
  ]);
}

describe('lanyard certify --server-name against lanyard serve --tls-cert (a certificate for the identity service)', () => {
  let dir: string;
  let cleanup: () => void;
  let serve: LongRunning;
  let server: string;

  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-certify-server-name-'));
    prepareIssuerFiles(dir, ['web']);
    const serving = opensslServingCert(
      {
        certPem: readFileSync(join(dir, 'east', 'tls.crt'), 'utf8'),
        keyPem: readFileSync(join(dir, 'east', 'tls.key'), 'utf8'),
      },
      dir,
    );
    serve = startServe(dir, ['--tls-cert', serving.certPath, '--tls-key', serving.keyPath, '--workers', '1']);
    server = `127.0.0.1:${(await serve.waitFor(/gRPC on [^:]+:(\d+)/))[1] as string}`;
  });

  after(async () => {
    await serve.stop();
    cleanup();
  });

  it('with the identity service name and the anchor as --tls-ca: exit 0, a leaf openssl verifies', () => {
    const r = certify(
      dir,
      'ok',
      ['--server-name', IDENTITY_SVC_NAME, '--tls-ca', join(dir, 'anchor', 'anchor.crt')],
      server,
    );
    assert.equal(r.code, 0, r.stderr);
    const chain = decodePemOf(readFileSync(join(dir, 'ok', 'tls.crt'), 'utf8'), 'CERTIFICATE', 'tls.crt');
    const anchors = decodePemOf(readFileSync(join(dir, 'ok', 'ca.crt'), 'utf8'), 'CERTIFICATE', 'ca.crt');
    for (const purpose of ['sslclient', 'sslserver'] as const) {
      const v = opensslVerify({ leaf: chain[0] as Buffer, intermediates: chain.slice(1), anchors, purpose });
      assert.ok(v.ok, `${purpose}: ${v.stderr}`);
    }
  });

  it('with a name the serving certificate does not carry: exit 1, ERR_SERVER_NAME_MISMATCH, no certificate', () => {
    const wrong = 'linkerd-identity.other.serviceaccount.identity.other.cluster.local';
    const r = certify(
      dir,
      'wrong-name',
      ['--server-name', wrong, '--tls-ca', join(dir, 'anchor', 'anchor.crt')],
      server,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(codesOf(r), { code: 'ERR_CERTIFY_FAILED', cause: 'ERR_SERVER_NAME_MISMATCH' });
    assert.equal(existsSync(join(dir, 'wrong-name', 'tls.crt')), false);
  });

  it('without --server-name the host of --server is the name required: 127.0.0.1 is not in it, exit 1', () => {
    const r = certify(dir, 'no-name', ['--tls-ca', join(dir, 'anchor', 'anchor.crt')], server);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(codesOf(r), { code: 'ERR_CERTIFY_FAILED', cause: 'ERR_SERVER_NAME_MISMATCH' });
  });

  it('with a --tls-ca the serving certificate does not chain to: exit 1, not a name mismatch', () => {
    const other = lanyard(['anchor', 'create', '--out', join(dir, 'other-anchor')]);
    assert.equal(other.code, 0, other.stderr);
    const r = certify(
      dir,
      'other-ca',
      ['--server-name', IDENTITY_SVC_NAME, '--tls-ca', join(dir, 'other-anchor', 'anchor.crt')],
      server,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(codesOf(r), { code: 'ERR_CERTIFY_FAILED', cause: 'UNAVAILABLE' });
    assert.equal(existsSync(join(dir, 'other-ca', 'tls.crt')), false);
  });
});

describe('lanyard certify --server-name: usage', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => {
    ({ dir, cleanup } = tempDir('lanyard-certify-server-name-usage-'));
    prepareIssuerFiles(dir, ['web']);
  });
  after(() => {
    cleanup();
  });

  it('without --tls-ca: exit 2 (ERR_USAGE), before anything is made', () => {
    const r = certify(dir, 'no-ca', ['--server-name', IDENTITY_SVC_NAME]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(existsSync(join(dir, 'no-ca')), false);
  });

  it('a name that is not a DNS name: exit 2', () => {
    for (const bad of ['127.0.0.1', 'Linkerd-Identity.linkerd', 'not a name']) {
      const r = certify(dir, 'bad-name', [
        '--server-name',
        bad,
        '--tls-ca',
        join(dir, 'anchor', 'anchor.crt'),
      ]);
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    }
    assert.equal(existsSync(join(dir, 'bad-name')), false);
  });
});

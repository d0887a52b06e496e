import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lanyard, prepareIssuerFiles, startServe, type LongRunning } from '../support/cli.js';
import { opensslVerify } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { opensslMutualTls } from '../support/tls.js';
import { readFileSync } from 'node:fs';
import { decodePemOf } from '../../ca/pem.js';

const id = (sa: string): string => `${sa}.default.serviceaccount.identity.linkerd.cluster.local`;

describe('lanyard serve + lanyard certify --once + openssl mutual TLS', () => {
  let dir: string;
  let cleanup: () => void;
  let serve: LongRunning;
  let grpcPort: string;

  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-e2e-'));
    prepareIssuerFiles(dir, ['web', 'db']);
    serve = startServe(dir);
    grpcPort = (await serve.waitFor(/gRPC on [^:]+:(\d+)/))[1] as string;
  });

  after(async () => {
    await serve.stop();
    cleanup();
  });

  it('writes tls.crt, tls.key (0600) and ca.crt that two workloads use for a verified mutual-TLS handshake', async () => {
    for (const sa of ['web', 'db']) {
      const r = lanyard([
        'certify',
        '--server',
        `127.0.0.1:${grpcPort}`,
        '--identity',
        id(sa),
        '--token-file',
        join(dir, `${sa}.token`),
        '--trust-anchors',
        join(dir, 'anchor', 'anchor.crt'),
        '--out',
        join(dir, sa),
        '--once',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const chain = decodePemOf(readFileSync(join(dir, sa, 'tls.crt'), 'utf8'), 'CERTIFICATE', 'tls.crt');
      const anchors = decodePemOf(readFileSync(join(dir, sa, 'ca.crt'), 'utf8'), 'CERTIFICATE', 'ca.crt');
      const v = opensslVerify({
        leaf: chain[0] as Buffer,
        intermediates: chain.slice(1),
        anchors,
        purpose: 'sslclient',
      });
      assert.ok(v.ok, v.stderr);
    }
    const party = (sa: string, peer: string) => ({
      cert: join(dir, sa, 'tls.crt'),
      key: join(dir, sa, 'tls.key'),
      ca: join(dir, sa, 'ca.crt'),
      expectPeer: id(peer),
    });
    const hs = await opensslMutualTls(party('web', 'db'), party('db', 'web'));
    assert.ok(hs.ok, `handshake failed:\nclient: ${hs.client}\nserver: ${hs.server}`);
    assert.match(hs.client, new RegExp(`Verified peername: ${id('web').replaceAll('.', '\\.')}`));
  });

  it('fails the handshake when the peer is not the expected identity', async () => {
    const party = (sa: string, peer: string) => ({
      cert: join(dir, sa, 'tls.crt'),
      key: join(dir, sa, 'tls.key'),
      ca: join(dir, sa, 'ca.crt'),
      expectPeer: id(peer),
    });
    const hs = await opensslMutualTls(party('web', 'db'), party('db', 'admin'));
    assert.equal(hs.ok, false);
  });

  it('exits 1 with the gRPC status when the token belongs to another service account', () => {
    const r = lanyard([
      'certify',
      '--server',
      `127.0.0.1:${grpcPort}`,
      '--identity',
      id('web'),
      '--token-file',
      join(dir, 'db.token'),
      '--trust-anchors',
      join(dir, 'anchor', 'anchor.crt'),
      '--out',
      join(dir, 'intruder'),
      '--once',
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.match(/PERMISSION_DENIED/g)?.length, 1, 'the status name once');
  });

  it('stops cleanly on SIGTERM', async () => {
    assert.equal(await serve.stop('SIGTERM'), 0);
  });
});

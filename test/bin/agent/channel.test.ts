// How the certify client's channel names the issuer: --server-name is the SNI, the :authority and
// the name the server certificate must carry (grpc-js: grpc.ssl_target_name_override and
// grpc.default_authority), checked here from the server's side of a real TLS connection.
import assert from 'node:assert/strict';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { LanyardError, systemClock } from '../../../ca/index.js';
import { checkServerName, createIssuerChannel } from '../../../bin/agent/channel.js';
import { testCert } from '../../support/tls-cert.js';
import { defer } from '../../support/cleanup.js';

const usage = (err: unknown): boolean => err instanceof LanyardError && err.code === 'ERR_USAGE';

/**
 * An HTTP/2 server over TLS (certificate for localhost and 127.0.0.1) that records the SNI and the
 * :authority of each call and answers it UNAVAILABLE.
 */
async function recordingServer(): Promise<{
  server: Http2SecureServer;
  port: number;
  seen: { sni: string | false; authority: string | undefined }[];
  handshakes: () => string[];
}> {
  const cert = testCert('server');
  const handshakes: string[] = [];
  const seen: { sni: string | false; authority: string | undefined }[] = [];
  const server = createSecureServer({
    cert: cert.certPem,
    key: cert.keyPem,
    allowHTTP1: false,
    // every ClientHello's SNI, whether or not the client goes on after seeing the certificate
    SNICallback: (name, cb) => {
      handshakes.push(name);
      cb(null);
    },
  });
  server.on('stream', (stream, headers) => {
    seen.push({
      sni: (stream.session?.socket as TLSSocket | undefined)?.servername ?? false,
      authority: headers[':authority'],
    });
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14' },
      { endStream: true },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen, handshakes: () => handshakes };
}

/** One unary call on the channel; resolves with the gRPC status name or the Lanyard code it failed with. */
async function oneCall(target: string, serverName?: string): Promise<string> {
  const channel = createIssuerChannel({
    tlsCa: Buffer.from(testCert('server').certPem),
    ...(serverName !== undefined ? { serverName } : {}),
  });
  const client = new grpc.Client(target, channel.credentials, channel.options);
  try {
    await channel.guard(
      () =>
        new Promise((resolve, reject) => {
          client.makeUnaryRequest(
            '/io.linkerd.proxy.identity.Identity/Certify',
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.alloc(0),
            { deadline: systemClock.now().getTime() + 5000 },
            (err, res) => {
              if (err !== null) reject(err);
              else resolve(res);
            },
          );
        }),
    );
    return 'OK';
  } catch (err) {
    if (err instanceof LanyardError) return err.code;
    const code = (err as { code?: number }).code;
    return code === undefined ? String(err) : (grpc.status[code] ?? String(code));
  } finally {
    client.close();
  }
}

describe('certify client channel: --server-name', () => {
  it('is a DNS name, and only with a CA to verify the server certificate against', () => {
    assert.equal(checkServerName('linkerd-identity.linkerd.svc', true), 'linkerd-identity.linkerd.svc');
    assert.throws(() => checkServerName('linkerd-identity.linkerd.svc', false), usage);
    for (const bad of ['', '127.0.0.1', '::1', 'Upper.Case', '*.linkerd.svc', 'a..b', 'a b', '-a.b', 'a.b.'])
      assert.throws(() => checkServerName(bad, true), usage, JSON.stringify(bad));
  });

  it('is sent as SNI and as :authority when connecting to an address, and checked in the certificate', async (t) => {
    const s = await recordingServer();
    defer(t, () => {
      s.server.close();
    });
    // the certificate names localhost: the call reaches the server (which answers UNAVAILABLE)
    assert.equal(await oneCall(`127.0.0.1:${s.port}`, 'localhost'), 'UNAVAILABLE');
    assert.deepEqual(s.seen, [{ sni: 'localhost', authority: 'localhost' }]);
    // a name it does not carry: refused in the handshake, no call reaches the server
    assert.equal(await oneCall(`127.0.0.1:${s.port}`, 'identity.example.org'), 'ERR_SERVER_NAME_MISMATCH');
    assert.equal(s.seen.length, 1);
    assert.ok(s.handshakes().includes('identity.example.org'), 'the wrong name was the SNI');
  });

  it('defaults to the host of the server address', async (t) => {
    const s = await recordingServer();
    defer(t, () => {
      s.server.close();
    });
    assert.equal(await oneCall(`localhost:${s.port}`), 'UNAVAILABLE');
    assert.deepEqual(s.seen, [{ sni: 'localhost', authority: `localhost:${s.port}` }]);
  });
});

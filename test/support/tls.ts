import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { IDENTITY_SVC_NAME } from './openssl-ca.js';
import { waitFor } from './wait.js';

export interface TlsParty {
  /** PEM file: leaf then intermediates (tls.crt) */
  readonly cert: string;
  readonly key: string;
  /** trust anchors (ca.crt) */
  readonly ca: string;
  /** the DNS identity the peer's certificate must carry */
  readonly expectPeer: string;
}

export interface HandshakeResult {
  readonly ok: boolean;
  readonly client: string;
  readonly server: string;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

/**
 * One TLS 1.3 mutual-TLS handshake between `openssl s_server -Verify 1 -verify_return_error` and
 * `openssl s_client -verify_return_error`, each side checking the other's DNS identity
 * (-verify_hostname). ok = both sides completed with verification OK.
 */
export async function opensslMutualTls(
  server: TlsParty,
  client: TlsParty,
  options: { host?: string; atSeconds?: number } = {},
): Promise<HandshakeResult> {
  const host = options.host ?? '127.0.0.1';
  // -attime: verify as of this moment (tests that move a fake clock through a rotation)
  const attime = options.atSeconds === undefined ? [] : ['-attime', String(options.atSeconds)];
  const port = await freePort(host);
  const srv = spawn(
    'openssl',
    [
      's_server',
      '-accept',
      `${host}:${port}`,
      '-naccept',
      '1',
      '-tls1_3',
      '-cert',
      server.cert,
      '-key',
      server.key,
      '-cert_chain',
      server.cert,
      '-CAfile',
      server.ca,
      '-Verify',
      '1',
      '-verify_return_error',
      '-verify_hostname',
      server.expectPeer,
      ...attime,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let srvOut = '';
  srv.stdout.on('data', (d: Buffer) => (srvOut += d.toString()));
  srv.stderr.on('data', (d: Buffer) => (srvOut += d.toString()));
  const srvExit = new Promise<number | null>((resolve) => srv.once('exit', resolve));
  const accepting = await waitFor(
    () => {
      if (srv.exitCode !== null) throw new Error('openssl s_server exited');
      return srvOut.includes('ACCEPT');
    },
    'openssl s_server to accept',
    { timeoutMs: 10_000, intervalMs: 10 },
  ).then(
    () => true,
    () => false,
  );
  if (!accepting) {
    srv.kill();
    return { ok: false, client: '', server: srvOut };
  }
  const cli = spawn(
    'openssl',
    [
      's_client',
      '-connect',
      `${host}:${port}`,
      '-tls1_3',
      '-brief',
      '-cert',
      client.cert,
      '-key',
      client.key,
      '-cert_chain',
      client.cert,
      '-CAfile',
      client.ca,
      '-verify_return_error',
      '-verify_hostname',
      client.expectPeer,
      ...attime,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let cliOut = '';
  cli.stdout.on('data', (d: Buffer) => (cliOut += d.toString()));
  cli.stderr.on('data', (d: Buffer) => (cliOut += d.toString()));
  // Send one line and close: s_server echoes it, proving application data flowed after the handshake.
  cli.stdin.end('lanyard-ping\n');
  const cliCode = await new Promise<number | null>((resolve) => {
    const t = setTimeout(() => cli.kill(), 10_000);
    cli.once('exit', (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  const killer = setTimeout(() => srv.kill(), 2000);
  await srvExit;
  clearTimeout(killer);
  const ok =
    cliCode === 0 &&
    /Verification: OK/.test(cliOut) &&
    srvOut.includes('lanyard-ping') &&
    !/error|alert/i.test(srvOut.replace(/verify error:num=0/g, ''));
  return { ok, client: cliOut, server: srvOut };
}

/**
 * Opens a TLS connection to 127.0.0.1:`port` (SNI: the identity service name, certificate not
 * checked), offering `alpn` (none when absent), sends `send` once the handshake is done, and
 * resolves how the server ended it.
 */
export function tlsThenBytes(
  port: number,
  options: { alpn?: string[]; send?: Buffer },
): Promise<'handshake_refused' | 'closed_by_server'> {
  return new Promise((resolve) => {
    const s = connectTls({
      host: '127.0.0.1',
      port,
      servername: IDENTITY_SVC_NAME,
      rejectUnauthorized: false,
      ...(options.alpn !== undefined ? { ALPNProtocols: options.alpn } : {}),
    });
    let handshook = false;
    s.on('secureConnect', () => {
      handshook = true;
      if (options.send !== undefined) s.write(options.send);
    });
    s.on('data', () => {
      // an HTTP/1.1 client would wait for an answer here; none comes
    });
    s.on('error', () => {
      // ended below
    });
    s.on('close', () => {
      resolve(handshook ? 'closed_by_server' : 'handshake_refused');
    });
  });
}

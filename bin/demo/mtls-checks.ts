// What the flat-network story checks between pods: their names, one handshake by pod-agent, an
// openssl s_server/s_client pair, and pod files that a peer must refuse.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFileKeyStore } from '../../ca/keys/index.js';
import { encodePem, parseCertificatesPem, systemClock, type CertificateInfo } from '../../ca/index.js';
import { loadIssuer, type Launcher } from './identity.js';
import { waitFor, WAIT_TIMEOUT_MS } from './process-io.js';
import type { Host, Topology } from './topology.js';

export const identity = (sa: string): string => `${sa}.default.serviceaccount.identity.linkerd.cluster.local`;
export const spiffe = (sa: string): string => `spiffe://cluster.local/ns/default/sa/${sa}`;

/** One handshake: `code` is pod-agent's error code when it failed (Node TLS/OpenSSL code or its own). */
export interface Outcome {
  readonly ok: boolean;
  readonly code?: string;
  readonly error?: string;
  /** why the serving pod refused the client, when it did: Node's verify error code (e.g. CERT_HAS_EXPIRED) */
  readonly serverCode?: string;
}

/** Files for a pod that should be refused: a leaf from `issuerDir` for `names`, currently valid or long expired. */
export async function forgedPodFiles(
  dir: string,
  issuerDir: string,
  names: { readonly dnsName: string; readonly uri: string },
  caFrom: string,
  kind: 'valid' | 'expired',
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const key = await createFileKeyStore().stage(join(dir, 'tls.key'), 'p256', { force: true });
  const now = systemClock.now().getTime();
  const [notBefore, notAfter] =
    kind === 'valid' ? [now - 60_000, now + 3_600_000] : [now - 7_200_000, now - 3_600_000];
  const { cert: issuerCert, template } = await loadIssuer(issuerDir);
  const leaf = template.sign({
    spki: key.signer.publicKeyDer,
    dnsName: names.dnsName,
    uri: names.uri,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
  });
  writeFileSync(
    join(dir, 'tls.crt'),
    encodePem('CERTIFICATE', leaf.der) + encodePem('CERTIFICATE', issuerCert.der),
  );
  await key.commit();
  writeFileSync(join(dir, 'ca.crt'), readFileSync(caFrom));
}

/** One handshake by pod-agent (`--mode once`) from `from` to `peer`, checking the peer's names. */
export function agentOnce(
  agent: Launcher,
  from: Host,
  dir: string,
  peer: string,
  peerIdentity: string,
  peerSpiffe: string,
): Outcome & { peer?: string } {
  const r = agent.topo.runOn(
    from,
    process.execPath,
    [
      ...agent.nodeArgs,
      agent.script,
      '--dir',
      dir,
      '--mode',
      'once',
      '--peer',
      peer,
      '--peer-identity',
      peerIdentity,
      '--peer-spiffe',
      peerSpiffe,
    ],
    // its handshake's own timeout, plus starting node (slow on a loaded host)
    { timeoutMs: WAIT_TIMEOUT_MS },
  );
  const line = r.stdout.split('\n').find((l) => l.includes('"handshake"'));
  if (line === undefined) return { ok: false, code: 'ERR_NO_RESULT', error: r.stderr.trim() || 'no result' };
  const o = JSON.parse(line) as { ok: boolean; code?: string; error?: string; peer?: string };
  return {
    ok: o.ok && r.code === 0,
    ...(o.code !== undefined ? { code: o.code } : {}),
    ...(o.error !== undefined ? { error: o.error } : {}),
    ...(o.peer !== undefined ? { peer: o.peer } : {}),
  };
}

/** TLS 1.3 with a pod's key, certificate (and chain) and trust bundle, from its directory. */
const podTlsArgs = (dir: string): string[] => [
  '-tls1_3',
  '-cert',
  join(dir, 'tls.crt'),
  '-key',
  join(dir, 'tls.key'),
  '-cert_chain',
  join(dir, 'tls.crt'),
  '-CAfile',
  join(dir, 'ca.crt'),
];

/** Refuse the handshake unless the peer's certificate verifies and names `expect`. */
const verifyArgs = (expect: string): string[] => ['-verify_return_error', '-verify_hostname', expect];

/**
 * openssl s_server (on `server.host`, requiring and verifying a client certificate for `server.expect`)
 * and openssl s_client (on `client.host`, verifying the server is `client.expect`), TLS 1.3.
 * Returns the certificate each side received (the client's as s_server prints it) and, on failure, the
 * X.509 verify error numbers each side reported (s_server "verify error:num=N", s_client "Verify return code: N").
 */
export async function opensslHandshake(
  topo: Topology,
  server: { host: Host; dir: string; expect: string },
  client: { host: Host; dir: string; expect: string },
): Promise<{
  ok: boolean;
  serverCert?: CertificateInfo;
  clientCert?: CertificateInfo;
  serverVerifyError?: number;
  clientVerifyCode?: number;
  output: string;
}> {
  const port = 4433 + Math.floor(Math.random() * 1000);
  const srv = topo.spawnOn(
    server.host,
    'openssl',
    [
      's_server',
      '-accept',
      `${server.host.address}:${port}`,
      '-naccept',
      '1',
      ...podTlsArgs(server.dir),
      '-Verify',
      '1',
      ...verifyArgs(server.expect),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  ); // s_server quits when its standard input closes: keep it open
  let srvOut = '';
  srv.stdout?.on('data', (d: Buffer) => (srvOut += d.toString()));
  srv.stderr?.on('data', (d: Buffer) => (srvOut += d.toString()));
  await waitFor(() => srvOut.includes('ACCEPT'), 'openssl s_server');
  const r = topo.runOn(
    client.host,
    'openssl',
    [
      's_client',
      '-connect',
      `${server.host.address}:${port}`,
      ...podTlsArgs(client.dir),
      ...verifyArgs(client.expect),
    ],
    { input: 'lanyard-ping\n', timeoutMs: WAIT_TIMEOUT_MS / 2 },
  );
  // s_server exits after one accepted connection; after a refused one it keeps waiting: stop it once
  // it has reported the verify error.
  await waitFor(
    () => srv.exitCode !== null || /verify error:num=\d+/.test(srvOut),
    's_server',
    WAIT_TIMEOUT_MS / 4,
  ).catch(() => undefined);
  if (srv.exitCode === null) srv.kill();
  const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;
  const pem = PEM.exec(r.stdout)?.[0];
  const serverCert = pem !== undefined ? parseCertificatesPem(pem, 'server certificate')[0] : undefined;
  const clientPem = PEM.exec(srvOut.slice(Math.max(0, srvOut.indexOf('Client certificate'))))?.[0];
  const clientCert =
    srvOut.includes('Client certificate') && clientPem !== undefined
      ? parseCertificatesPem(clientPem, 'client certificate')[0]
      : undefined;
  const clientVerifyCode = /Verify return code: (\d+)/.exec(r.stdout)?.[1];
  const serverVerifyError = /verify error:num=(\d+)/.exec(srvOut)?.[1];
  const ok = r.code === 0 && clientVerifyCode === '0' && srvOut.includes('lanyard-ping');
  return {
    ok,
    ...(serverCert !== undefined ? { serverCert } : {}),
    ...(clientCert !== undefined ? { clientCert } : {}),
    ...(serverVerifyError !== undefined ? { serverVerifyError: Number(serverVerifyError) } : {}),
    ...(clientVerifyCode !== undefined ? { clientVerifyCode: Number(clientVerifyCode) } : {}),
    output: r.stdout + r.stderr + srvOut,
  };
}

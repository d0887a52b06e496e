// A workload's mTLS side for the flat-network demo and test, run inside a pod's namespace:
// serves mutual TLS with the files the pod's identity client (pod-identity.ts) keeps fresh (reloaded
// when they change), and
// makes handshakes to a peer pod, checking the peer's DNS identity and SPIFFE ID. With --peers-file it
// makes, `rate` times a second, one handshake to every pod listed in that file (re-read on every round,
// so pods can join and leave the mesh while it runs). The file carries a generation; the first round
// that uses a new one says so ({"event":"roster", generation}) after every earlier round's handshakes
// have been reported, so that a pod can leave the mesh once no round still uses a list naming it.
// One JSON line per event;
// a failed handshake carries `code`: Node's TLS/OpenSSL error code, or ERR_PEER_IDENTITY_MISMATCH,
// ERR_HANDSHAKE_TIMEOUT, ERR_CLOSED_BEFORE_ECHO, ERR_POD_FILES (no matching key and certificate).
import { X509Certificate, createPublicKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { systemClock } from '../../ca/index.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    listen: { type: 'string' },
    peer: { type: 'string' },
    'peer-identity': { type: 'string' },
    'peer-spiffe': { type: 'string' },
    'client-identity': { type: 'string' },
    'client-spiffe': { type: 'string' },
    /** JSON { generation, peers: [{ name, addr, identity, spiffe }] }: mesh mode's peers, re-read every round */
    'peers-file': { type: 'string' },
    mode: { type: 'string', default: 'serve' },
    count: { type: 'string', default: '1' },
    rate: { type: 'string', default: '1' },
  },
});

const dir = values.dir ?? '.';
const emit = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

interface PodFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

/**
 * The pod's files, or undefined when they are caught mid-change: the identity client replaces key,
 * chain and anchors together, but a reader between two renames sees the key of one pair and the chain
 * of the other.
 */
function readFiles(): PodFiles | undefined {
  try {
    const f = {
      cert: readFileSync(join(dir, 'tls.crt')),
      key: readFileSync(join(dir, 'tls.key')),
      ca: readFileSync(join(dir, 'ca.crt')),
    };
    return createPublicKey(f.key).equals(new X509Certificate(f.cert).publicKey) ? f : undefined;
  } catch {
    return undefined;
  }
}

/** How long key and chain may disagree before the pod's files count as broken (generous: a loaded host). */
const FILES_SETTLE_MS = 10_000;
/** How long a handshake may take before it counts as failed (generous: a loaded host is slow, not broken). */
const HANDSHAKE_TIMEOUT_MS = 20_000;

/** readFiles, read again until key and chain match (a change takes a few milliseconds). */
async function files(): Promise<PodFiles> {
  const start = performance.now();
  for (;;) {
    const f = readFiles();
    if (f !== undefined) return f;
    if (performance.now() - start > FILES_SETTLE_MS) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw Object.assign(new Error(`no matching key and certificate in ${dir}`), { code: 'ERR_POD_FILES' });
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** The peer must carry exactly the expected DNS SAN and SPIFFE URI SAN. */
function identityProblem(
  cert: PeerCertificate,
  dns: string | undefined,
  spiffe: string | undefined,
): string | undefined {
  const san = (cert.subjectaltname ?? '').split(', ');
  if (dns !== undefined && !san.includes(`DNS:${dns}`))
    return `peer is not ${dns} (SAN ${cert.subjectaltname ?? 'none'})`;
  if (spiffe !== undefined && !san.includes(`URI:${spiffe}`))
    return `peer is not ${spiffe} (SAN ${cert.subjectaltname ?? 'none'})`;
  return undefined;
}

/** Error code for a peer whose certificate verifies but names another workload (our own check). */
const ERR_PEER_IDENTITY = 'ERR_PEER_IDENTITY_MISMATCH';

function codeOf(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : 'ERR_UNKNOWN';
}

async function serve(listen: string): Promise<void> {
  const { host, port } = hostPort(listen);
  // rejectUnauthorized is false so that the listener sees why a client certificate failed to verify
  // (Node would drop the connection without saying); every unauthorized client is refused here.
  const server = createServer(
    { ...(await files()), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
    (socket: TLSSocket) => {
      if (!socket.authorized) {
        const code = socket.authorizationError;
        emit({ event: 'refused', code: typeof code === 'string' ? code : String(code) });
        socket.destroy();
        return;
      }
      const problem = identityProblem(
        socket.getPeerCertificate(),
        values['client-identity'],
        values['client-spiffe'],
      );
      if (problem !== undefined) {
        emit({ event: 'refused', code: ERR_PEER_IDENTITY, reason: problem });
        socket.destroy();
        return;
      }
      socket.on('data', (d: Buffer) => {
        socket.write(d);
      });
      socket.on('error', () => undefined);
    },
  );
  server.on('tlsClientError', (err) => {
    emit({ event: 'tls-error', code: codeOf(err), reason: err.message });
  });
  // Reload the certificate, key and trust anchors whenever the identity client rewrites them.
  let last = '';
  setInterval(() => {
    try {
      const stamp = ['tls.crt', 'tls.key', 'ca.crt'].map((f) => statSync(join(dir, f)).mtimeMs).join(',');
      if (stamp !== last) {
        if (last !== '') {
          const f = readFiles();
          if (f === undefined) return; // mid-change: next tick
          server.setSecureContext({ ...f, minVersion: 'TLSv1.3' });
        }
        last = stamp;
      }
    } catch {
      // a file is being replaced; next tick
    }
  }, 100).unref();
  server.listen(port, host, () => {
    emit({ event: 'listening', address: listen });
  });
}

interface Peer {
  readonly name?: string;
  readonly addr: string;
  readonly identity?: string;
  readonly spiffe?: string;
}

async function handshake(p: Peer): Promise<Record<string, unknown>> {
  const { host, port } = hostPort(p.addr);
  const at = systemClock.now().toISOString();
  const started = performance.now();
  let f: PodFiles;
  try {
    f = await files();
  } catch (err) {
    return { event: 'handshake', ok: false, code: codeOf(err as Error), error: (err as Error).message };
  }
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: Record<string, unknown>): void => {
      if (done) return;
      done = true;
      socket.destroy();
      const to = p.name !== undefined ? { to: p.name } : {};
      resolve({ event: 'handshake', at, ...to, ms: Math.round(performance.now() - started), ...o });
    };
    const socket = connect({
      host,
      port,
      ...f,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: true,
      checkServerIdentity: (_h, cert) => {
        const problem = identityProblem(cert, p.identity, p.spiffe);
        return problem === undefined
          ? undefined
          : Object.assign(new Error(problem), { code: ERR_PEER_IDENTITY });
      },
    });
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => {
      finish({ ok: false, code: 'ERR_HANDSHAKE_TIMEOUT', error: 'timeout' });
    });
    socket.on('secureConnect', () => {
      socket.write('ping\n');
    });
    socket.on('data', () => {
      const peerCert = socket.getPeerCertificate(true);
      // the chain the peer presented, as far as it went: [leaf issuer CN, …] (with a cross certificate
      // the proxy trusting only the old anchor reaches it through the cross certificate)
      const path: string[] = [];
      for (let c = peerCert.issuerCertificate; c !== undefined && path.length < 4; c = c.issuerCertificate) {
        path.push(typeof c.subject.CN === 'string' ? c.subject.CN : '?');
        if (c.issuerCertificate === c) break;
      }
      finish({ ok: true, peer: peerCert.subjectaltname ?? '', serial: peerCert.serialNumber, path });
    });
    socket.on('error', (err: Error) => {
      finish({ ok: false, code: codeOf(err), error: err.message });
    });
    socket.on('close', () => {
      finish({ ok: false, code: 'ERR_CLOSED_BEFORE_ECHO', error: 'closed before the echo' });
    });
  });
}

interface Roster {
  readonly generation: number;
  readonly peers: readonly Peer[];
}

/** The roster in --peers-file now; the last good one when it is being replaced or unreadable. */
let lastRoster: Roster = { generation: -1, peers: [] };
function rosterNow(file: string): Roster {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<Roster>;
    if (typeof r.generation === 'number' && Array.isArray(r.peers))
      lastRoster = { generation: r.generation, peers: r.peers };
  } catch {
    // mid-replacement: keep the last list
  }
  return lastRoster;
}

/**
 * `rate` rounds a second, each one handshake to every peer listed, until SIGTERM (ends the process).
 * Rounds do not overlap: when a round starts with a new roster generation, every handshake of the
 * rounds before it has finished and been reported, and the "roster" line says so.
 */
async function mesh(file: string): Promise<void> {
  const intervalMs = 1000 / Number(values.rate);
  let stopping = false;
  let acknowledged = -1;
  process.on('SIGTERM', () => {
    stopping = true;
  });
  while (!stopping) {
    const t0 = performance.now();
    const roster = rosterNow(file);
    if (roster.generation !== acknowledged) {
      acknowledged = roster.generation;
      emit({ event: 'roster', generation: roster.generation });
    }
    const results = await Promise.all(roster.peers.map((p) => handshake(p)));
    for (const r of results) emit(r);
    await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (performance.now() - t0))));
  }
  emit({ event: 'stopped' });
  process.exit(0);
}

async function main(): Promise<void> {
  if (values.listen !== undefined) await serve(values.listen);
  if (values['peers-file'] !== undefined) {
    await mesh(values['peers-file']);
    return;
  }
  if (values.mode === 'once') {
    if (values.peer === undefined) throw new Error('--peer is required');
    const peer: Peer = {
      addr: values.peer,
      ...(values['peer-identity'] !== undefined ? { identity: values['peer-identity'] } : {}),
      ...(values['peer-spiffe'] !== undefined ? { spiffe: values['peer-spiffe'] } : {}),
    };
    let failed = 0;
    for (let i = 0; i < Number(values.count); i++) {
      const r = await handshake(peer);
      if (r.ok !== true) failed++;
      emit(r);
    }
    process.exit(failed === 0 ? 0 : 1);
  }
}

void main();

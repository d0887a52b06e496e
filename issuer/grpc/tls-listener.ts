// The TLS listener of `lanyard serve --tls-cert/--tls-key`, built for the clients that really call it.
//
// A Linkerd proxy opens its identity connection with TLS 1.3 and *no ALPN*, then speaks HTTP/2 with
// prior knowledge (linkerd2-proxy `linkerd/tls/src/client.rs`: `alpn: None`). grpc-js's own TLS port
// is Node's http2 secure server, which hands a connection without a negotiated protocol to its
// 'unknownProtocol' path and drops it. So this listener terminates TLS itself (node:tls) and hands
// each connection that is going to speak HTTP/2 to grpc-js through its connection injector: grpc-js
// stays the gRPC server (interceptors, limits, drain), only the TLS front is ours.
//
// What a connection must do to reach grpc-js: complete a handshake (TLS 1.2 or 1.3; no client
// certificate is asked for, authentication is the token), negotiate `h2` or no ALPN protocol at all
// (anything else gets the no_application_protocol alert), and send the HTTP/2 client preface within
// `prefaceTimeoutMs`. Every refusal is counted (`lanyard_tls_connections_total{outcome,listener}`) and logged
// at most once per peer address per minute.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { type Clock } from '../../ca/index.js';
import type { IssuerMetrics } from '../metrics.js';

/** The first bytes of every HTTP/2 connection (RFC 9113 §3.4). */
const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** How each connection ended up; the label values of lanyard_tls_connections_total. */
export type TlsOutcome =
  | 'h2' // negotiated h2 by ALPN, handed to gRPC
  | 'no_alpn' // no ALPN (a Linkerd proxy), handed to gRPC
  | 'alpn_refused' // offered ALPN protocols, none of them h2
  | 'handshake_failed'
  | 'not_http2' // the first bytes after the handshake were not the HTTP/2 preface (HTTP/1.1, garbage)
  | 'preface_timeout';

/** Which port a listener serves; the `listener` label of lanyard_tls_connections_total. */
export type TlsListenerName = 'grpc' | 'istio';

export interface TlsListenerOptions {
  /** grpc: the Certify port (--listen); istio: the Istio CA API's (--istio-listen) */
  readonly listener: TlsListenerName;
  /** the serving certificate chain and key (PEM) */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** grpc-js's connection injector (`server.createConnectionInjector(insecure)`) */
  readonly inject: (connection: Duplex) => void;
  readonly metrics: IssuerMetrics;
  readonly logger: Logger;
  /** reads time for the per-peer log rate limit */
  readonly clock: Clock;
  readonly handshakeTimeoutMs?: number;
  readonly prefaceTimeoutMs?: number;
}

export interface TlsListener {
  listen(host: string, port: number): Promise<number>;
  /** new connections get this pair; connections already open keep theirs */
  setServingPair(pair: { cert: string | Buffer; key: string | Buffer }): void;
  /** stops accepting, and ends connections that have not been handed to gRPC yet */
  close(): void;
  /** ends every connection still open (a drain's grace period ran out) */
  destroyAll(): void;
}

const LOG_INTERVAL_MS = 60_000;
/** peers remembered for the log rate limit; beyond this the memory starts again */
const LOG_PEERS_MAX = 4096;
const LOG_LINES_PER_MINUTE = 60;

export function createTlsListener(o: TlsListenerOptions): TlsListener {
  const prefaceTimeoutMs = o.prefaceTimeoutMs ?? 10_000;
  const count = (outcome: TlsOutcome): void => {
    o.metrics.tlsConnections.labels({ outcome, listener: o.listener }).inc();
  };
  const pending = new Set<TLSSocket>();
  // every TCP connection, from accept (handshakes included) until it closes
  const open = new Set<Socket>();
  const state = { closed: false };
  const refused = createRefusalLog(o, count);

  const server: Server = createServer({
    ...pairOptions(o),
    minVersion: 'TLSv1.2',
    // h2 when the client offers ALPN; a client that offers none (a Linkerd proxy) negotiates nothing
    // and is still served; one offering only other protocols gets the no_application_protocol alert
    ALPNProtocols: ['h2'],
    requestCert: false,
    handshakeTimeout: o.handshakeTimeoutMs ?? 10_000,
  });
  const peerOf = trackConnections(server, open, state);

  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    const outcome: TlsOutcome =
      err.code === 'ERR_SSL_NO_APPLICATION_PROTOCOL' ? 'alpn_refused' : 'handshake_failed';
    refused(outcome, peerOf(socket), { reason: err.code ?? 'handshake' });
    socket.destroy();
  });

  server.on('secureConnection', (socket: TLSSocket) => {
    if (state.closed) {
      // finished its handshake after the drain began: grpc-js no longer takes connections
      socket.destroy();
      return;
    }
    awaitPreface(socket, { pending, prefaceTimeoutMs, refused, count, inject: o.inject });
  });

  return {
    listen: (host, port) => listenOn(server, host, port, o.logger),
    setServingPair(pair) {
      server.setSecureContext(pairOptions(pair));
    },
    close() {
      state.closed = true;
      server.close();
      for (const s of pending) s.destroy();
      pending.clear();
    },
    destroyAll() {
      for (const s of open) s.destroy();
    },
  };
}

type Refused = (outcome: TlsOutcome, peer: string | undefined, detail: Record<string, unknown>) => void;

/** Counts each refusal; logs one warning per peer address per minute, however many connections it makes. */
function createRefusalLog(
  o: Pick<TlsListenerOptions, 'clock' | 'logger' | 'listener'>,
  count: (outcome: TlsOutcome) => void,
): Refused {
  const lastLogged = new Map<string, number>();
  // and in all, whatever the number of peers: at most LOG_LINES_PER_MINUTE lines a minute
  let windowStart = -Infinity;
  let windowLines = 0;
  return (outcome, peer, detail) => {
    count(outcome);
    const key = peer ?? 'unknown';
    const now = o.clock.now().getTime();
    const last = lastLogged.get(key);
    if (last !== undefined && now - last < LOG_INTERVAL_MS) return;
    if (now - windowStart >= LOG_INTERVAL_MS) {
      windowStart = now;
      windowLines = 0;
    }
    if (++windowLines > LOG_LINES_PER_MINUTE) return;
    if (lastLogged.size >= LOG_PEERS_MAX) lastLogged.clear();
    lastLogged.set(key, now);
    o.logger.warn(
      { event: 'tls_refused', listener: o.listener, outcome, peer: key, ...detail },
      'a TLS connection was refused (logged once per peer per minute; counted in lanyard_tls_connections_total)',
    );
  };
}

/**
 * Keeps every TCP connection in `open` until it closes (refusing new ones once closed), and returns
 * how to find a TLS socket's peer address.
 */
function trackConnections(
  server: Server,
  open: Set<Socket>,
  state: { readonly closed: boolean },
): (socket: TLSSocket) => string | undefined {
  // A TLS socket whose client reset during the handshake no longer knows its address: it is taken
  // from the TCP connection when it arrives (the TLS socket wraps it as `_parent`).
  const peers = new WeakMap<Socket, string>();
  server.on('connection', (raw: Socket) => {
    if (state.closed) {
      raw.destroy();
      return;
    }
    open.add(raw);
    raw.once('close', () => open.delete(raw));
    if (raw.remoteAddress !== undefined) peers.set(raw, raw.remoteAddress);
  });
  return (socket) => {
    const raw = (socket as unknown as { _parent?: Socket })._parent;
    return (raw !== undefined ? peers.get(raw) : undefined) ?? socket.remoteAddress;
  };
}

/**
 * A connection past its handshake: waits for the whole HTTP/2 client preface within
 * prefaceTimeoutMs, however slowly it trickles in, then hands the connection to grpc-js.
 */
function awaitPreface(
  socket: TLSSocket,
  o: {
    readonly pending: Set<TLSSocket>;
    readonly prefaceTimeoutMs: number;
    readonly refused: Refused;
    readonly count: (outcome: TlsOutcome) => void;
    readonly inject: (connection: Duplex) => void;
  },
): void {
  const outcome: TlsOutcome = socket.alpnProtocol === 'h2' ? 'h2' : 'no_alpn';
  o.pending.add(socket);
  socket.on('error', () => {
    // a reset connection; grpc-js's session reports errors once it owns the socket
  });
  let seen = Buffer.alloc(0);
  const done = (): void => {
    o.pending.delete(socket);
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('close', onClose);
  };
  const onTimeout = (): void => {
    done();
    o.refused('preface_timeout', socket.remoteAddress, {});
    socket.destroy();
  };
  const onClose = (): void => {
    done();
  };
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, CLIENT_PREFACE.length);
    if (!seen.subarray(0, n).equals(CLIENT_PREFACE.subarray(0, n))) {
      done();
      o.refused('not_http2', socket.remoteAddress, { alpn: socket.alpnProtocol || 'none' });
      socket.destroy();
      return;
    }
    if (seen.length < CLIENT_PREFACE.length) return;
    done();
    o.count(outcome);
    socket.unshift(seen);
    // Node's http2 server refuses a TLS socket whose ALPN result is not h2 (its 'unknownProtocol'
    // path). This one negotiated h2 or nothing, and has just sent the HTTP/2 preface: it speaks
    // HTTP/2 with prior knowledge, so it is handed over as what it is.
    if (socket.alpnProtocol !== 'h2') socket.alpnProtocol = 'h2';
    o.inject(socket);
  };
  // the whole preface within the limit, however slowly it trickles in
  const timer = setTimeout(onTimeout, o.prefaceTimeoutMs);
  socket.on('close', onClose);
  socket.on('readable', onReadable);
}

/** Listens; resolves with the port. Later accept errors are logged, not thrown. */
function listenOn(server: Server, host: string, port: number, logger: Logger): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      // an accept that fails later (EMFILE, ENOBUFS under a connection flood) must not end the process
      server.on('error', (err: Error & { code?: string }) => {
        logger.error(
          { event: 'tls_listener_error', code: err.code },
          'the TLS listener could not accept a connection',
        );
      });
      resolve((server.address() as { port: number }).port);
    });
  });
}

function pairOptions(pair: { cert: string | Buffer; key: string | Buffer }): SecureContextOptions {
  return { cert: pair.cert, key: pair.key };
}

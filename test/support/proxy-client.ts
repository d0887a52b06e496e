// A client that reaches the identity service the way an unmodified Linkerd proxy does. Written from
// what linkerd2-proxy does on the wire (../shared/DESIGN.md §3, issue #10), not from Lanyard's own
// client: nothing here imports issuer/ or ca/.
//
// - the address and name are LINKERD2_PROXY_IDENTITY_SVC_ADDR / _SVC_NAME; TLS unless `plaintext`
//   (the proxy speaks plaintext only to a loopback address);
// - TLS 1.3 only, AES-128-GCM / AES-256-GCM / ChaCha20-Poly1305, X25519 / P-256 / P-384, **no ALPN**,
//   SNI = the service name, which the server certificate must carry as a DNS SAN and which must
//   chain to the trust anchors (LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS, read once);
// - server signature schemes: ECDSA P-256/P-384, Ed25519, RSA PKCS#1 (no RSA-PSS, so an RSA server
//   key cannot complete a TLS 1.3 handshake);
// - HTTP/2 with prior knowledge on the TLS stream, one unary gRPC call
//   /io.linkerd.proxy.identity.Identity/Certify with { identity, token = the token file's bytes,
//   certificate_signing_request = DER PKCS#10 with an empty subject and exactly one DNS SAN };
// - the answer's leaf and intermediates are checked against the anchors and the leaf must name the
//   identity; the next Certify is due at 70 % of (valid_until − now), never from notAfter.
import {
  X509Certificate,
  createPublicKey,
  generateKeyPairSync,
  sign as signData,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as http2Connect, constants as h2 } from 'node:http2';
import { connect as tlsConnect, checkServerIdentity, type PeerCertificate } from 'node:tls';
import { connect as netConnect } from 'node:net';

export interface ProxyClientOptions {
  /** LINKERD2_PROXY_IDENTITY_SVC_ADDR: host:port */
  readonly addr: string;
  /** LINKERD2_PROXY_IDENTITY_SVC_NAME: SNI and the DNS SAN the server certificate must carry */
  readonly serviceName: string;
  /** LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS (PEM) */
  readonly trustAnchorsPem: string;
  /** LINKERD2_PROXY_IDENTITY_LOCAL_NAME: the proxy's own DNS identity */
  readonly identity: string;
  /** LINKERD2_PROXY_IDENTITY_TOKEN_FILE */
  readonly tokenFile: string;
  /** plaintext HTTP/2 (the proxy does this only for a loopback address) */
  readonly plaintext?: boolean;
  /** the local address to connect from (tests that need distinct peers on loopback) */
  readonly localAddress?: string;
  /** a certificate the client holds and would present if a server asked (it may be expired) */
  readonly clientCertificate?: { readonly certPem: string; readonly keyPem: string };
  /** the call's deadline, ms (sent as grpc-timeout) */
  readonly timeoutMs?: number;
  /** the key to put in the CSR (default: a new P-256 key per call, as the proxy makes at start) */
  readonly key?: KeyObject;
  /** "now" for the 70 % schedule and chain validity (default: the wall clock) */
  readonly now?: () => Date;
}

export interface ProxyCertificate {
  readonly leafDer: Buffer;
  readonly intermediatesDer: readonly Buffer[];
  readonly validUntil: Date;
  /** when the proxy would call Certify again: now + 70 % of (valid_until − now) */
  readonly refreshAt: Date;
  readonly key: KeyObject;
  /** the server certificate the TLS handshake presented (undefined in plaintext) */
  readonly servedBy?: PeerCertificate;
  /** the ALPN protocol negotiated (false: none, as the proxy offers none) */
  readonly alpn?: string | false;
}

/** A Certify call that ended with a gRPC status other than OK, or an answer the proxy would refuse. */
export class ProxyCertifyError extends Error {
  constructor(
    readonly kind: 'status' | 'transport' | 'answer',
    /** the gRPC status code (kind 'status') */
    readonly grpcStatus: number | undefined,
    message: string,
    /** the Node or OpenSSL error code behind a transport failure (e.g. UNABLE_TO_GET_ISSUER_CERT_LOCALLY) */
    readonly code?: string,
  ) {
    super(message);
  }
}

const METHOD = '/io.linkerd.proxy.identity.Identity/Certify';

export async function proxyCertify(o: ProxyClientOptions): Promise<ProxyCertificate> {
  const now = o.now ?? ((): Date => new Date(performance.timeOrigin + performance.now()));
  const key = o.key ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const csr = buildCsr(key, o.identity);
  const token = readFileSync(o.tokenFile);
  const body = encodeRequest(o.identity, token, csr);
  const { payload, servedBy, alpn } = await unaryCall(o, body);
  const answer = decodeResponse(payload);
  checkAnswer(answer, o, now(), key);
  const nowMs = now().getTime();
  return {
    leafDer: answer.leaf,
    intermediatesDer: answer.intermediates,
    validUntil: answer.validUntil,
    refreshAt: new Date(nowMs + Math.max(0, answer.validUntil.getTime() - nowMs) * 0.7),
    key,
    ...(servedBy !== undefined ? { servedBy } : {}),
    ...(alpn !== undefined ? { alpn } : {}),
  };
}

// ---- transport: TLS 1.3 without ALPN, HTTP/2 with prior knowledge, one gRPC message each way ----

function splitAddr(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr);
  if (m === null) throw new Error(`not host:port: ${addr}`);
  return { host: m[1] as string, port: Number(m[2]) };
}

function unaryCall(
  o: ProxyClientOptions,
  body: Buffer,
): Promise<{ payload: Buffer; servedBy?: PeerCertificate; alpn?: string | false }> {
  const { host, port } = splitAddr(o.addr);
  return new Promise((resolve, reject) => {
    let servedBy: PeerCertificate | undefined;
    let alpn: string | false | undefined;
    let cause: string | undefined;
    let failed: Error | undefined;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      // the stream's cancellation often arrives before the session's TLS error: keep the first real code
      const e = err as { code?: unknown; cause?: unknown };
      const inner = (e.cause as { code?: unknown } | undefined)?.code;
      const code = typeof inner === 'string' ? inner : e.code;
      if (typeof code === 'string' && code !== 'ERR_HTTP2_STREAM_CANCEL') cause ??= code;
      if (failed !== undefined) return;
      failed = err;
      setImmediate(() => {
        session.destroy();
        reject(
          err instanceof ProxyCertifyError
            ? err
            : new ProxyCertifyError('transport', undefined, err.message, cause),
        );
      });
    };
    // the proxy gives up on a call after its deadline whether or not the server answers
    const timer = setTimeout(() => {
      fail(new ProxyCertifyError('transport', undefined, 'deadline exceeded', 'DEADLINE_EXCEEDED'));
    }, o.timeoutMs ?? 10_000);
    const session = http2Connect(`http://${o.serviceName}:${port}`, {
      createConnection: () => {
        const from = o.localAddress !== undefined ? { localAddress: o.localAddress } : {};
        if (o.plaintext === true) return netConnect({ host, port, ...from });
        const socket = tlsConnect({
          host,
          port,
          ...from,
          servername: o.serviceName,
          ca: o.trustAnchorsPem,
          minVersion: 'TLSv1.3',
          maxVersion: 'TLSv1.3',
          ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
          ecdhCurve: 'X25519:P-256:P-384',
          sigalgs:
            'ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:ed25519:rsa_pkcs1_sha256:rsa_pkcs1_sha384:rsa_pkcs1_sha512',
          // no ALPNProtocols: the proxy offers none on control-plane connections
          // rustls-webpki checks the name against DNS SANs only (Node would fall back to the CN)
          checkServerIdentity: (_host, cert) =>
            /(^|, )DNS:/.test(cert.subjectaltname ?? '')
              ? checkServerIdentity(o.serviceName, cert)
              : new Error(`the server certificate has no DNS SAN (${o.serviceName} asked for)`),
          ...(o.clientCertificate !== undefined
            ? { cert: o.clientCertificate.certPem, key: o.clientCertificate.keyPem }
            : {}),
        });
        socket.once('secureConnect', () => {
          servedBy = socket.getPeerCertificate();
          alpn = socket.alpnProtocol ?? false;
        });
        return socket;
      },
    });
    session.on('error', fail);
    const headers: Record<string, string> = {
      [h2.HTTP2_HEADER_METHOD]: 'POST',
      [h2.HTTP2_HEADER_PATH]: METHOD,
      [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      te: 'trailers',
    };
    if (o.timeoutMs !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.ceil(o.timeoutMs))}m`;
    const stream = session.request(headers);
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = '';
    const readStatus = (h: Record<string, unknown>): void => {
      if (typeof h['grpc-status'] === 'string') status = h['grpc-status'];
      if (typeof h['grpc-message'] === 'string') message = decodeURIComponent(h['grpc-message']);
    };
    stream.on('response', readStatus);
    stream.on('trailers', readStatus);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', fail);
    stream.on('close', () => {
      clearTimeout(timer);
      session.close();
      if (status === undefined) {
        fail(new ProxyCertifyError('transport', undefined, 'the stream ended without a gRPC status'));
        return;
      }
      if (status !== '0') {
        reject(new ProxyCertifyError('status', Number(status), message));
        return;
      }
      const data = Buffer.concat(chunks);
      if (data.length < 5 || data[0] !== 0 || data.readUInt32BE(1) !== data.length - 5) {
        reject(new ProxyCertifyError('answer', undefined, 'not one uncompressed gRPC message'));
        return;
      }
      resolve({
        payload: data.subarray(5),
        ...(servedBy !== undefined ? { servedBy } : {}),
        ...(alpn !== undefined ? { alpn } : {}),
      });
    });
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(body.length, 1);
    stream.end(Buffer.concat([frame, body]));
  });
}

// ---- protobuf (io.linkerd.proxy.identity.CertifyRequest / CertifyResponse), by hand ----

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function field(tag: number, value: Buffer): Buffer {
  return Buffer.concat([varint((tag << 3) | 2), varint(value.length), value]);
}

/** CertifyRequest { string identity = 1; bytes token = 2; bytes certificate_signing_request = 3; } */
function encodeRequest(identity: string, token: Buffer, csr: Buffer): Buffer {
  return Buffer.concat([field(1, Buffer.from(identity, 'utf8')), field(2, token), field(3, csr)]);
}

interface Answer {
  readonly leaf: Buffer;
  readonly intermediates: Buffer[];
  readonly validUntil: Date;
}

function readFields(buf: Buffer): { tag: number; wire: number; value: Buffer | number }[] {
  const out: { tag: number; wire: number; value: Buffer | number }[] = [];
  let i = 0;
  const readVarint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new ProxyCertifyError('answer', undefined, 'truncated varint');
      const b = buf[i++] as number;
      n += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return n;
    }
  };
  while (i < buf.length) {
    const key = readVarint();
    const wire = key & 7;
    const tag = Math.floor(key / 8);
    if (wire === 0) out.push({ tag, wire, value: readVarint() });
    else if (wire === 2) {
      const len = readVarint();
      if (i + len > buf.length) throw new ProxyCertifyError('answer', undefined, 'truncated field');
      out.push({ tag, wire, value: buf.subarray(i, i + len) });
      i += len;
    } else throw new ProxyCertifyError('answer', undefined, `unexpected wire type ${wire}`);
  }
  return out;
}

/** CertifyResponse { bytes leaf_certificate = 1; repeated bytes intermediate_certificates = 2; Timestamp valid_until = 3; } */
function decodeResponse(buf: Buffer): Answer {
  let leaf: Buffer | undefined;
  const intermediates: Buffer[] = [];
  let validUntil: Date | undefined;
  for (const f of readFields(buf)) {
    if (f.tag === 1 && Buffer.isBuffer(f.value)) leaf = f.value;
    else if (f.tag === 2 && Buffer.isBuffer(f.value)) intermediates.push(f.value);
    else if (f.tag === 3 && Buffer.isBuffer(f.value)) {
      let seconds = 0;
      let nanos = 0;
      for (const t of readFields(f.value)) {
        if (t.tag === 1 && typeof t.value === 'number') seconds = t.value;
        if (t.tag === 2 && typeof t.value === 'number') nanos = t.value;
      }
      validUntil = new Date(seconds * 1000 + Math.floor(nanos / 1e6));
    }
  }
  if (leaf === undefined || validUntil === undefined)
    throw new ProxyCertifyError('answer', undefined, 'the answer has no leaf or no valid_until');
  return { leaf, intermediates, validUntil };
}

// ---- what the proxy checks of the answer ----

function checkAnswer(a: Answer, o: ProxyClientOptions, now: Date, key: KeyObject): void {
  const bad = (why: string): never => {
    throw new ProxyCertifyError('answer', undefined, why);
  };
  const leaf = new X509Certificate(a.leaf);
  const chain = a.intermediates.map((d) => new X509Certificate(d));
  const anchors = splitPem(o.trustAnchorsPem).map((p) => new X509Certificate(p));
  const valid = (c: X509Certificate): boolean =>
    Date.parse(c.validFrom) <= now.getTime() && now.getTime() <= Date.parse(c.validTo);
  // the leaf names the identity, first among its SANs
  const sans = (leaf.subjectAltName ?? '').split(', ').filter((s) => s !== '');
  if (sans[0] !== `DNS:${o.identity}`) bad(`the leaf's first SAN is ${sans[0] ?? 'missing'}`);
  if (!leaf.publicKey.equals(createPublicKey(key))) bad('the leaf is not for our key');
  // path building: leaf → intermediates (in any order, backtracking) → one of the anchors
  const reaches = (cert: X509Certificate, depth: number): boolean => {
    if (!valid(cert) || depth > 8) return false;
    if (anchors.some((t) => valid(t) && cert.checkIssued(t) && cert.verify(t.publicKey))) return true;
    return chain.some(
      (c) => c !== cert && c.ca && cert.checkIssued(c) && cert.verify(c.publicKey) && reaches(c, depth + 1),
    );
  };
  if (!reaches(leaf, 0)) bad('the answer does not chain to the trust anchors');
}

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

// ---- the CSR: DER PKCS#10, empty subject, exactly one DNS SAN, signed with ECDSA-SHA256 ----

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const len =
    body.length < 0x80
      ? Buffer.from([body.length])
      : body.length < 0x100
        ? Buffer.from([0x81, body.length])
        : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...c: Buffer[]): Buffer => der(0x30, ...c);
const oid = (hex: string): Buffer => der(0x06, Buffer.from(hex, 'hex'));
const OID_EXTENSION_REQUEST = '2a864886f70d01090e'; // 1.2.840.113549.1.9.14
const OID_SUBJECT_ALT_NAME = '551d11'; // 2.5.29.17
const OID_ECDSA_SHA256 = '2a8648ce3d040302'; // 1.2.840.10045.4.3.2

export function buildCsr(key: KeyObject, dnsName: string): Buffer {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const san = seq(der(0x82, Buffer.from(dnsName, 'ascii')));
  const extensions = seq(seq(oid(OID_SUBJECT_ALT_NAME), der(0x04, san)));
  const attributes = der(0xa0, seq(oid(OID_EXTENSION_REQUEST), der(0x31, extensions)));
  const info = seq(der(0x02, Buffer.from([0])), seq(), spki, attributes);
  const signature = signData('sha256', info, key);
  return seq(info, seq(oid(OID_ECDSA_SHA256)), der(0x03, Buffer.from([0]), signature));
}

// A stand-in CA for testing the Istio client itself: an HTTP/2 TLS server (ALPN h2 only) that speaks
// just enough gRPC for one unary CreateCertificate, records what arrived on the wire (ALPN, SNI,
// headers, the decoded request) and answers with a given chain or a given gRPC status.
import { createSecureServer, type Http2SecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ISTIO_CA_METHOD, ISTIO_CA_SERVICE, istioCaDefinition } from './client.js';

export interface SeenCall {
  readonly alpn: string | false | null;
  readonly sni: string | false | undefined;
  readonly tlsVersion: string | null;
  readonly path: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly request: {
    csr: string;
    validity_duration: string;
    metadata?: { fields: Record<string, { kind?: string; stringValue?: string }> };
  };
}

export interface StandInCa {
  readonly addr: string;
  readonly calls: SeenCall[];
  /** what the next calls get: a chain, or a gRPC status code */
  answer: { chain: string[] } | { status: number };
  close(): Promise<void>;
}

interface MethodCodec {
  requestDeserialize(b: Buffer): SeenCall['request'];
  responseSerialize(v: { cert_chain: string[] }): Buffer;
}

function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

export async function startStandInCa(tls: { certPem: string; keyPem: string }): Promise<StandInCa> {
  const service = istioCaDefinition()[ISTIO_CA_SERVICE] as unknown as Record<string, MethodCodec>;
  const codec = service.CreateCertificate as MethodCodec;
  const calls: SeenCall[] = [];
  const server: Http2SecureServer = createSecureServer({
    cert: tls.certPem,
    key: tls.keyPem,
    ALPNProtocols: ['h2'],
    allowHTTP1: false,
  });
  const state: StandInCa = {
    addr: '',
    calls,
    answer: { chain: [] },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const socket = stream.session?.socket as TLSSocket | undefined;
      calls.push({
        alpn: socket?.alpnProtocol ?? null,
        sni: (socket as (TLSSocket & { servername?: string | false }) | undefined)?.servername,
        tlsVersion: socket?.getProtocol() ?? null,
        path: headers[':path'],
        headers: { ...headers },
        request: codec.requestDeserialize(body.subarray(5)),
      });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => {
        const status = 'status' in state.answer ? state.answer.status : 0;
        stream.sendTrailers({ 'grpc-status': String(status), 'grpc-message': status === 0 ? '' : 'refused' });
      });
      if ('chain' in state.answer && headers[':path'] === ISTIO_CA_METHOD)
        stream.end(frame(codec.responseSerialize({ cert_chain: state.answer.chain })));
      else stream.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, { addr: `127.0.0.1:${String((server.address() as AddressInfo).port)}` });
}

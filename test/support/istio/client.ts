// A client that asks a CA for a workload certificate the way Istio's data plane does, written from
// istio-agent (security/pkg/nodeagent/caclient/providers/citadel/client.go) and ztunnel
// (src/identity/caclient.rs, src/identity/auth.rs), not from Lanyard's code: nothing here imports
// issuer/ or ca/, and the proto is this folder's own copy of istio/api's.
//
// - gRPC over TLS (grpc-go / tonic): ALPN h2, TLS 1.2 at least, the server verified against the root
//   from ConfigMap istio-ca-root-cert (root-cert.pem) by the CA address's host name, or by
//   ISTIOD_SAN / ALT_CA_HOSTNAME when set (`serverName`); no client certificate;
// - unary /istio.v1.auth.IstioCertificateService/CreateCertificate { csr (PEM), validity_duration
//   (seconds), metadata };
// - istio-agent: metadata { CertSigner: <CERT_SIGNER, usually ""> } always; header `clusterid` always
//   (grpc-go lower-cases "ClusterID"; empty for the local cluster); `authorization: Bearer <token>`
//   only when the token file is not empty;
// - ztunnel: metadata { ImpersonatedIdentity: <the pod's SPIFFE ID> } when impersonating (its normal
//   mode on a node), else none; `authorization: Bearer <token>` always (an empty token file is an error
//   before any call); `clusterid` only when not empty;
// - the answer is checked as each client checks it (answer.ts).
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { checkIstioAnswer, type IstioAnswer } from './answer.js';
import { istioCsr, type IstioClientStyle, type IstioCsr, type IstioKeyKind } from './csr.js';

export const ISTIO_CA_PROTO = join(import.meta.dirname, 'ca.proto');
export const ISTIO_CA_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const ISTIO_CA_METHOD = `/${ISTIO_CA_SERVICE}/CreateCertificate`;

/** The request as proto-loader objects (keepCase): google.protobuf.Struct as { fields: { k: Value } }. */
export interface IstioCertificateRequestObject {
  csr: string;
  validity_duration: number | string;
  metadata?: { fields: Record<string, { stringValue: string }> };
}

let loaded: protoLoader.PackageDefinition | undefined;
/** This folder's ca.proto, loaded once (keepCase, int64 as strings, oneofs named). */
export function istioCaDefinition(): protoLoader.PackageDefinition {
  loaded ??= protoLoader.loadSync(ISTIO_CA_PROTO, { keepCase: true, longs: String, oneofs: true });
  return loaded;
}

export interface IstioTransportOptions {
  /** CA_ADDR: host:port */
  readonly addr: string;
  /** the name the server certificate must carry (default: the host of `addr`) */
  readonly serverName?: string;
  /** root-cert.pem of ConfigMap istio-ca-root-cert */
  readonly rootPem: string;
  readonly timeoutMs?: number;
}

/** One CreateCertificate call with exactly `headers` and `request`: for tests that send odd requests. */
export async function rawCreateCertificate(
  t: IstioTransportOptions,
  headers: Readonly<Record<string, string>>,
  request: IstioCertificateRequestObject,
): Promise<{ cert_chain: string[] }> {
  const pkg = grpc.loadPackageDefinition(istioCaDefinition()) as unknown as {
    istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
  };
  const creds = grpc.credentials.createFromSecureContext(
    createSecureContext({ ca: t.rootPem, minVersion: 'TLSv1.2' }),
  );
  const serverName = t.serverName ?? hostOf(t.addr);
  const client = new pkg.istio.v1.auth.IstioCertificateService(t.addr, creds, {
    'grpc.ssl_target_name_override': serverName,
    'grpc.default_authority': serverName,
  });
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  const call = client.CreateCertificate as unknown as (
    req: IstioCertificateRequestObject,
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null, res?: { cert_chain?: string[] }) => void,
  ) => grpc.ClientUnaryCall;
  try {
    return await new Promise((resolve, reject) => {
      // the call's time limit without reading the wall clock: cancel it (CANCELLED) when it is up
      const timer = setTimeout(() => {
        pending.cancel();
      }, t.timeoutMs ?? 10_000);
      const pending = call.call(client, request, md, (err, res) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve({ cert_chain: res?.cert_chain ?? [] });
      });
    });
  } finally {
    client.close();
  }
}

function hostOf(addr: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(addr) ?? /^([^:]+):\d+$/.exec(addr);
  if (m?.[1] === undefined) throw new Error(`CA address ${addr} is not host:port`);
  return m[1];
}

export interface IstioClientOptions extends IstioTransportOptions {
  readonly style: IstioClientStyle;
  /** the identity asked for: the agent's own; for ztunnel the pod's it acts for */
  readonly spiffeId: string;
  /** the token file's content (istio-agent omits the header when it is empty) */
  readonly token: string;
  /** CLUSTER_ID (default "": the local cluster) */
  readonly clusterId?: string;
  /** istio-agent: CERT_SIGNER (default "") */
  readonly certSigner?: string;
  /** ztunnel: send ImpersonatedIdentity (default true) */
  readonly impersonate?: boolean;
  /** SECRET_TTL in seconds (default 24 h, both clients' default) */
  readonly validitySeconds?: number;
  /** the CSR key (istio-agent default rsa2048; ztunnel p256) */
  readonly key?: IstioKeyKind;
  /** a CSR made beforehand (its key is the one the answer must carry) */
  readonly csr?: IstioCsr;
  /** extra headers (CA_HEADER_* / ztunnel ca_headers); never authorization */
  readonly extraHeaders?: Readonly<Record<string, string>>;
}

export interface IstioCertificate extends IstioAnswer {
  readonly chain: readonly string[];
  readonly csr: IstioCsr;
}

/** The headers and request `o.style` sends (exported for the client's own tests). */
export function istioRequest(
  o: IstioClientOptions,
  csrPem: string,
): { headers: Record<string, string>; request: IstioCertificateRequestObject } {
  const headers: Record<string, string> = { ...o.extraHeaders };
  const clusterId = o.clusterId ?? '';
  const request: IstioCertificateRequestObject = {
    csr: csrPem,
    validity_duration: o.validitySeconds ?? 86_400,
  };
  if (o.style === 'istio-agent') {
    if (o.token !== '') headers.authorization = `Bearer ${o.token}`;
    headers.clusterid = clusterId;
    request.metadata = { fields: { CertSigner: { stringValue: o.certSigner ?? '' } } };
  } else {
    if (o.token === '') throw new Error('ztunnel: token file exists, but was empty');
    headers.authorization = `Bearer ${o.token}`;
    if (clusterId !== '') headers.clusterid = clusterId;
    if (o.impersonate !== false)
      request.metadata = { fields: { ImpersonatedIdentity: { stringValue: o.spiffeId } } };
  }
  return { headers, request };
}

/** Makes the CSR, calls CreateCertificate and checks the answer as `o.style` does. */
export async function istioCreateCertificate(o: IstioClientOptions): Promise<IstioCertificate> {
  const csr =
    o.csr ?? (await istioCsr({ style: o.style, spiffeId: o.spiffeId, ...(o.key ? { key: o.key } : {}) }));
  const { headers, request } = istioRequest(o, csr.csrPem);
  const { cert_chain: chain } = await rawCreateCertificate(o, headers, request);
  const answer = checkIstioAnswer(chain, {
    style: o.style,
    requestedId: o.spiffeId,
    publicKey: csr.publicKey,
    impersonating: o.style === 'ztunnel' && o.impersonate !== false,
  });
  return { ...answer, chain, csr };
}

import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { LanyardError, UsageError, isDns1123Subdomain, quoteForMessage } from '../../ca/index.js';

/**
 * The issuer's TLS certificate does not carry the name the client asked for: the DNS name given as
 * the server name (sent as SNI), else the host of the server address.
 */
export class ServerNameMismatchError extends LanyardError<'ERR_SERVER_NAME_MISMATCH'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SERVER_NAME_MISMATCH', message, options);
  }
}

/**
 * Checks a server name as a Linkerd proxy uses LINKERD2_PROXY_IDENTITY_SVC_NAME: a DNS name (not an
 * address), meaningful only over TLS verified against a CA. Throws UsageError otherwise.
 */
export function checkServerName(name: string, hasTlsCa: boolean): string {
  if (!hasTlsCa)
    throw new UsageError(
      '--server-name goes with --tls-ca: the name is checked in a server certificate verified against that CA',
    );
  if (!isDns1123Subdomain(name) || isIP(name) !== 0)
    throw new UsageError(
      `--server-name ${quoteForMessage(name)} is not a DNS name (lower-case labels of letters, digits and -, separated by dots)`,
    );
  return name;
}

/** How the certify client reaches its issuer: channel credentials and options, and what went wrong. */
export interface IssuerChannel {
  readonly credentials: grpc.ChannelCredentials;
  readonly options: grpc.ChannelOptions;
  /**
   * Runs a call; when it fails because a TLS handshake refused the server certificate's names while
   * it ran, rejects with ServerNameMismatchError instead of the gRPC status.
   */
  guard<T>(call: () => Promise<T>): Promise<T>;
}

/**
 * Plaintext without tlsCa. With it: the server certificate must chain to tlsCa and carry `serverName`
 * (default: the host of the server address) as a DNS SAN (an IP SAN for an address host); that name
 * is also the SNI and the HTTP/2 authority, as a proxy sends LINKERD2_PROXY_IDENTITY_SVC_NAME.
 */
export function createIssuerChannel(o: { tlsCa?: Buffer; serverName?: string }): IssuerChannel {
  const options: grpc.ChannelOptions = { 'grpc.max_receive_message_length': 1024 * 1024 };
  if (o.tlsCa === undefined) {
    return { credentials: grpc.credentials.createInsecure(), options, guard: (call) => call() };
  }
  if (o.serverName !== undefined) {
    // grpc-js: the SNI, and the name given to checkServerIdentity below (channel-credentials.ts)
    options['grpc.ssl_target_name_override'] = o.serverName;
    // grpc-js: the :authority of every call (internal-channel.ts)
    options['grpc.default_authority'] = o.serverName;
  }
  let refusals = 0;
  let last: { name: string; names: string } | undefined;
  const checkName = (name: string, cert: PeerCertificate): Error | undefined => {
    const err =
      isIP(name) === 0 && !/(^|, )DNS:/.test(cert.subjectaltname ?? '')
        ? new Error('the certificate has no DNS subject alternative name') // no fallback to the CN
        : checkServerIdentity(name, cert);
    if (err !== undefined) {
      refusals++;
      last = { name, names: cert.subjectaltname ?? '' };
    }
    return err;
  };
  return {
    credentials: grpc.credentials.createSsl(o.tlsCa, null, null, { checkServerIdentity: checkName }),
    options,
    async guard(call) {
      const before = refusals;
      try {
        return await call();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (refusals === before || code !== grpc.status.UNAVAILABLE || last === undefined) throw err;
        throw new ServerNameMismatchError(
          `the issuer's TLS certificate does not name ${quoteForMessage(last.name)} (its names: ${last.names === '' ? 'none' : quoteForMessage(last.names)}); pass the name it was issued for with --server-name`,
          { cause: err },
        );
      }
    },
  };
}

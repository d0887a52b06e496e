// One Certify call to the issuer over the agent's channel, with a per-call deadline.
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../ca/index.js';
import type { CertifyRequestMessage, CertifyResponseMessage } from '../../issuer/grpc/index.js';
import type { IssuerChannel } from './channel.js';

export interface CertifyCall {
  certify(req: CertifyRequestMessage): Promise<CertifyResponseMessage>;
  close(): void;
}

/** A gRPC client of the Identity service at `server` (HOST:PORT); each call's deadline is timeoutMs from now. */
export function createCertifyCall(o: {
  /** the Identity service definition (loadIdentityService()) */
  readonly service: grpc.ServiceDefinition;
  readonly server: string;
  readonly channel: IssuerChannel;
  readonly clock: Clock;
  readonly timeoutMs: number;
}): CertifyCall {
  const method = o.service.Certify as grpc.MethodDefinition<CertifyRequestMessage, CertifyResponseMessage>;
  const Client = grpc.makeGenericClientConstructor(o.service, 'Identity');
  const client = new Client(o.server, o.channel.credentials, o.channel.options);

  async function certify(req: CertifyRequestMessage): Promise<CertifyResponseMessage> {
    const deadline = new Date(o.clock.now().getTime() + o.timeoutMs);
    return o.channel.guard(
      () =>
        new Promise((resolve, reject) => {
          client.makeUnaryRequest(
            method.path,
            method.requestSerialize,
            method.responseDeserialize,
            req,
            { deadline },
            (err: grpc.ServiceError | null, res?: CertifyResponseMessage) => {
              if (err !== null || res === undefined) reject(err ?? new Error('empty response'));
              else resolve(res);
            },
          );
        }),
    );
  }

  return {
    certify,
    close: () => {
      client.close();
    },
  };
}

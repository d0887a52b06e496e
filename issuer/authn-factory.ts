import type { Logger } from 'pino';
import type { Clock } from '../ca/index.js';
import {
  createJwtAuthenticator,
  createTokenReviewAuthenticator,
  resolveKubeConnection,
  type Authenticator,
} from './authn/index.js';
import type { AuthConfig } from './config.js';

/** Builds the authenticator `--auth` asks for. */
export async function createAuthenticator(
  config: AuthConfig,
  deps: { clock: Clock; clockSkewMs: number; logger: Logger },
): Promise<Authenticator> {
  if (config.kind === 'jwt') {
    const jwks =
      config.jwksFile !== undefined
        ? { file: config.jwksFile }
        : {
            url: config.jwksUrl as string,
            ...(config.jwksCaFile !== undefined ? { caFile: config.jwksCaFile } : {}),
            ...(config.jwksTokenFile !== undefined ? { tokenFile: config.jwksTokenFile } : {}),
          };
    const auth = createJwtAuthenticator({
      jwks,
      issuer: config.issuer,
      audience: config.audience,
      clock: deps.clock,
      clockSkewMs: deps.clockSkewMs,
      logger: deps.logger,
    });
    // A JWKS file that cannot be read is a configuration error: fail at start. A JWKS URL may be
    // briefly unreachable: start anyway (calls answer UNAVAILABLE until it loads).
    if (config.jwksFile !== undefined) await auth.refresh();
    else
      await auth.refresh().catch((err: unknown) => {
        deps.logger.warn(
          { event: 'jwks_unavailable', err: (err as Error).message },
          'JWKS not loaded yet; will retry on demand',
        );
      });
    return auth;
  }
  const connection = await resolveKubeConnection(
    config.kubeconfig !== undefined ? { kubeconfig: config.kubeconfig } : {},
  );
  return createTokenReviewAuthenticator({
    connection,
    clock: deps.clock,
    audience: config.audience,
    cacheTtlMs: config.cacheTtlMs,
    logger: deps.logger,
  });
}

import Fastify, { type FastifyInstance } from 'fastify';
import { encodePem } from '../ca/index.js';
import type { CredentialSource } from './credentials.js';
import type { IssuerMetrics } from './metrics.js';
import type { StatusReporter } from './status.js';

export interface AdminAppOptions {
  readonly credentials: CredentialSource;
  readonly metrics: IssuerMetrics;
  readonly status: StatusReporter;
  /** true once shutdown has begun: readiness fails so load balancers stop sending calls */
  readonly draining?: () => boolean;
}

/**
 * The admin HTTP app (not listening; the caller decides where): /live, /ready, /metrics,
 * /v1/status, /v1/bundle. Test it with inject().
 */
export function createAdminApp(o: AdminAppOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 });

  app.get('/live', () => ({ live: true }));

  app.get('/ready', async (_req, reply) => {
    const ready = o.status.ready() && o.draining?.() !== true;
    return reply.code(ready ? 200 : 503).send({
      ready,
      reason: ready ? undefined : o.draining?.() === true ? 'draining' : 'no valid issuer credential',
    });
  });

  app.get('/metrics', async (_req, reply) => {
    const cred = o.credentials.current();
    o.metrics.ready.set(o.status.ready() ? 1 : 0);
    if (cred !== undefined) {
      o.metrics.issuerExpiry
        .labels(o.status.status().cluster)
        .set(cred.certificate.notAfter.getTime() / 1000);
      o.metrics.anchorExpiry.reset();
      for (const a of o.status.status().anchors)
        o.metrics.anchorExpiry.labels(a.fingerprint).set(Date.parse(a.notAfter) / 1000);
    }
    return reply.type(o.metrics.registry.contentType).send(await o.metrics.registry.metrics());
  });

  app.get('/v1/status', () => o.status.status());

  app.get('/v1/bundle', async (_req, reply) => {
    const cred = o.credentials.current();
    if (cred === undefined) return reply.code(503).send({ error: 'no valid issuer credential is loaded' });
    return reply
      .type('application/x-pem-file')
      .send(cred.anchors.map((a) => encodePem('CERTIFICATE', a.der)).join(''));
  });

  return app;
}

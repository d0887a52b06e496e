import Fastify, { type FastifyInstance } from 'fastify';
import { createTrustBundle } from '../trust-bundles/index.js';
import { toSpiffeBundle } from '../trust-bundles/index.js';
import type { CredentialSource } from './credentials.js';
import { metricsText, type IssuerMetrics } from './metrics.js';
import type { StatusReporter } from './status.js';

export interface AdminAppOptions {
  readonly credentials: CredentialSource;
  readonly metrics: IssuerMetrics;
  readonly status: StatusReporter;
  /** true once shutdown has begun: readiness fails so load balancers stop sending calls */
  readonly draining?: () => boolean;
  /** the /metrics body; default: both registries of `metrics` (cluster mode adds the workers' counts) */
  readonly metricsText?: () => Promise<string>;
  /** spiffe_refresh_hint of /v1/bundle.spiffe, seconds; default 300 */
  readonly spiffeRefreshHintSeconds?: number;
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
    o.metrics.ready.set(o.status.ready() && o.draining?.() !== true ? 1 : 0);
    o.metrics.anchorExpiry.reset();
    o.metrics.intermediateExpiry.reset();
    if (cred !== undefined) {
      for (const c of cred.chain.slice(1))
        o.metrics.intermediateExpiry.labels(c.serialHex).set(c.notAfter.getTime() / 1000);
      const status = o.status.status();
      o.metrics.issuerExpiry.labels(status.cluster).set(cred.certificate.notAfter.getTime() / 1000);
      for (const a of status.anchors)
        o.metrics.anchorExpiry.labels(a.fingerprint).set(Date.parse(a.notAfter) / 1000);
    }
    return reply
      .type(o.metrics.stateRegistry.contentType)
      .send(await (o.metricsText ?? (() => metricsText(o.metrics)))());
  });

  app.get('/v1/status', () => o.status.status());

  // spiffe_sequence: from the credential source (the anchors file's mtime in seconds, the same on every
  // replica and across restarts); sources without one count anchor-set changes in this process.
  let counted = 0;
  let lastSet = '';
  app.get('/v1/bundle.spiffe', async (_req, reply) => {
    const cred = o.credentials.current();
    if (cred === undefined) return reply.code(503).send({ error: 'no valid issuer credential is loaded' });
    const bundle = createTrustBundle(cred.anchors);
    const set = bundle.anchors.map((a) => a.fingerprint).join(',');
    if (set !== lastSet) {
      lastSet = set;
      counted++;
    }
    const sequence = o.credentials.anchorsSequence?.() ?? counted;
    return reply
      .type('application/json')
      .send(toSpiffeBundle(bundle, { sequence, refreshHintSeconds: o.spiffeRefreshHintSeconds ?? 300 }));
  });

  app.get('/v1/bundle', async (_req, reply) => {
    const cred = o.credentials.current();
    if (cred === undefined) return reply.code(503).send({ error: 'no valid issuer credential is loaded' });
    return reply.type('application/x-pem-file').send(createTrustBundle(cred.anchors).toPem());
  });

  return app;
}

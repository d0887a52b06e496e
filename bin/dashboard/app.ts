import Fastify, { type FastifyInstance } from 'fastify';
import type { Clock } from '../../ca/index.js';
import { buildMeshView, type MeshView, type MeshViewOptions } from '../../trust-bundles/index.js';
import { renderPage } from './page.js';
import type { MeshPoller } from './poller.js';

export interface DashboardAppOptions {
  readonly poller: Pick<MeshPoller, 'readings'>;
  readonly clock: Clock;
  /** how often the page reloads itself, ms */
  readonly refreshMs: number;
  readonly view?: MeshViewOptions;
}

/** Nothing but what the page is made of: its own inline style, no script, no request elsewhere. */
const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/**
 * The dashboard's HTTP app (not listening): GET / (the page), GET /v1/mesh (the JSON it draws), and
 * per cluster what was read from it: /v1/clusters/NAME/status (JSON) and /v1/clusters/NAME/metrics
 * (text). GET only; nothing it serves changes anything. Test it with inject().
 */
export function createDashboardApp(o: DashboardAppOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 });
  const view = (): MeshView => buildMeshView(o.poller.readings(), o.clock.now(), o.view);
  const reading = (name: string) => o.poller.readings().find((r) => r.name === name);

  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
  });

  app.get('/', async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', CSP)
      .send(renderPage(view(), { refreshMs: o.refreshMs })),
  );

  app.get('/v1/mesh', () => view());

  app.get<{ Params: { name: string } }>('/v1/clusters/:name/status', async (req, reply) => {
    const r = reading(req.params.name);
    if (r === undefined) return reply.code(404).send({ error: 'no such cluster' });
    const rd = r.reading;
    if (rd === undefined) return reply.code(502).send({ cluster: r.name, state: 'pending' });
    if (rd.state !== 'ok')
      return reply.code(502).send({ cluster: r.name, state: rd.state, reason: rd.reason });
    return { ...rd.status, readAt: rd.readAt };
  });

  app.get<{ Params: { name: string } }>('/v1/clusters/:name/metrics', async (req, reply) => {
    const r = reading(req.params.name);
    if (r === undefined) return reply.code(404).send({ error: 'no such cluster' });
    const text = r.reading?.state === 'ok' ? r.reading.metricsText : null;
    if (text === null || text === undefined)
      return reply.code(502).send({ cluster: r.name, error: 'no metrics read from this cluster' });
    return reply.type('text/plain; charset=utf-8').send(text);
  });

  return app;
}

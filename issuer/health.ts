import { HealthImplementation } from 'grpc-health-check';
import type { IssuerMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';

export const HEALTH_SERVICE = 'io.linkerd.proxy.identity.Identity';

/** The gRPC health service of `lanyard serve` and the ready gauge, following the status reporter. */
export interface IssuerHealth {
  /** the grpc-health-check implementation to add to the gRPC server */
  readonly service: HealthImplementation;
  /** looks at the reporter's ready() now */
  readonly update: () => void;
  /** starts following `status` (NOT_SERVING until then): now, and every second */
  follow(status: Readiness): void;
  /** NOT_SERVING from now on (a drain began); stops following */
  drain(): void;
  readonly draining: () => boolean;
  /** stops following */
  close(): void;
}

export function createIssuerHealth(o: { readonly metrics: IssuerMetrics }): IssuerHealth {
  const service = new HealthImplementation({ '': 'NOT_SERVING', [HEALTH_SERVICE]: 'NOT_SERVING' });
  let draining = false;
  let status: Readiness | undefined;
  let timer: NodeJS.Timeout | undefined;
  function update(): void {
    const serving = !draining && status?.ready() === true;
    service.setStatus('', serving ? 'SERVING' : 'NOT_SERVING');
    service.setStatus(HEALTH_SERVICE, serving ? 'SERVING' : 'NOT_SERVING');
    o.metrics.ready.set(serving ? 1 : 0);
  }
  function close(): void {
    clearInterval(timer);
  }
  return {
    service,
    update,
    follow(s) {
      status = s;
      update();
      timer = setInterval(update, 1000);
      timer.unref();
    },
    drain() {
      draining = true;
      update();
      close();
    },
    draining: () => draining,
    close,
  };
}

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RenewalCache, RenewalCaches } from './renewal-cache.js';
import type { RenewalHint } from './renewal-hint.js';

/**
 * Lanyard's Prometheus metrics, on registries of their own (no global state): `requestRegistry` holds
 * what each process serving Certify counts (summed across workers in cluster mode), `stateRegistry`
 * what describes the issuer as a whole (expiry, reloads, readiness), kept once by the primary.
 */
export interface IssuerMetrics {
  readonly requestRegistry: Registry;
  readonly stateRegistry: Registry;
  /** Certify calls by gRPC status code name (OK, INVALID_ARGUMENT, …) */
  readonly requests: Counter<'api' | 'result'>;
  /** seconds from receipt to response */
  readonly latency: Histogram<'api'>;
  readonly inFlight: Gauge<'api'>;
  /** calls whose headers arrived and whose request has not yet (they hold no in-flight slot) */
  readonly awaitingRequest: Gauge<'api'>;
  /** connections to the TLS listener by how they ended up (h2, no_alpn, alpn_refused, …) */
  readonly tlsConnections: Counter<'outcome' | 'listener'>;
  /** TokenReview requests sent to the API server, by result (authenticated, rejected, unavailable) */
  readonly tokenReviews: Counter<'result'>;
  /** tokens answered without a TokenReview request, by reason (cache_hit, cached_failure, …) */
  readonly tokenReviewsSkipped: Counter<'reason'>;
  /** unix seconds */
  readonly issuerExpiry: Gauge<'cluster'>;
  /** unix seconds, one series per anchor fingerprint */
  readonly anchorExpiry: Gauge<'fingerprint'>;
  readonly reloads: Counter<'result'>;
  /** unix seconds: when the credential was last (re)loaded, per result (ok, rejected) */
  readonly lastReload: Gauge<'result'>;
  /** unix seconds, one series per certificate served after the issuer (a cross certificate), by serial */
  readonly intermediateExpiry: Gauge<'serial'>;
  /** unix seconds: the gRPC listener's serving certificate's notAfter (absent in plaintext) */
  readonly servingExpiry: Gauge;
  readonly ready: Gauge;
  /** unix seconds: the --renew-after instant (0: no renewal hint) */
  readonly renewalHint: Gauge;
  /**
   * reports this process's renewal caches in lanyard_renewal_cache_* (read at scrape time, so a call
   * only bumps a plain counter of the cache)
   */
  watchRenewalCaches(caches: RenewalCaches): void;
  /** reports the impersonation node check's counters in lanyard_istio_impersonation_* (read at scrape time) */
  watchImpersonation(stats: () => ImpersonationCounts): void;
}

/** What lanyard_istio_impersonation_* read of the node check (issuer/impersonation.ts stats()). */
export interface ImpersonationCounts {
  /** every check allowed, those from the cache included */
  readonly allowed: number;
  readonly cacheHits: number;
  readonly denied: number;
  readonly unavailable: number;
  readonly inFlight: number;
}

/**
 * The issuer's metrics. `renewalHint` (the configuration's --renew-after) sets
 * lanyard_renewal_hint_timestamp_seconds here, the one place it is set (single process or primary).
 */
export function createIssuerMetrics(
  options: { defaultMetrics?: boolean; renewalHint?: RenewalHint | undefined } = {},
): IssuerMetrics {
  const registry = new Registry();
  const state = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'lanyard_' });
  const stateMetrics = createStateMetrics(state);
  if (options.renewalHint !== undefined)
    stateMetrics.renewalHint.set(options.renewalHint.after.getTime() / 1000);
  return {
    requestRegistry: registry,
    stateRegistry: state,
    requests: new Counter({
      name: 'lanyard_requests_total',
      help: 'Identity API calls by result (gRPC status code name)',
      labelNames: ['api', 'result'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'lanyard_request_duration_seconds',
      help: 'Identity API call latency in seconds',
      labelNames: ['api'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'lanyard_requests_in_flight',
      help: 'Identity API calls in progress',
      labelNames: ['api'],
      registers: [registry],
    }),
    awaitingRequest: new Gauge({
      name: 'lanyard_requests_awaiting_message',
      help: 'Identity API calls whose headers arrived and whose request message has not (they hold no in-flight slot; ended after 5 s)',
      labelNames: ['api'],
      registers: [registry],
    }),
    tlsConnections: new Counter({
      name: 'lanyard_tls_connections_total',
      help: 'TLS connections by listener (grpc: --listen, istio: --istio-listen) and outcome: h2, no_alpn (served); alpn_refused, handshake_failed, not_http2, preface_timeout (refused)',
      labelNames: ['outcome', 'listener'],
      registers: [registry],
    }),
    tokenReviews: new Counter({
      name: 'lanyard_token_reviews_total',
      help: 'TokenReview requests sent to the API server (--auth token-review) by result: authenticated, rejected, unavailable',
      labelNames: ['result'],
      registers: [registry],
    }),
    tokenReviewsSkipped: new Counter({
      name: 'lanyard_token_reviews_skipped_total',
      help: 'Tokens answered without a TokenReview request (--auth token-review) by reason: cache_hit, cached_failure, malformed, audience, expired (refused for their own claims), peer_rate_limit, total_rate_limit (too many failed reviews)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    ...stateMetrics,
    watchRenewalCaches: createRenewalCacheMetrics(registry),
    watchImpersonation: createImpersonationMetrics(registry),
  };
}

/**
 * lanyard_renewal_cache_{lookups_total,entries,bytes,evictions_total}{cache="csr"|"token"}: set from
 * the caches' own counters when scraped (summed across workers by the primary's aggregator).
 */
function createRenewalCacheMetrics(registry: Registry): (caches: RenewalCaches) => void {
  const watched: { caches?: RenewalCaches } = {};
  const each = (fn: (cache: 'csr' | 'token', c: RenewalCache<unknown>) => void): void => {
    const caches = watched.caches;
    if (caches === undefined) return;
    fn('csr', caches.csr as RenewalCache<unknown>);
    fn('token', caches.token as RenewalCache<unknown>);
  };
  new Counter({
    name: 'lanyard_renewal_cache_lookups_total',
    help: 'Renewal cache look-ups by cache (csr: verified CSRs; token: token successes) and result (hit, miss)',
    labelNames: ['cache', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      each((cache, c) => {
        this.inc({ cache, result: 'hit' }, c.hits);
        this.inc({ cache, result: 'miss' }, c.misses);
      });
    },
  });
  new Counter({
    name: 'lanyard_renewal_cache_evictions_total',
    help: 'Renewal cache entries forgotten to stay within --renewal-cache-memory, by cache (csr, token)',
    labelNames: ['cache'],
    registers: [registry],
    collect() {
      this.reset();
      each((cache, c) => {
        this.inc({ cache }, c.evictions);
      });
    },
  });
  new Gauge({
    name: 'lanyard_renewal_cache_entries',
    help: 'Entries in the renewal caches, by cache (csr, token); each worker holds its own copy',
    labelNames: ['cache'],
    registers: [registry],
    collect() {
      each((cache, c) => {
        this.set({ cache }, c.size);
      });
    },
  });
  new Gauge({
    name: 'lanyard_renewal_cache_bytes',
    help: 'Estimated bytes held by the renewal caches, by cache (csr, token); bounded by --renewal-cache-memory per process',
    labelNames: ['cache'],
    registers: [registry],
    collect() {
      each((cache, c) => {
        this.set({ cache }, c.bytes);
      });
    },
  });
  return (caches) => {
    watched.caches = caches;
  };
}

type StateMetrics = Pick<
  IssuerMetrics,
  | 'issuerExpiry'
  | 'anchorExpiry'
  | 'intermediateExpiry'
  | 'servingExpiry'
  | 'reloads'
  | 'lastReload'
  | 'ready'
  | 'renewalHint'
>;

/** What describes the issuer as a whole, on the state registry (kept once, by the primary). */
function createStateMetrics(state: Registry): StateMetrics {
  return {
    issuerExpiry: new Gauge({
      name: 'lanyard_issuer_expiry_timestamp_seconds',
      help: "The serving issuer certificate's notAfter, unix seconds",
      labelNames: ['cluster'],
      registers: [state],
    }),
    anchorExpiry: new Gauge({
      name: 'lanyard_anchor_expiry_timestamp_seconds',
      help: "Each trust anchor's notAfter, unix seconds",
      labelNames: ['fingerprint'],
      registers: [state],
    }),
    intermediateExpiry: new Gauge({
      name: 'lanyard_intermediate_expiry_timestamp_seconds',
      help: "Each certificate served after the issuer's (a cross certificate)'s notAfter, unix seconds, by serial",
      labelNames: ['serial'],
      registers: [state],
    }),
    servingExpiry: new Gauge({
      name: 'lanyard_serving_cert_expiry_timestamp_seconds',
      help: "The gRPC listener's serving certificate's notAfter, unix seconds (TLS only)",
      registers: [state],
    }),
    reloads: new Counter({
      name: 'lanyard_credential_reloads_total',
      help: 'Issuer credential (re)loads by result (ok, rejected)',
      labelNames: ['result'],
      registers: [state],
    }),
    lastReload: new Gauge({
      name: 'lanyard_credential_last_reload_timestamp_seconds',
      help: 'When the issuer credential was last (re)loaded, unix seconds, by result (ok, rejected): the latest series tells the last result',
      labelNames: ['result'],
      registers: [state],
    }),
    ready: new Gauge({
      name: 'lanyard_ready',
      help: '1 while a valid issuer credential is loaded',
      registers: [state],
    }),
    renewalHint: new Gauge({
      name: 'lanyard_renewal_hint_timestamp_seconds',
      help: 'The --renew-after instant, unix seconds: until then valid_until brings renewals forward to it (0: no hint)',
      registers: [state],
    }),
  };
}

/** The exposition text of both registries (single-process mode). */
export async function metricsText(m: IssuerMetrics): Promise<string> {
  return `${await m.stateRegistry.metrics()}\n${await m.requestRegistry.metrics()}`;
}

/**
 * lanyard_istio_impersonation_checks_total{result} (allowed: after asking the API server, cache_hit:
 * allowed from the cache, denied, unavailable; each check counts once) and
 * lanyard_istio_impersonation_checks_in_flight: the node check's counters, read when scraped.
 */
function createImpersonationMetrics(registry: Registry): (stats: () => ImpersonationCounts) => void {
  let read: (() => ImpersonationCounts) | undefined;
  new Counter({
    name: 'lanyard_istio_impersonation_checks_total',
    help: 'Istio impersonation node checks by result: allowed (after asking the Kubernetes API), cache_hit (allowed from the cache), denied, unavailable',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      if (read === undefined) return;
      const s = read();
      this.reset();
      this.inc({ result: 'allowed' }, s.allowed - s.cacheHits);
      this.inc({ result: 'cache_hit' }, s.cacheHits);
      this.inc({ result: 'denied' }, s.denied);
      this.inc({ result: 'unavailable' }, s.unavailable);
    },
  });
  new Gauge({
    name: 'lanyard_istio_impersonation_checks_in_flight',
    help: 'Istio impersonation node checks waiting for the Kubernetes API (identical checks count once)',
    registers: [registry],
    collect() {
      if (read !== undefined) this.set(read().inFlight);
    },
  });
  return (stats) => {
    read = stats;
  };
}

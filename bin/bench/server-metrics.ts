// The server's renewal-cache counters, read from its admin /metrics (Prometheus text; in --workers
// mode the primary sums the workers' counters): lanyard_renewal_cache_lookups_total{cache,result}.
import { log } from './format.js';

export const CACHE_LOOKUPS = 'lanyard_renewal_cache_lookups_total';

/** Lookups by cache and result, e.g. { csr: { hit: 10, miss: 2 } }. */
export type CacheLookups = Record<string, Record<string, number>>;

/** hit ÷ (hit + miss) per cache, %. */
export type CacheHitRates = Record<string, number>;

/** The lookup counters in a /metrics body; undefined when it has none. */
export function parseCacheLookups(text: string): CacheLookups | undefined {
  const out: CacheLookups = {};
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${CACHE_LOOKUPS}{`)) continue;
    const m = /^[^{]+\{([^}]*)\}\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels = Object.fromEntries(
      [...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1] ?? '', x[2] ?? '']),
    );
    const cache = labels.cache;
    const result = labels.result;
    const value = Number(m[2]);
    if (cache === undefined || result === undefined || !Number.isFinite(value)) continue;
    found = true;
    const byResult = (out[cache] ??= {});
    byResult[result] = (byResult[result] ?? 0) + value;
  }
  return found ? out : undefined;
}

/** The counters of a running server; undefined when it has no admin port or no such metric. */
export async function cacheLookups(adminPort: number | undefined): Promise<CacheLookups | undefined> {
  if (adminPort === undefined) {
    log('the server printed no admin address: no /metrics to read');
    return undefined;
  }
  try {
    const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
    return parseCacheLookups(await res.text());
  } catch (err) {
    log(`could not read /metrics: ${(err as Error).message}`);
    return undefined;
  }
}

/** Hit rates between two readings, per cache; undefined when the later one has no counters. */
export function hitRates(
  before: CacheLookups | undefined,
  after: CacheLookups | undefined,
): CacheHitRates | undefined {
  if (after === undefined) return undefined;
  const out: CacheHitRates = {};
  for (const [cache, r] of Object.entries(after)) {
    const d = (k: string): number => (r[k] ?? 0) - (before?.[cache]?.[k] ?? 0);
    const total = d('hit') + d('miss');
    if (total > 0) out[cache] = Math.round((1000 * d('hit')) / total) / 10;
  }
  return out;
}

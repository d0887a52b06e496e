/** Bounds of an LruCache: entries, estimated bytes, or both. */
export interface LruLimits<K, V> {
  /** entries kept at most; default: no bound */
  readonly maxEntries?: number;
  /** estimated bytes kept at most (the sum of sizeOf over the entries); default: no bound */
  readonly maxBytes?: number;
  /** an entry's estimated bytes (key, value and the map's own share); needed with maxBytes */
  readonly sizeOf?: (key: K, value: V) => number;
}

/**
 * A bounded map that forgets the least recently used entry first, bounded by a number of entries
 * (`new LruCache(n)`) and/or by estimated bytes (`maxBytes` with `sizeOf`). sizeOf must give the
 * same figure for an entry every time: it is asked again when the entry leaves.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>();
  readonly maxEntries: number;
  readonly maxBytes: number;
  private readonly sizeOf: (key: K, value: V) => number;
  private used = 0;
  /** entries forgotten to stay within the bounds, since creation */
  evictions = 0;

  constructor(limits: number | LruLimits<K, V>) {
    const l: LruLimits<K, V> = typeof limits === 'number' ? { maxEntries: limits } : limits;
    this.maxEntries = l.maxEntries ?? Infinity;
    this.maxBytes = l.maxBytes ?? Infinity;
    if (this.maxEntries !== Infinity && (!Number.isInteger(this.maxEntries) || this.maxEntries < 1))
      throw new RangeError('maxEntries must be a positive integer');
    if (this.maxBytes !== Infinity && (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 1))
      throw new RangeError('maxBytes must be a positive integer');
    if (l.maxBytes !== undefined && l.sizeOf === undefined) throw new RangeError('maxBytes needs sizeOf');
    this.sizeOf = l.sizeOf ?? zero;
  }
  get size(): number {
    return this.map.size;
  }
  /** estimated bytes held (0 without sizeOf) */
  get bytes(): number {
    return this.used;
  }
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  /**
   * Keeps `value` under `key` (the entry kept under it before is gone either way); false when the
   * entry alone is larger than maxBytes, which is then not kept (it would only empty the cache).
   */
  set(key: K, value: V): boolean {
    this.delete(key);
    const size = this.sizeOf(key, value);
    if (size > this.maxBytes) return false;
    this.map.set(key, value);
    this.used += size;
    while (this.map.size > this.maxEntries || this.used > this.maxBytes) {
      const oldest = this.map.entries().next();
      if (oldest.done === true) break;
      this.remove(oldest.value[0], oldest.value[1]);
      this.evictions++;
    }
    return true;
  }
  delete(key: K): void {
    const v = this.map.get(key);
    if (v !== undefined) this.remove(key, v);
  }
  clear(): void {
    this.map.clear();
    this.used = 0;
  }
  private remove(key: K, value: V): void {
    this.map.delete(key);
    this.used -= this.sizeOf(key, value);
  }
}

const zero = (): number => 0;

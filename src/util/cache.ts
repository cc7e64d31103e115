/**
 * A cache that admits entries until its byte budget is spent and never evicts. Training epochs revisit every item in
 * a new order, so whatever is cached is hit once per epoch, while an LRU would evict each item just before its next
 * visit whenever the data outgrows the cache.
 */
export class FillOnceCache<K, V> {
  private readonly map = new Map<K, V>();
  private bytes = 0;

  constructor(private readonly budgetBytes: number) {}

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Keeps the entry if `bytes` more fit in the budget; returns whether it did. */
  admit(key: K, value: V, bytes: number): boolean {
    if (this.bytes + bytes > this.budgetBytes) return false;
    this.map.set(key, value);
    this.bytes += bytes;
    return true;
  }
}

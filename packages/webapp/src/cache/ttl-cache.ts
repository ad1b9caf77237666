// A small in-memory cache for values read from PostgreSQL: entries live at most ttlMs, the
// oldest go first when it is full, concurrent misses of one key share one load, and a load that
// began before an invalidation is never stored (the generation check), so an invalidation can
// never be undone by a slow read that saw the old rows.

export interface TtlCacheOptions {
  ttlMs: number;
  maxEntries: number;
  /** Upper bound of the summed sizeOf() of the entries (default: unbounded). */
  maxBytes?: number;
  /** The clock, in ms (default Date.now); tests pass their own to step past a lifetime. */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  expires: number;
  bytes: number;
  tags: readonly number[];
}

export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly inflight = new Map<string, Promise<V>>();
  private generation = 0;
  /** Counts tag invalidations; tagTicks holds, per tag, the count at its last one. */
  private tick = 0;
  private readonly tagTicks = new Map<number, number>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly options: TtlCacheOptions,
    /** False while invalidations cannot be trusted (no LISTEN): every call loads. */
    private readonly enabled: () => boolean = () => true,
  ) {}

  /**
   * The cached value of key, or load()'s. store(value) decides whether the value may be kept
   * and gives its size and tags (ids deleteTagged() can drop it by); null: do not keep it.
   */
  async get(key: string, load: () => Promise<V>, store: (value: V) => { bytes?: number; tags?: readonly number[] } | null = () => ({})): Promise<V> {
    if (!this.enabled() || this.options.ttlMs <= 0) return load();
    const now = this.now();
    const entry = this.entries.get(key);
    if (entry) {
      if (entry.expires > now) {
        this.hits++;
        return entry.value;
      }
      this.remove(key, entry);
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.hits++;
      return pending;
    }
    this.misses++;
    const generation = this.generation;
    const startTick = this.tick;
    const promise = load().then((value) => {
      if (this.generation === generation && this.enabled()) {
        const how = store(value);
        // Not kept if one of its tags was invalidated while it loaded.
        const stale = how?.tags?.some((t) => (this.tagTicks.get(t) ?? -1) > startTick);
        if (how && !stale) this.put(key, value, how.bytes ?? 0, how.tags ?? []);
      }
      return value;
    });
    this.inflight.set(key, promise);
    const forget = () => {
      if (this.inflight.get(key) === promise) this.inflight.delete(key);
    };
    promise.then(forget, forget);
    return promise;
  }

  private put(key: string, value: V, bytes: number, tags: readonly number[]): void {
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    const max = this.options.maxBytes ?? Infinity;
    if (bytes > max) return;
    this.entries.set(key, { value, expires: this.now() + this.options.ttlMs, bytes, tags });
    this.bytes += bytes;
    // Map order is insertion order: the first keys are the oldest.
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.options.maxEntries && this.bytes <= max) break;
      this.remove(k, e);
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private remove(key: string, entry: Entry<V>): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }

  /** Forgets everything, including loads under way. */
  clear(): void {
    this.generation++;
    this.tagTicks.clear();
    this.inflight.clear();
    this.entries.clear();
    this.bytes = 0;
  }

  /** Forgets the entries whose value matches (and, to be safe, every load under way). */
  deleteWhere(match: (value: V, key: string) => boolean): void {
    this.generation++;
    this.inflight.clear();
    for (const [k, e] of this.entries) if (match(e.value, k)) this.remove(k, e);
  }

  /**
   * Forgets the entries tagged with one of ids, and keeps loads under way from storing a value
   * with such a tag. Other loads still store theirs: log appends of running builds arrive many
   * times a second and must not keep every other page from being cached.
   */
  deleteTagged(ids: readonly number[]): void {
    const set = new Set(ids);
    this.tick++;
    for (const id of ids) this.tagTicks.set(id, this.tick);
    // Requests from now on start their own loads instead of joining older ones.
    this.inflight.clear();
    for (const [k, e] of this.entries) if (e.tags.some((t) => set.has(t))) this.remove(k, e);
    if (this.tagTicks.size > 10_000) this.clear();
  }

  delete(key: string): void {
    this.generation++;
    this.inflight.delete(key);
    const e = this.entries.get(key);
    if (e) this.remove(key, e);
  }

  get size(): number {
    return this.entries.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }
}

// The builds whose build() call is in flight, and a way to wait until there are none. The
// watchers leave these builds alone, and hold a running build's answer back while dispatches
// are in flight (up to a limit): one event loop serves both, and with 100 builds dispatched at
// once the watchers' reactions to the first ones (a database write, a log pull each) delayed
// the build() calls of the last ones.
export class InFlight {
  private readonly ids = new Set<number>();
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.ids.size;
  }

  has(id: number): boolean {
    return this.ids.has(id);
  }

  add(id: number): void {
    this.ids.add(id);
  }

  delete(id: number): void {
    if (!this.ids.delete(id) || this.ids.size > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves when nothing is in flight, or after `maxMs` at the latest. */
  quiet(maxMs: number): Promise<void> {
    if (this.ids.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      }, maxMs);
      this.waiters.push(done);
    });
  }
}

// Live-log streams each user may hold open at once (in this process): each one keeps a
// connection, a LISTEN watcher and a timer, so one user with many tabs or a script cannot
// take them all.
export const DEFAULT_LIVE_STREAMS_PER_USER = 20;

export class StreamSlots {
  private open = new Map<number, number>();
  constructor(readonly limit: number) {}

  /** A release function when the user has a slot left, else null. Release once, when the stream closes. */
  take(userId: number): (() => void) | null {
    const n = this.open.get(userId) ?? 0;
    if (n >= this.limit) return null;
    this.open.set(userId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(userId) ?? 1) - 1;
      if (left > 0) this.open.set(userId, left);
      else this.open.delete(userId);
    };
  }

  count(userId: number): number {
    return this.open.get(userId) ?? 0;
  }
}

// DISPATCHING → BUILDING for accepted builds, batched: one UPDATE at a time for every build
// accepted meanwhile. With 100 build() answers arriving together, 100 separate UPDATEs queued
// behind each other (and behind the watchers' queries) in the pool.
import { markBuildsStarted, type Queryable } from "@lexbuilder/shared-models/db";

interface Pending {
  id: number;
  cookie: string;
  resolve: (moved: boolean) => void;
  reject: (err: unknown) => void;
}

export class StartMarker {
  private pending: Pending[] = [];
  private running = false;

  constructor(private readonly db: Queryable) {}

  /** Resolves true when the build moved to BUILDING (false: it was no longer DISPATCHING with this cookie). */
  mark(id: number, cookie: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ id, cookie, resolve, reject });
      if (!this.running) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0);
        try {
          const moved = new Set(await markBuildsStarted(this.db, batch.map(({ id, cookie }) => ({ id, cookie }))));
          for (const p of batch) p.resolve(moved.has(p.id));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

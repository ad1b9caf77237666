// Retention: per project keep_last / keep_days of finished builds' images and logs; never a
// milestone build nor the project's latest success (listPrunableBuilds decides). Files first,
// then rows: a crash between the two leaves rows pointing at missing files, which the next run
// removes; never files without rows.
import { rm } from "node:fs/promises";
import { resolve, sep } from "node:path";
import { listPrunableBuilds, pruneBuildRows } from "@lexbuilder/shared-models/db";
import { errorMessage, type MasterContext } from "./context.js";

export class Janitor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly ctx: MasterContext,
    private readonly now: () => Date = () => new Date(),
  ) {}

  start(): void {
    void this.run();
    this.timer = setInterval(() => void this.run(), this.ctx.config.janitorMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One pass; returns how many builds it pruned. */
  run(): Promise<number> {
    if (this.running) return this.running;
    this.running = this.pass()
      .catch((err) => {
        this.ctx.log.error({ err: errorMessage(err) }, "retention pass failed; it runs again later");
        return 0;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async pass(): Promise<number> {
    const { pool, config, log } = this.ctx;
    const root = resolve(config.artifactsDir);
    const inside = (rel: string) => {
      const abs = resolve(root, rel);
      return abs.startsWith(root + sep) ? abs : null;
    };
    let pruned = 0;
    for (;;) {
      const batch = await listPrunableBuilds(pool, this.now(), 200);
      if (batch.length === 0) return pruned;
      for (const b of batch) {
        if (this.ctx.stopping()) return pruned;
        for (const p of b.storedPaths) {
          const abs = inside(p);
          if (abs) await rm(abs, { force: true });
        }
        if (b.artifactDir) {
          const abs = inside(b.artifactDir);
          if (abs) await rm(abs, { recursive: true, force: true });
        }
        await pruneBuildRows(pool, b.buildId);
        pruned++;
        log.info({ build: b.buildId, project: b.projectName, files: b.storedPaths.length, logBytes: b.logSize }, "pruned by retention");
      }
    }
  }
}

// Queue → idle builder. Woken by NOTIFY on builds and builders (no polling delay) and by the
// periodic sweep. One transaction claims a build for every free builder at once
// (claimQueuedBuilds: DISPATCHING recorded and the builders taken before any RPC); the build()
// calls then run in parallel. On RPC failure the job goes back to the queue and the builder is
// counted (Judge.dispatchFailed).
import {
  claimQueuedBuilds,
  listBuildersForQueuedBuilds,
  type ClaimedBuild,
  type Pool,
} from "@lexbuilder/shared-models/db";
import { RpcFault } from "@lexbuilder/shared-models/protocol";
import { StartMarker } from "./start-marker.js";
import { PassRunner } from "./passes.js";
import { errorMessage, type MasterContext } from "./context.js";
import type { Judge } from "./judge.js";

export class Dispatcher {
  private readonly runner: PassRunner;
  private readonly inflight = new Set<Promise<void>>();

  private readonly pool: Pool;
  private readonly starts: StartMarker;

  /** `pool`: the dispatcher's own connections, so claims never queue behind the watchers' queries. */
  constructor(
    private readonly ctx: MasterContext,
    private readonly judge: Judge,
    pool?: Pool,
  ) {
    this.pool = pool ?? ctx.pool;
    this.starts = new StartMarker(this.pool);
    this.runner = new PassRunner(ctx, "dispatch", () => this.pass());
  }

  /** Runs a dispatch pass now, or right after the one in progress. */
  wake(): void {
    this.runner.wake();
  }

  private async pass(): Promise<void> {
    const { pool } = this;
    let free = (await listBuildersForQueuedBuilds(pool)).filter((b) => this.ctx.clients(b.id));
    // Claims until nothing more fits: a claim leaves out builders another claimer locked.
    while (free.length > 0 && !this.ctx.stopping()) {
      const t0 = performance.now();
      const jobs = await claimQueuedBuilds(pool, free.map((b) => b.id));
      if (jobs.length === 0) return;
      const claimMs = Math.round(performance.now() - t0);
      const byId = new Map(free.map((b) => [b.id, b]));
      for (const job of jobs) {
        const b = byId.get(job.builderId)!;
        this.ctx.dispatching.add(job.id);
        const p = this.send(b, job, claimMs).finally(() => {
          this.ctx.dispatching.delete(job.id);
          this.inflight.delete(p);
        });
        this.inflight.add(p);
      }
      const taken = new Set(jobs.map((j) => j.builderId));
      free = free.filter((b) => !taken.has(b.id));
    }
  }

  private async send(builder: { id: number; name: string }, job: ClaimedBuild, claimMs: number): Promise<void> {
    const { log, metrics } = this.ctx;
    const clients = this.ctx.clients(builder.id);
    const t0 = performance.now();
    // Request → claimed: NOTIFY delivery, the wait for a pass, and the claim itself.
    const claimedAfterMs = Math.max(0, Date.now() - job.requestedAt.getTime());
    try {
      if (!clients) throw new Error("the builder was removed or disabled meanwhile");
      await clients.control.call("build", job.cookie, {
        project: job.projectName,
        configUrl: job.configUrl,
        configRef: job.configRef,
        architecture: job.architecture,
        suite: job.suite,
        env: job.env,
      });
    } catch (err) {
      const why = err instanceof RpcFault ? `fault ${err.faultCode}: ${err.faultString}` : errorMessage(err);
      await this.judge.dispatchFailed(builder, job, why).catch((e) => log.error({ err: errorMessage(e) }, "cannot give a build back"));
      return;
    }
    // Request → accepted, for first attempts (a re-queued job's wait is not dispatch latency).
    const acceptedAfterMs = Math.max(0, Date.now() - job.requestedAt.getTime());
    if (job.attempt === 1) metrics.dispatchLatency.observe(acceptedAfterMs / 1000);
    const rpcMs = Math.round(performance.now() - t0);
    const started = await this.starts.mark(job.id, job.cookie).catch((e) => {
      log.error({ err: errorMessage(e), build: job.id }, "cannot record that the build started; the watcher will");
      return false;
    });
    // Where the dispatch time went (the benchmark reads these).
    const markMs = Math.round(performance.now() - t0) - rpcMs;
    log.info({ build: job.id, cookie: job.cookie, builder: builder.name, started, acceptedAfterMs, claimedAfterMs, claimMs, rpcMs, markMs }, "build dispatched");
  }

  /** Waits for build() calls in flight (at stop). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }
}

// Queue → idle builder. Woken by NOTIFY on builds and builders (no polling delay) and by the
// periodic sweep. Each claim is one transaction (claimNextQueuedBuild: DISPATCHING recorded and
// the builder taken before any RPC); the build() calls then run in parallel. On RPC failure
// the job goes back to the queue and the builder is counted (Judge.dispatchFailed).
import {
  claimNextQueuedBuild,
  markBuildStarted,
  queuedArchitectures,
  listDispatchableBuilders,
  RpcFault,
  type ClaimedBuild,
} from "@lexbuilder/shared-models";
import { PassRunner } from "./passes.js";
import { errorMessage, type MasterContext } from "./context.js";
import type { Judge } from "./judge.js";

export class Dispatcher {
  private readonly runner: PassRunner;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly ctx: MasterContext,
    private readonly judge: Judge,
  ) {
    this.runner = new PassRunner(ctx, "dispatch", () => this.pass());
  }

  /** Runs a dispatch pass now, or right after the one in progress. */
  wake(): void {
    this.runner.wake();
  }

  private async pass(): Promise<void> {
    const { pool } = this.ctx;
    let archs = new Set(await queuedArchitectures(pool));
    if (archs.size === 0) return;
    const builders = await listDispatchableBuilders(pool);
    for (const b of builders) {
      if (this.ctx.stopping() || archs.size === 0) return;
      if (!b.architectures.some((a) => archs.has(a))) continue;
      const clients = this.ctx.clients(b.id);
      if (!clients) continue;
      const job = await claimNextQueuedBuild(pool, b);
      if (!job) {
        // Nothing left for these architectures (or the builder was taken): ask again.
        archs = new Set(await queuedArchitectures(pool));
        continue;
      }
      this.ctx.dispatching.add(job.id);
      const p = this.send(b, job).finally(() => {
        this.ctx.dispatching.delete(job.id);
        this.inflight.delete(p);
      });
      this.inflight.add(p);
    }
  }

  private async send(builder: { id: number; name: string }, job: ClaimedBuild): Promise<void> {
    const { log, metrics, pool } = this.ctx;
    const clients = this.ctx.clients(builder.id);
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
    if (job.attempt === 1) metrics.dispatchLatency.observe(Math.max(0, Date.now() - job.requestedAt.getTime()) / 1000);
    const started = await markBuildStarted(pool, job.id, job.cookie).catch((e) => {
      log.error({ err: errorMessage(e), build: job.id }, "cannot record that the build started; the watcher will");
      return false;
    });
    log.info({ build: job.id, cookie: job.cookie, builder: builder.name, started }, "build dispatched");
  }

  /** Waits for build() calls in flight (at stop). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }
}

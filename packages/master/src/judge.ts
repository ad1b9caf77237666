// The failure policy (launchpad's buildd-manager, measured there for a decade): a few
// consecutive failed scans are glitches; past that they count against the builder and its
// job. A job is re-queued (to another builder) up to a limit, then FAILED with kind
// `builder`; a builder is disabled after repeated counted failures, with the reason stored.
import {
  countBuilderFailure,
  giveBackBuild,
  markBuilderOffline,
  recordScanFailure,
  setBuilderState,
  type ActiveBuild,
} from "@lexbuilder/shared-models/db";
import type { MasterContext } from "./context.js";

export type ScanVerdict = "glitch" | "counted" | "offline";

export class Judge {
  constructor(private readonly ctx: MasterContext) {}

  /**
   * A status scan failed. Up to `scanGlitches` in a row are ignored; the next one counts once:
   * the builder goes OFFLINE, its job (if any) is re-queued counted, and the builder gets a
   * counted failure. Later failures only keep it OFFLINE.
   */
  async scanFailed(builder: { id: number; name: string }, build: ActiveBuild | null, why: string): Promise<ScanVerdict> {
    const { pool, config, log, metrics } = this.ctx;
    metrics.scanFailures++;
    const n = await recordScanFailure(pool, builder.id);
    if (n <= config.scanGlitches) return "glitch";
    if (n > config.scanGlitches + 1) {
      await markBuilderOffline(pool, builder.id);
      return "offline";
    }
    log.warn({ builder: builder.name, failures: n, why }, "builder failed too many scans in a row; counting it");
    await markBuilderOffline(pool, builder.id);
    if (build && build.cookie && !this.ctx.dispatching.has(build.id)) {
      if (build.state === "CANCELLING") {
        // Nothing to re-queue; the canceller ends it at its deadline.
      } else {
        await this.lostJob(builder, build, `The builder ${builder.name} stopped answering (${why}).`, false);
      }
    }
    await this.countAgainstBuilder(builder, `it stopped answering: ${why}`);
    return "counted";
  }

  /**
   * The builder lost or broke the job (wrong cookie, idle, BUILDERFAIL, results gone): re-queue
   * it counted against the job; optionally count it against the builder too.
   */
  async lostJob(builder: { id: number; name: string }, build: ActiveBuild, message: string, countBuilder = true): Promise<void> {
    const { pool, config, log, metrics } = this.ctx;
    if (!build.cookie) return;
    metrics.lostJobs++;
    const outcome = await giveBackBuild(pool, build.id, build.cookie, { counted: true, message, maxRequeues: config.requeueLimit });
    if (outcome === "FAILED") metrics.countFinished("FAILED");
    log.warn({ build: build.id, builder: builder.name, outcome, message }, "job lost on its builder");
    if (countBuilder) await this.countAgainstBuilder(builder, message);
  }

  /** build() failed: the job goes back uncounted (it did not start); the builder is counted and re-checked. */
  async dispatchFailed(builder: { id: number; name: string }, build: { id: number; cookie: string }, why: string): Promise<void> {
    const { pool, config, log, metrics } = this.ctx;
    metrics.dispatchFailures++;
    const outcome = await giveBackBuild(pool, build.id, build.cookie, {
      counted: false,
      message: `The builder ${builder.name} did not accept the build (${why}); it went back to the queue.`,
      maxRequeues: config.requeueLimit,
    });
    log.warn({ build: build.id, builder: builder.name, outcome, why }, "dispatch failed; job given back");
    // Not dispatchable again until a scan sees it idle.
    await setBuilderState(pool, builder.id, "UNKNOWN");
    await this.countAgainstBuilder(builder, `it did not accept a build: ${why}`);
  }

  async countAgainstBuilder(builder: { id: number; name: string }, reason: string): Promise<void> {
    const { pool, config, log } = this.ctx;
    const r = await countBuilderFailure(pool, builder.id, reason, config.builderFailureLimit);
    if (r.disabled) log.error({ builder: builder.name, failures: r.failureCount, reason }, "builder disabled after repeated failures");
  }
}

// Cancelling a build a slave may hold: CANCELLING → abort(cookie) once → the watcher sees
// ABORTING, then WAITING, and ends it CANCELLED + clean. If the builder does not stop the build
// within the deadline (launchpad: 180 s), the build is CANCELLED anyway, the builder released
// and a failure counted against it. (A QUEUED build is cancelled in the database at once.)
import { finishCancel, listBuildsInStates, type ActiveBuild } from "@lexbuilder/shared-models/db";
import { RpcFault, FaultCode } from "@lexbuilder/shared-models/protocol";
import { PassRunner } from "./passes.js";
import { errorMessage, type BuilderClients, type MasterContext } from "./context.js";
import type { Judge } from "./judge.js";

export class Canceller {
  /** Build id → when abort() was accepted. */
  private readonly aborted = new Map<number, number>();
  private readonly runner: PassRunner;

  constructor(
    private readonly ctx: MasterContext,
    private readonly judge: Judge,
  ) {
    this.runner = new PassRunner(ctx, "cancel", () => this.pass());
  }

  wake(): void {
    this.runner.wake();
  }

  private async pass(): Promise<void> {
    const { pool, config, log, metrics } = this.ctx;
    const builds = await listBuildsInStates(pool, ["CANCELLING"]);
    const ids = new Set(builds.map((b) => b.id));
    for (const id of [...this.aborted.keys()]) if (!ids.has(id)) this.aborted.delete(id);
    for (const b of builds) {
      if (this.ctx.dispatching.has(b.id)) continue;
      const clients = b.builderId !== null ? this.ctx.clients(b.builderId) : null;
      if (!b.cookie || !clients) {
        if (await finishCancel(pool, b.id)) metrics.countFinished("CANCELLED");
        continue;
      }
      if (Date.now() - b.updatedAt.getTime() > config.cancelDeadlineMs) {
        const secs = Math.round(config.cancelDeadlineMs / 1000);
        if (await finishCancel(pool, b.id, `The builder ${clients.endpoint.name} did not stop the build within ${secs} s; it was cancelled anyway.`)) {
          metrics.countFinished("CANCELLED");
          log.warn({ build: b.id, builder: clients.endpoint.name }, "cancel deadline passed");
          await this.judge.countAgainstBuilder(
            { id: clients.endpoint.id, name: clients.endpoint.name },
            `it did not stop a cancelled build within ${secs} s`,
          );
        }
        continue;
      }
      await this.abort(b, clients);
    }
  }

  /** Sends abort(cookie) once per build; ends the cancel at once when the slave has nothing running. */
  async abort(build: ActiveBuild, clients: BuilderClients): Promise<void> {
    if (this.aborted.has(build.id) || !build.cookie) return;
    const { pool, log, metrics } = this.ctx;
    try {
      const r = await clients.control.call("abort", build.cookie);
      this.aborted.set(build.id, Date.now());
      log.info({ build: build.id, builder: clients.endpoint.name, state: r.state }, "abort sent");
      if (r.state === "IDLE") {
        if (await finishCancel(pool, build.id)) metrics.countFinished("CANCELLED");
      } else if (r.state === "WAITING") {
        if (await finishCancel(pool, build.id)) metrics.countFinished("CANCELLED");
        await clients.control.call("clean", build.cookie).catch(() => {});
      }
    } catch (err) {
      if (err instanceof RpcFault && err.faultCode === FaultCode.UNKNOWN_COOKIE) {
        // The slave does not have it: nothing runs.
        if (await finishCancel(pool, build.id)) metrics.countFinished("CANCELLED");
        return;
      }
      // WRONG_STATE (already WAITING) or transport trouble: the watcher's next answer decides.
      log.warn({ build: build.id, err: errorMessage(err) }, "abort failed; will retry");
    }
  }
}

// Incremental log pulling for one builder: from the build's stored log size to the size the
// slave reported, over the slave's HTTP log endpoint, appended in chunks guarded by offset (a
// stale pull stops at the first refused append). One pull per build at a time.
import { appendLog, type ActiveBuild } from "@lexbuilder/shared-models/db";
import type { StatusResult } from "@lexbuilder/shared-models/protocol";
import { errorMessage, type BuilderEndpoint, type MasterContext } from "./context.js";
import { slaveGet } from "./slave-http.js";

const LOG_FLUSH_BYTES = 256 * 1024;

export class LogPuller {
  private readonly pulling = new Map<number, Promise<void>>();

  constructor(
    private readonly ctx: MasterContext,
    private readonly endpoint: BuilderEndpoint,
  ) {}

  /** Pulls what the slave has beyond the stored log; joins a pull already running for the build. */
  pull(build: ActiveBuild, s: StatusResult): Promise<void> {
    const target = Number(s.logSize ?? 0);
    if (!Number.isFinite(target) || target <= build.logSize) return Promise.resolve();
    const running = this.pulling.get(build.id);
    if (running) return running;
    const p = this.pullRange(build.id, build.cookie!, build.logSize, target).finally(() => this.pulling.delete(build.id));
    this.pulling.set(build.id, p);
    return p;
  }

  private async pullRange(buildId: number, cookie: string, from: number, target: number): Promise<void> {
    const { pool, log, config } = this.ctx;
    let offset = from;
    try {
      const res = await slaveGet(this.endpoint.url, `/builds/${encodeURIComponent(cookie)}/log?offset=${offset}`, this.endpoint.token, config.controlTimeoutMs);
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pendingBytes === 0) return true;
        const buf = Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        const next = await appendLog(pool, buildId, offset, buf);
        if (next === null) return false; // someone else appended (a stale pull): stop
        offset = next;
        return true;
      };
      for await (const chunk of res as AsyncIterable<Buffer>) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= LOG_FLUSH_BYTES && !(await flush())) {
          res.destroy();
          return;
        }
      }
      await flush();
    } catch (err) {
      log.warn({ builder: this.endpoint.name, build: buildId, err: errorMessage(err), offset, target }, "cannot pull the build log; will retry");
    }
  }
}

// One long-poll loop per enabled builder: status(knownVersion, 30) with a call timeout. Every
// answer updates the builder's state and last contact, and is reconciled with what the
// database says the builder holds: the cookie is checked on every answer (another cookie or
// IDLE while a build is held = lost job → re-queued), log bytes are pulled as logSize grows,
// and a WAITING slave's result moves the build on (OK → COLLECTING → collector; BUILDFAIL,
// CONFIGFAIL → FAILED; BUILDERFAIL → re-queued, counted; ABORTED → CANCELLED when cancelling).
import {
  appendLog,
  failBuild,
  finishCancel,
  getBuilderCurrentBuild,
  giveBackBuild,
  listBuildersWithTokens,
  getBuilderWithToken,
  markBuildStarted,
  markCollecting,
  recordBuilderContact,
  setConfigRevision,
  updateBuilderInfo,
  RpcFault,
  type ActiveBuild,
  type Builder,
  type StatusResult,
} from "@lexbuilder/shared-models";
import { BuilderClients, errorMessage, sleep, type MasterContext } from "./context.js";
import type { Judge } from "./judge.js";
import type { Collector } from "./collector.js";
import type { Canceller } from "./canceller.js";
import { slaveGet } from "./slave-http.js";

const LOG_FLUSH_BYTES = 256 * 1024;
/** How often an unchanged builder's last contact is written. */
const CONTACT_REFRESH_MS = 60_000;
/**
 * While a build runs, every write to its log moves the slave's version, so a long poll answers
 * at once; answers are taken at most this often (each costs database work and a log pull; the
 * next answer carries everything that happened meanwhile, at most this much later).
 */
const BUILDING_ANSWER_MS = 250;

export interface WatcherDeps {
  judge: Judge;
  collector: Collector;
  canceller: Canceller;
  /** The dispatcher's wake-up (a builder became idle). */
  wakeDispatcher: () => void;
}

export class WatcherPool {
  private readonly watches = new Map<number, BuilderWatch>();
  private syncing: Promise<void> | null = null;
  private syncAgain = false;

  constructor(
    private readonly ctx: MasterContext,
    private readonly deps: WatcherDeps,
  ) {}

  clients(builderId: number): BuilderClients | null {
    return this.watches.get(builderId)?.clients ?? null;
  }

  get size(): number {
    return this.watches.size;
  }

  /** Re-reads every builder: starts loops for new/enabled ones, stops removed/disabled ones. */
  sync(): Promise<void> {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.syncAgain = false;
          const builders = await listBuildersWithTokens(this.ctx.pool);
          const seen = new Set<number>();
          for (const b of builders) {
            seen.add(b.id);
            this.apply(b);
          }
          for (const id of [...this.watches.keys()]) if (!seen.has(id)) this.stopOne(id);
        } while (this.syncAgain && !this.ctx.stopping());
      } catch (err) {
        this.ctx.log.error({ err: errorMessage(err) }, "cannot read the builders; the sweep will try again");
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  /** One builder changed (NOTIFY builders {id}). */
  async syncOne(id: number): Promise<void> {
    try {
      const b = await getBuilderWithToken(this.ctx.pool, id);
      if (!b) this.stopOne(id);
      else this.apply(b);
    } catch (err) {
      this.ctx.log.error({ err: errorMessage(err) }, "cannot read a builder; the sweep will try again");
    }
  }

  private apply(b: Builder): void {
    if (this.ctx.stopping()) return;
    const current = this.watches.get(b.id);
    // A disabled builder is still watched while it holds a build, so that build can end.
    if (!b.enabled && b.currentBuildId === null) {
      if (current) this.stopOne(b.id);
      return;
    }
    if (current && current.clients.endpoint.url === b.url && current.clients.endpoint.token === b.token) {
      current.noteRow(b.state, b.currentBuildId);
      return;
    }
    if (current) this.stopOne(b.id);
    const w = new BuilderWatch(this.ctx, this.deps, { id: b.id, name: b.name, url: b.url, token: b.token });
    this.watches.set(b.id, w);
    w.start();
  }

  private stopOne(id: number): void {
    const w = this.watches.get(id);
    if (!w) return;
    this.watches.delete(id);
    w.stop();
  }

  async stop(): Promise<void> {
    const all = [...this.watches.values()];
    this.watches.clear();
    for (const w of all) w.stop();
    await Promise.allSettled(all.map((w) => w.done));
  }
}

export class BuilderWatch {
  readonly clients: BuilderClients;
  done: Promise<void> = Promise.resolve();
  private knownVersion: number | null = null;
  private stopped = false;
  private lastInfoAt = 0;
  private lastState: string | null = null;
  private lastContactWrite = 0;
  /** The last reconcile found no build held and nothing stray on the slave. */
  private holdsNothing = false;
  private readonly pulling = new Map<number, Promise<void>>();
  /** "<build id> <revision>" last written, so an unchanged revision costs no query. */
  private revisionWritten = "";

  constructor(
    private readonly ctx: MasterContext,
    private readonly deps: WatcherDeps,
    endpoint: { id: number; name: string; url: string; token: string },
  ) {
    this.clients = new BuilderClients(endpoint, ctx.config);
  }

  private get id(): number {
    return this.clients.endpoint.id;
  }
  private get name(): string {
    return this.clients.endpoint.name;
  }

  start(): void {
    this.done = this.loop().catch((err) => this.ctx.log.error({ err: errorMessage(err), builder: this.name }, "builder watch ended"));
  }

  stop(): void {
    this.stopped = true;
    this.clients.close();
  }

  /** The builder's row changed (NOTIFY): if it no longer matches what we saw, look properly next time. */
  noteRow(state: string, currentBuildId: number | null): void {
    if (state !== this.lastState || currentBuildId !== null) this.holdsNothing = false;
    // Someone else wrote the builder's state: the next answer writes ours back.
    if (state !== this.lastState) this.lastContactWrite = 0;
  }

  private active(): boolean {
    return !this.stopped && !this.ctx.stopping();
  }

  private async loop(): Promise<void> {
    const { config, log } = this.ctx;
    while (this.active()) {
      let status: StatusResult;
      try {
        if (Date.now() - this.lastInfoAt >= config.infoRefreshMs) await this.refreshInfo();
        status =
          this.knownVersion === null
            ? await this.clients.poll.call("status")
            : await this.clients.poll.call("status", this.knownVersion, config.statusWaitSeconds);
      } catch (err) {
        if (!this.active()) return;
        await this.scanFailed(err);
        continue;
      }
      if (!this.active()) return;
      const answeredAt = Date.now();
      try {
        // Dispatches go first; a running build's news can wait a moment.
        if (status.state === "BUILDING") await this.ctx.dispatching.quiet(BUILDING_ANSWER_MS);
        await this.onStatus(status);
        if (status.state === "BUILDING") await sleep(Math.max(0, answeredAt + BUILDING_ANSWER_MS - Date.now()));
      } catch (err) {
        if (!this.active()) return;
        // A database error: nothing was decided; look again shortly.
        log.error({ err: errorMessage(err), builder: this.name }, "cannot act on a builder's status; retrying");
        this.knownVersion = null;
        await sleep(1000);
      }
    }
  }

  private async scanFailed(err: unknown): Promise<void> {
    const why = err instanceof RpcFault ? `fault ${err.faultCode}: ${err.faultString}` : errorMessage(err);
    this.ctx.log.warn({ builder: this.name, err: why }, "builder scan failed");
    this.knownVersion = null;
    this.lastInfoAt = 0;
    this.lastState = null;
    this.holdsNothing = false;
    try {
      const build = await getBuilderCurrentBuild(this.ctx.pool, this.id);
      await this.deps.judge.scanFailed({ id: this.id, name: this.name }, build, why);
    } catch (e) {
      this.ctx.log.error({ err: errorMessage(e), builder: this.name }, "cannot record a scan failure");
    }
    await sleep(this.ctx.config.scanRetryMs);
  }

  private async refreshInfo(): Promise<void> {
    const info = await this.clients.control.call("info");
    this.lastInfoAt = Date.now();
    const changed = await updateBuilderInfo(this.ctx.pool, this.id, {
      architectures: Array.isArray(info.architectures) ? info.architectures.map(String) : [],
      info: info as unknown as Record<string, unknown>,
      ready: info.ready === true,
      notReadyReason: info.notReadyReason ?? null,
    });
    if (changed) this.deps.wakeDispatcher();
  }

  private async onStatus(s: StatusResult): Promise<void> {
    const { pool } = this.ctx;
    // An idle builder whose long poll ran out with nothing new: no database work, except
    // refreshing its last contact now and then (1000 idle builders stay cheap).
    const unchanged = s.version === this.knownVersion && s.state === this.lastState;
    const contactFresh = Date.now() - this.lastContactWrite < CONTACT_REFRESH_MS;
    if (unchanged && this.holdsNothing && contactFresh) return;
    // The row is written when the state changes (or to refresh the last contact), not for every
    // log line of a running build.
    if (s.state !== this.lastState || !contactFresh) {
      await recordBuilderContact(pool, this.id, { state: s.state, statusVersion: s.version });
      this.lastContactWrite = Date.now();
    }
    this.knownVersion = s.version;
    await this.reconcile(s);
    // Newly idle: there may be work for it (the NOTIFY does this too; this is the fast path).
    if (s.state === "IDLE" && this.lastState !== "IDLE") this.deps.wakeDispatcher();
    this.lastState = s.state;
  }

  /** What the database says this builder holds, against what the slave reports. */
  async reconcile(s: StatusResult): Promise<void> {
    const { pool, log } = this.ctx;
    const build = await getBuilderCurrentBuild(pool, this.id);
    this.holdsNothing = !build && (s.state === "IDLE" || !s.cookie);
    if (!build || !build.cookie) return this.stray(s);
    if (this.ctx.dispatching.has(build.id)) return; // the dispatcher's build() is in flight
    const ours = s.cookie === build.cookie && s.state !== "IDLE";

    if (build.state === "DISPATCHING") {
      if (!ours) {
        // The master stopped between recording DISPATCHING and the slave accepting: give it back.
        await giveBackBuild(pool, build.id, build.cookie, {
          counted: false,
          message: `The builder ${this.name} never accepted the build; it went back to the queue.`,
          maxRequeues: this.ctx.config.requeueLimit,
        });
        return this.stray(s);
      }
      if (!(await markBuildStarted(pool, build.id, build.cookie))) return;
      build.state = "BUILDING";
    }

    if (!ours) {
      if (build.state === "CANCELLING") {
        await finishCancel(pool, build.id);
        this.ctx.metrics.countFinished("CANCELLED");
        return this.stray(s);
      }
      const why =
        s.state === "IDLE"
          ? `The builder ${this.name} is idle and no longer has build ${build.cookie} (was it restarted?).`
          : `The builder ${this.name} reports build ${s.cookie ?? "(none)"} instead of ${build.cookie}.`;
      log.warn({ builder: this.name, build: build.id, expected: build.cookie, reported: s.cookie, state: s.state }, "cookie mismatch: job lost");
      await this.deps.judge.lostJob({ id: this.id, name: this.name }, build, why);
      return this.stray(s);
    }

    if (s.configRevision && this.revisionWritten !== `${build.id} ${s.configRevision}`) {
      await setConfigRevision(pool, build.id, build.cookie, s.configRevision);
      this.revisionWritten = `${build.id} ${s.configRevision}`;
    }
    await this.pullLog(build, s);

    switch (build.state) {
      case "BUILDING":
        if (s.state === "WAITING") await this.finished(build, s);
        return;
      case "COLLECTING":
        if (s.state === "WAITING") this.deps.collector.ensure(build, s.files ?? [], this.clients);
        return;
      case "CANCELLING":
        if (s.state === "BUILDING") await this.deps.canceller.abort(build, this.clients);
        else if (s.state === "WAITING") {
          if (await finishCancel(pool, build.id)) this.ctx.metrics.countFinished("CANCELLED");
          await this.clean(build.cookie);
        }
        return;
      default:
        return;
    }
  }

  private async finished(build: ActiveBuild, s: StatusResult): Promise<void> {
    const { pool, metrics, log } = this.ctx;
    const cookie = build.cookie!;
    let detectedAfterMs: number | undefined;
    if (s.finishedAt) {
      const t = Date.parse(s.finishedAt);
      if (Number.isFinite(t)) {
        detectedAfterMs = Math.max(0, Date.now() - t);
        metrics.finishDetection.observe(detectedAfterMs / 1000);
      }
    }
    const message = s.message ?? "";
    log.info({ build: build.id, cookie, result: s.result, builder: this.name, detectedAfterMs }, "build finished on its builder");
    switch (s.result) {
      case "OK":
        if (await markCollecting(pool, build.id, cookie, { configRevision: s.configRevision ?? null })) {
          build.state = "COLLECTING";
          this.deps.collector.ensure(build, s.files ?? [], this.clients);
        }
        return;
      case "BUILDFAIL":
        if (await failBuild(pool, build.id, cookie, "build", message || "The build failed; see the log.", "BUILDFAIL")) metrics.countFinished("FAILED");
        break;
      case "CONFIGFAIL":
        if (await failBuild(pool, build.id, cookie, "config", message || "The configuration could not be fetched; see the log.", "CONFIGFAIL"))
          metrics.countFinished("FAILED");
        break;
      case "ABORTED":
        // Aborted without a cancel (e.g. the slave's own build timeout).
        if (await failBuild(pool, build.id, cookie, "build", message || "The build was aborted on the builder.", "ABORTED")) metrics.countFinished("FAILED");
        break;
      case "BUILDERFAIL":
      default:
        await this.deps.judge.lostJob(
          { id: this.id, name: this.name },
          build,
          `The builder ${this.name} failed the build${message ? `: ${message}` : ""}.`,
        );
        break;
    }
    await this.clean(cookie);
  }

  /** The slave has something the database does not give it: abort or clean it. */
  private async stray(s: StatusResult): Promise<void> {
    if (!s.cookie) return;
    try {
      if (s.state === "BUILDING") {
        this.ctx.log.warn({ builder: this.name, cookie: s.cookie }, "aborting a build the master does not expect");
        await this.clients.control.call("abort", s.cookie);
      } else if (s.state === "WAITING") {
        await this.clients.control.call("clean", s.cookie);
      }
    } catch (err) {
      this.ctx.log.warn({ builder: this.name, cookie: s.cookie, err: errorMessage(err) }, "cannot tidy a stray build on the builder");
    }
  }

  async clean(cookie: string): Promise<void> {
    try {
      await this.clients.control.call("clean", cookie);
    } catch (err) {
      // The next status shows what is left; stray() cleans it then.
      this.ctx.log.warn({ builder: this.name, cookie, err: errorMessage(err) }, "clean failed; will retry");
    }
  }

  /** Pulls the log from the build's current size to what the slave reported (one pull at a time). */
  async pullLog(build: ActiveBuild, s: StatusResult): Promise<void> {
    const target = Number(s.logSize ?? 0);
    if (!Number.isFinite(target) || target <= build.logSize) return;
    const running = this.pulling.get(build.id);
    if (running) return running;
    const p = this.doPullLog(build.id, build.cookie!, build.logSize, target).finally(() => this.pulling.delete(build.id));
    this.pulling.set(build.id, p);
    return p;
  }

  private async doPullLog(buildId: number, cookie: string, from: number, target: number): Promise<void> {
    const { pool, log, config } = this.ctx;
    let offset = from;
    try {
      const res = await slaveGet(
        this.clients.endpoint.url,
        `/builds/${encodeURIComponent(cookie)}/log?offset=${offset}`,
        this.clients.endpoint.token,
        config.controlTimeoutMs,
      );
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
      log.warn({ builder: this.name, build: buildId, err: errorMessage(err), offset, target }, "cannot pull the build log; will retry");
    }
  }
}

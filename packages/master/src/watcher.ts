// One long-poll loop per enabled builder: status(knownVersion, 30) with a call timeout. Every
// answer updates the builder's state and last contact; reconcile() decides what the answer
// means for the build the database says the builder holds, and this module carries that out
// (the database writes through build-transitions, the slave calls, the log pull).
import {
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
  type ActiveBuild,
  type BuilderWithToken,
} from "@lexbuilder/shared-models/db";
import { RpcFault, type StatusResult } from "@lexbuilder/shared-models/protocol";
import { BuilderClients, errorMessage, sleep, type MasterContext } from "./context.js";
import type { Judge } from "./judge.js";
import type { Collector } from "./collector.js";
import type { Canceller } from "./canceller.js";
import { LogPuller } from "./log-puller.js";
import { reconcile, type Action, type Step, type Tidy } from "./reconcile.js";
import { SerialRunner } from "./serial-runner.js";

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
  private readonly syncRunner: SerialRunner;

  constructor(
    private readonly ctx: MasterContext,
    private readonly deps: WatcherDeps,
  ) {
    this.syncRunner = new SerialRunner(() => this.syncOnce(), {
      stopping: () => ctx.stopping(),
      onError: (err) => ctx.log.error({ err: errorMessage(err) }, "cannot read the builders; the sweep will try again"),
    });
  }

  clients(builderId: number): BuilderClients | null {
    return this.watches.get(builderId)?.clients ?? null;
  }

  get size(): number {
    return this.watches.size;
  }

  /** Re-reads every builder: starts loops for new/enabled ones, stops removed/disabled ones. */
  sync(): Promise<void> {
    return this.syncRunner.run();
  }

  private async syncOnce(): Promise<void> {
    const builders = await listBuildersWithTokens(this.ctx.pool);
    const seen = new Set<number>();
    for (const b of builders) {
      seen.add(b.id);
      this.apply(b);
    }
    for (const id of [...this.watches.keys()]) if (!seen.has(id)) this.stopOne(id);
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

  private apply(b: BuilderWithToken): void {
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
  private readonly logs: LogPuller;
  /** "<build id> <revision>" last written, so an unchanged revision costs no query. */
  private revisionWritten = "";

  constructor(
    private readonly ctx: MasterContext,
    private readonly deps: WatcherDeps,
    endpoint: { id: number; name: string; url: string; token: string },
  ) {
    this.clients = new BuilderClients(endpoint, ctx.config);
    this.logs = new LogPuller(ctx, endpoint);
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
        if (this.knownVersion !== null) log.debug({ builder: this.name, knownVersion: this.knownVersion }, "long poll for the builder's news");
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
    const build = await getBuilderCurrentBuild(this.ctx.pool, this.id);
    this.holdsNothing = !build && (s.state === "IDLE" || !s.cookie);
    const action = reconcile({
      build,
      status: s,
      dispatchInFlight: build !== null && this.ctx.dispatching.has(build.id),
      builderName: this.name,
      now: Date.now(),
    });
    if (action.kind !== "none") await this.apply(action, build!, s);
  }

  private async apply(action: Exclude<Action, { kind: "none" }>, build: ActiveBuild, s: StatusResult): Promise<void> {
    const { pool, config, log, metrics } = this.ctx;
    const builder = { id: this.id, name: this.name };
    switch (action.kind) {
      case "tidy":
        return this.tidy(action.tidy);
      case "requeueUnaccepted":
        await giveBackBuild(pool, build.id, build.cookie!, { counted: false, message: action.message, maxRequeues: config.requeueLimit });
        return this.tidy(action.tidy);
      case "finishCancel":
        if (await finishCancel(pool, build.id)) metrics.countFinished("CANCELLED");
        return this.tidy(action.tidy);
      case "lost":
        log.warn({ builder: this.name, build: build.id, expected: build.cookie, reported: s.cookie, state: s.state }, "cookie mismatch: job lost");
        await this.deps.judge.lostJob(builder, build, action.message);
        return this.tidy(action.tidy);
      case "follow":
        if (action.markStarted) {
          if (!(await markBuildStarted(pool, build.id, build.cookie!))) return;
          build.state = "BUILDING";
        }
        if (s.configRevision && this.revisionWritten !== `${build.id} ${s.configRevision}`) {
          await setConfigRevision(pool, build.id, build.cookie!, s.configRevision);
          this.revisionWritten = `${build.id} ${s.configRevision}`;
        }
        await this.logs.pull(build, s);
        return this.take(action.step, build, s);
    }
  }

  /** The next step of a build the slave holds under our cookie. */
  private async take(step: Step, build: ActiveBuild, s: StatusResult): Promise<void> {
    const { pool, metrics, log } = this.ctx;
    const cookie = build.cookie!;
    if (step.kind === "startCollecting" || step.kind === "fail" || step.kind === "builderFailed") {
      const detectedAfterMs = step.detectedAfterMs ?? undefined;
      if (detectedAfterMs !== undefined) metrics.finishDetection.observe(detectedAfterMs / 1000);
      log.info({ build: build.id, cookie, result: s.result, builder: this.name, detectedAfterMs }, "build finished on its builder");
    }
    switch (step.kind) {
      case "none":
        return;
      case "startCollecting":
        if (await markCollecting(pool, build.id, cookie, { configRevision: s.configRevision ?? null })) {
          build.state = "COLLECTING";
          this.deps.collector.ensure(build, s.files ?? [], this.clients);
        }
        return;
      case "collect":
        this.deps.collector.ensure(build, s.files ?? [], this.clients);
        return;
      case "fail":
        if (await failBuild(pool, build.id, cookie, step.failureKind, step.message, step.result)) metrics.countFinished("FAILED");
        return this.clean(cookie);
      case "builderFailed":
        await this.deps.judge.lostJob({ id: this.id, name: this.name }, build, step.message);
        return this.clean(cookie);
      case "abort":
        return this.deps.canceller.abort(build, this.clients);
      case "finishCancel":
        if (await finishCancel(pool, build.id)) metrics.countFinished("CANCELLED");
        return this.clean(cookie);
    }
  }

  /** The slave has something the database does not give it: abort or clean it. */
  private async tidy(t: Tidy): Promise<void> {
    if (!t) return;
    try {
      if (t.call === "abort") this.ctx.log.warn({ builder: this.name, cookie: t.cookie }, "aborting a build the master does not expect");
      await this.clients.control.call(t.call, t.cookie);
    } catch (err) {
      this.ctx.log.warn({ builder: this.name, cookie: t.cookie, err: errorMessage(err) }, "cannot tidy a stray build on the builder");
    }
  }

  async clean(cookie: string): Promise<void> {
    try {
      await this.clients.control.call("clean", cookie);
    } catch (err) {
      // The next status shows what is left; tidy() cleans it then.
      this.ctx.log.warn({ builder: this.name, cookie, err: errorMessage(err) }, "clean failed; will retry");
    }
  }
}

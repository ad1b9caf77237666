// The slave's state machine (launchpad-buildd's): one build at a time, its results held until
// the master says clean. Every change of state or log moves `version`, which wakes long polls.
// The state is kept in <state>/state.json (written atomically) so a restart keeps WAITING
// results and turns an interrupted build into BUILDERFAIL instead of forgetting it.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@lexbuilder/shared-models/logger";
import {
  FaultCode,
  LOG_TAIL_BYTES,
  MAX_STATUS_WAIT_SECONDS,
  RpcFault,
  type BuildAccepted,
  type BuildArgs,
  type BuildResult,
  type ResultFile,
  type SlaveState,
  type StatusResult,
} from "@lexbuilder/shared-models/protocol";
import { checkConfigUrl } from "@lexbuilder/shared-models/rules";
import { assertSlaveTransition } from "@lexbuilder/shared-models/states";
import { BuildLog, readTail, scrub } from "./buildlog.js";
import type { ResultCache } from "./cache.js";
import { LiveBuildJob, type Outcome } from "./livebuild.js";
import { killBuild, mountsUnder, unmountUnder } from "./processes.js";
import type { Readiness } from "./readiness.js";
import type { Isolation } from "./isolation.js";

/** What the slave remembers about its one build. */
export interface BuildRecord {
  cookie: string;
  args: BuildArgs;
  marker: string;
  workspace: string;
  logPath: string;
  startedAt: string;
  finishedAt?: string;
  result?: BuildResult;
  message?: string;
  configRevision?: string;
  files?: ResultFile[];
  logSize?: number;
}

interface Persisted {
  version: number;
  state: SlaveState;
  build: BuildRecord | null;
}

export interface BuilderOptions {
  stateDir: string;
  cache: ResultCache;
  lb: string;
  allowedSchemes: string[];
  architectures: string[];
  buildTimeoutSeconds: number;
  abortDeadlineSeconds: number;
  minFreeDiskBytes: number;
  cacheMaxAgeSeconds: number;
  defaultSuite?: string;
  /** Strings never to appear in a build log (the token). */
  secrets: string[];
  isolation: Isolation;
  readiness(): Readiness;
  log: Logger;
}

/** Name of the build log among a build's result files. */
export const LOG_FILE_NAME = "build.log";

/** Characters XML 1.0 cannot carry (terminal escapes in build output, mostly). */
function xmlSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, "\ufffd");
}

export class Builder {
  private state: SlaveState = "IDLE";
  private version = 1;
  private current: BuildRecord | null = null;
  private job: LiveBuildJob | null = null;
  private buildLog: BuildLog | null = null;
  private running: Promise<void> | null = null;
  private cleaning: Promise<void> | null = null;
  private shuttingDown = false;
  private readonly waiters = new Set<() => void>();
  /** Polls to answer on the next turn of the loop (see bump). */
  private readonly toWake = new Set<() => void>();
  private wakeScheduled = false;
  private persistTimer: NodeJS.Timeout | null = null;
  private readonly statePath: string;
  private readonly buildsDir: string;

  constructor(private readonly o: BuilderOptions) {
    this.statePath = join(o.stateDir, "state.json");
    this.buildsDir = join(o.stateDir, "builds");
  }

  // -------------------------------------------------------------------------------------------
  // Start-up.

  /** Load state.json; finish off a build the previous process was running. */
  async restore(): Promise<void> {
    mkdirSync(this.buildsDir, { recursive: true, mode: 0o755 });
    await this.o.cache.init();
    let saved: Persisted | null = null;
    try {
      saved = JSON.parse(readFileSync(this.statePath, "utf8")) as Persisted;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        this.o.log.error({ err }, "state.json is unreadable; starting IDLE");
      }
    }
    if (!saved) {
      this.persist();
      return;
    }
    // Past any version a client may have seen from the previous process (persisted ≤ 1 s late).
    this.version = (saved.version | 0) + 1000;
    const known = ["IDLE", "BUILDING", "ABORTING", "WAITING"];
    if (!known.includes(saved.state) || (saved.state !== "IDLE" && !saved.build?.cookie)) {
      this.o.log.error({ state: saved.state }, "state.json makes no sense; starting IDLE");
      saved = { version: saved.version, state: "IDLE", build: null };
    }
    this.state = saved.state;
    this.current = saved.state === "IDLE" ? null : saved.build;
    if ((this.state === "BUILDING" || this.state === "ABORTING") && this.current) {
      const build = this.current;
      const wasAborting = this.state === "ABORTING";
      this.o.log.warn({ cookie: build.cookie }, "the slave restarted during a build; stopping what is left of it");
      const kill = await killBuild({ groups: [], marker: build.marker }, this.o.abortDeadlineSeconds * 1000);
      const mounts = await unmountUnder(build.workspace);
      let outcome: Outcome;
      if (kill.survivors.length || mounts.remaining.length) {
        outcome = {
          result: "BUILDERFAIL",
          message: `The slave restarted during the build and could not stop it (pids ${kill.survivors.join(", ") || "none"}, mounts ${mounts.remaining.join(", ") || "none"}); the builder needs attention.`,
          files: [],
        };
      } else if (wasAborting) {
        outcome = { result: "ABORTED", message: "The build was aborted (the slave restarted while aborting it).", files: [] };
      } else {
        outcome = { result: "BUILDERFAIL", message: "The slave restarted during the build, which stopped it; retry the build.", files: [] };
      }
      try {
        this.buildLog = new BuildLog(build.logPath, this.o.secrets, () => this.bump());
        if (kill.signalled) this.buildLog.line(`Stopped ${kill.signalled} process(es) left from before the restart.`);
      } catch {
        this.buildLog = null;
      }
      await this.finish(outcome);
    } else {
      this.persist();
    }
    this.o.log.info({ state: this.state, cookie: this.current?.cookie }, "state restored");
  }

  // -------------------------------------------------------------------------------------------
  // Versions, waiting, persistence.

  private bump(): void {
    this.version += 1;
    // Long polls are answered on the next turn of the loop: the answer to the call that caused
    // the change (build(), abort()) goes out first, and a burst of log lines wakes them once.
    // Only polls that knew an older version are woken (later ones already know this one).
    for (const wake of this.waiters) this.toWake.add(wake);
    this.waiters.clear();
    if (!this.wakeScheduled) {
      this.wakeScheduled = true;
      setImmediate(() => {
        this.wakeScheduled = false;
        const wake = [...this.toWake];
        this.toWake.clear();
        for (const w of wake) w();
      });
    }
    // Log growth is persisted lazily (the version must survive a crash roughly, not exactly).
    if (!this.persistTimer) {
      this.persistTimer = setTimeout(() => {
        this.persistTimer = null;
        this.persist();
      }, 1000);
      this.persistTimer.unref();
    }
  }

  private transition(to: SlaveState): void {
    assertSlaveTransition(this.state, to);
    this.o.log.info({ from: this.state, to, cookie: this.current?.cookie }, "slave state change");
    this.state = to;
    this.bump();
    this.persist();
  }

  /** state.json via tmp + rename: a crash leaves the old or the new file, never half of one. */
  private persist(): void {
    const data: Persisted = { version: this.version, state: this.state, build: this.current };
    const tmp = `${this.statePath}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(data), { mode: 0o600 });
      renameSync(tmp, this.statePath);
    } catch (err) {
      this.o.log.error({ err }, "could not write state.json");
    }
  }

  // -------------------------------------------------------------------------------------------
  // status.

  status(): StatusResult {
    const b = this.current;
    const s: StatusResult = { state: this.state, version: this.version };
    if (this.state === "IDLE" || !b) return s;
    s.cookie = b.cookie;
    s.startedAt = b.startedAt;
    if (b.configRevision) s.configRevision = b.configRevision;
    const logSize = this.buildLog && this.state !== "WAITING" ? this.buildLog.size : (b.logSize ?? this.fileSize(b.logPath));
    s.logSize = String(logSize);
    s.logTail = xmlSafe(readTail(b.logPath, logSize, LOG_TAIL_BYTES));
    if (this.state === "WAITING") {
      if (b.result) s.result = b.result;
      if (b.message) s.message = xmlSafe(b.message);
      s.files = b.files ?? [];
      if (b.finishedAt) s.finishedAt = b.finishedAt;
    }
    return s;
  }

  /** The long poll: answers when the version moves past `knownVersion` or after `waitSeconds`. */
  async waitStatus(knownVersion?: number, waitSeconds?: number, signal?: AbortSignal): Promise<StatusResult> {
    if (knownVersion === undefined) return this.status();
    const wait = Math.max(0, Math.min(waitSeconds ?? MAX_STATUS_WAIT_SECONDS, MAX_STATUS_WAIT_SECONDS));
    // A version from the future was seen before a restart: answer at once.
    if (knownVersion !== this.version || wait === 0 || this.shuttingDown || signal?.aborted) return this.status();
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, wait * 1000);
      this.waiters.add(done);
      // The caller hung up: stop waiting for it.
      signal?.addEventListener("abort", done, { once: true });
    });
    return this.status();
  }

  get currentState(): SlaveState {
    return this.state;
  }

  // -------------------------------------------------------------------------------------------
  // build.

  build(cookie: string, args: BuildArgs): BuildAccepted {
    if (this.state !== "IDLE") {
      if (this.current?.cookie === cookie) return { state: "BUILDING", cookie };
      throw new RpcFault(FaultCode.BUSY, `This builder is busy with build ${this.current?.cookie} (${this.state}); try another builder or wait.`);
    }
    if (this.cleaning) {
      throw new RpcFault(FaultCode.BUSY, "This builder is still cleaning up its previous build; try again in a moment.");
    }
    // The build call's parameters passed the rule for any scheme git knows; this builder
    // allows only its own (LEXBUILDER_SLAVE_ALLOWED_SCHEMES).
    const url = checkConfigUrl(args.configUrl, this.o.allowedSchemes);
    if (url.error !== undefined) throw new RpcFault(FaultCode.INVALID_PARAMS, url.error);
    if (!this.o.architectures.includes(args.architecture)) {
      throw new RpcFault(
        FaultCode.UNSUPPORTED_ARCH,
        `This builder cannot build for ${args.architecture}; it builds for ${this.o.architectures.join(", ") || "no architecture"}.`,
      );
    }
    const ready = this.o.readiness();
    if (!ready.ready) throw new RpcFault(FaultCode.NOT_READY, `This builder is not ready: ${ready.reason}`);

    const workspace = join(this.buildsDir, cookie);
    // A leftover workspace of the same cookie (an earlier attempt) goes first.
    this.removeWorkspaceSync(workspace);
    mkdirSync(workspace, { recursive: true, mode: 0o755 });
    const logPath = join(workspace, LOG_FILE_NAME);
    const record: BuildRecord = {
      cookie,
      args,
      marker: `${cookie}.${randomBytes(8).toString("hex")}`,
      workspace,
      logPath,
      startedAt: new Date().toISOString(),
    };
    this.current = record;
    this.buildLog = new BuildLog(logPath, this.o.secrets, () => this.bump());
    this.buildLog.line(`lexbuilder-slave build ${cookie} of project ${args.project} for ${args.architecture}, started ${record.startedAt}`);
    this.buildLog.line(`Config: ${args.configUrl}${args.configRef ? ` at ${args.configRef}` : ""}`);
    const job = new LiveBuildJob({
      cookie,
      args,
      workspace,
      log: this.buildLog,
      cache: this.o.cache,
      lb: this.o.lb,
      allowedSchemes: this.o.allowedSchemes,
      timeoutSeconds: args.timeoutSeconds ?? this.o.buildTimeoutSeconds,
      abortDeadlineMs: this.o.abortDeadlineSeconds * 1000,
      minFreeDiskBytes: this.o.minFreeDiskBytes,
      defaultSuite: this.o.defaultSuite,
      marker: record.marker,
      isolation: this.o.isolation,
      lbCacheRoot: join(this.o.stateDir, "lb-cache"),
      onRevision: (revision) => {
        record.configRevision = revision;
        this.bump();
      },
      onStep: (step, ms) => this.o.log.info({ cookie, step, ms }, "build step finished"),
    });
    this.job = job;
    this.transition("BUILDING");
    this.o.log.info({ cookie, project: args.project, arch: args.architecture, configUrl: scrub(args.configUrl) }, "build started");
    // The job starts after this call's answer is written: its first fork blocks the loop for
    // milliseconds, and the master is waiting for the answer.
    this.running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => job.run())
      .then((outcome) => this.finish(outcome))
      .catch((err) => this.o.log.error({ err, cookie }, "finishing the build failed"));
    return { state: "BUILDING", cookie };
  }

  /** Record the outcome, put the log into the cache, go WAITING. */
  private async finish(outcome: Outcome): Promise<void> {
    const b = this.current!;
    if (this.shuttingDown && outcome.result !== "BUILDERFAIL") {
      outcome = { result: "BUILDERFAIL", message: "The slave was stopped during the build; retry the build.", files: [] };
    }
    const message = scrub(outcome.message, this.o.secrets);
    const log = this.buildLog;
    if (log) {
      log.line(`Result: ${outcome.result}${message ? ` (${message})` : ""}`);
      log.close();
    }
    const files = [...outcome.files];
    // Failed builds keep no image (it may be half written); only an OK build offers files.
    if (outcome.result !== "OK") {
      for (const f of files.splice(0)) await this.o.cache.remove(f.sha256).catch(() => {});
    }
    try {
      const stored = await this.o.cache.linkIn(b.logPath);
      files.push({ name: LOG_FILE_NAME, sha256: stored.sha256, size: String(stored.size), kind: "log" });
      b.logSize = stored.size;
    } catch (err) {
      this.o.log.error({ err, cookie: b.cookie }, "the build log could not be put into the cache");
      b.logSize = this.fileSize(b.logPath);
    }
    b.result = outcome.result;
    b.message = message;
    b.files = files;
    b.finishedAt = new Date().toISOString();
    this.job = null;
    this.buildLog = null;
    this.transition("WAITING");
    this.o.log.info({ cookie: b.cookie, result: b.result, message }, "build finished");
  }

  // -------------------------------------------------------------------------------------------
  // abort and clean.

  abort(cookie: string): { state: "ABORTING" | "WAITING" | "IDLE" } {
    if (this.state === "IDLE") return { state: "IDLE" };
    if (this.current?.cookie !== cookie) {
      throw new RpcFault(FaultCode.UNKNOWN_COOKIE, `This builder holds build ${this.current?.cookie}, not ${cookie}; nothing was aborted.`);
    }
    if (this.state === "WAITING") return { state: "WAITING" };
    if (this.state === "BUILDING") {
      this.buildLog?.line("Abort requested; stopping every process of the build.");
      this.transition("ABORTING");
      void this.job?.stop("abort");
    }
    return { state: "ABORTING" };
  }

  async clean(cookie: string): Promise<{ state: "IDLE" }> {
    if (this.state === "IDLE") return { state: "IDLE" };
    if (this.current?.cookie !== cookie) {
      throw new RpcFault(FaultCode.UNKNOWN_COOKIE, `This builder holds build ${this.current?.cookie}, not ${cookie}; nothing was cleaned.`);
    }
    if (this.state !== "WAITING") {
      throw new RpcFault(FaultCode.WRONG_STATE, `Build ${cookie} is still ${this.state}; abort it or wait until it is WAITING before cleaning.`);
    }
    if (!this.cleaning) {
      this.cleaning = this.doClean("cleaned by the master").finally(() => {
        this.cleaning = null;
      });
    }
    await this.cleaning;
    return { state: "IDLE" };
  }

  private async doClean(why: string): Promise<void> {
    const b = this.current!;
    await this.removeWorkspace(b.workspace);
    for (const f of b.files ?? []) await this.o.cache.remove(f.sha256).catch(() => {});
    this.current = null;
    this.transition("IDLE");
    this.o.log.info({ cookie: b.cookie }, `build ${why}`);
  }

  /** Unmount, then delete; never deletes through a mount that would not go. */
  private async removeWorkspace(dir: string): Promise<boolean> {
    const mounts = await unmountUnder(dir);
    if (mounts.remaining.length) {
      this.o.log.error({ dir, mounts: mounts.remaining }, "mounts remain under a workspace; it is kept");
      return false;
    }
    await rm(dir, { recursive: true, force: true });
    return true;
  }

  private removeWorkspaceSync(dir: string): void {
    // Only reached for a cookie seen before; a mount there means we must not delete.
    // Synchronous, so build() stays atomic; a workspace of the same cookie is rare.
    if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
    else throw new RpcFault(FaultCode.INTERNAL_ERROR, `Something is still mounted under ${dir}; the builder needs attention.`);
  }

  // -------------------------------------------------------------------------------------------
  // Files for the HTTP routes.

  /** The log of `cookie` while the slave holds it. */
  logFile(cookie: string): { path: string; size: number } | null {
    const b = this.current;
    if (this.state === "IDLE" || !b || b.cookie !== cookie) return null;
    const size = this.buildLog && this.state !== "WAITING" ? this.buildLog.size : (b.logSize ?? this.fileSize(b.logPath));
    return { path: b.logPath, size };
  }

  private fileSize(path: string): number {
    try {
      return statSync(path).size;
    } catch {
      return 0;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Age limit.

  /** Remove results and workspaces older than the age limit (a WAITING build that old is cleaned). */
  async sweep(now = Date.now()): Promise<void> {
    const maxAgeMs = this.o.cacheMaxAgeSeconds * 1000;
    const b = this.current;
    if (this.state === "WAITING" && b?.finishedAt && now - Date.parse(b.finishedAt) > maxAgeMs && !this.cleaning) {
      this.o.log.warn({ cookie: b.cookie }, "results were not collected within the age limit; removing them");
      this.cleaning = this.doClean("removed by the age limit").finally(() => {
        this.cleaning = null;
      });
      await this.cleaning;
    }
    const current = this.current;
    const keep = new Set((current?.files ?? []).map((f) => f.sha256));
    const removed = await this.o.cache.sweep(maxAgeMs, keep, now);
    if (removed.length) this.o.log.info({ count: removed.length }, "old cache entries removed");
    for (const name of await readdir(this.buildsDir).catch(() => [] as string[])) {
      const dir = join(this.buildsDir, name);
      if (current && current.workspace === dir) continue;
      try {
        const st = await stat(dir);
        if (now - st.mtimeMs > maxAgeMs && (await this.removeWorkspace(dir))) {
          this.o.log.info({ dir }, "old workspace removed");
        }
      } catch {
        // Gone meanwhile.
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Shutdown.

  /** Stop a running build (reported BUILDERFAIL) and wake all long polls. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const wake of [...this.waiters, ...this.toWake]) wake();
    this.waiters.clear();
    this.toWake.clear();
    if (this.job) void this.job.stop("abort");
    if (this.running) await this.running;
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persist();
  }
}

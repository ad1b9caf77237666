// One build: clone the config branch, run `lb clean --purge`, `lb config`, `lb build`, classify
// the result, move the result files into the cache. Abort and timeout stop it from outside.
import { mkdir, readdir, lstat, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { simpleGit, type SimpleGit } from "simple-git";
import type { BuildArgs, BuildResult, FileKind, ResultFile } from "@lexbuilder/shared-models/protocol";
import { COMMIT_ID_PATTERN, isReservedEnvName } from "@lexbuilder/shared-models/rules";
import type { BuildLog } from "./buildlog.js";
import type { ResultCache } from "./cache.js";
import { BuildContainer } from "./container.js";
import type { Isolation } from "./isolation.js";
import { killBuild, MARKER_VARIABLE, spawnInGroup, unmountUnder, type Exit, type KillResult } from "./processes.js";
import { BUILD_PATH, freeDiskBytes, resolveExecutable } from "./readiness.js";

// ---------------------------------------------------------------------------------------------
// Result files.

/** What kind of result `name` is, for a build of `arch`; null when it is not a result. */
export function resultKind(name: string, arch: string): FileKind | null {
  const prefix = `live-image-${arch}.`;
  if (!name.startsWith(prefix) || name.length === prefix.length) return null;
  const ext = name.slice(prefix.length);
  if (ext === "packages") return "manifest";
  if (ext === "files") return "files";
  if (ext === "contents") return "contents";
  if (/^(hybrid\.iso|iso|img|hdd\.img|tar|tar\.tar(\.(gz|bz2|xz|lz|lzip|zst))?|tar\.(gz|bz2|xz|zst)|netboot\.tar(\.(gz|bz2|xz|zst))?|squashfs)$/.test(ext)) {
    return "image";
  }
  return "other";
}

// ---------------------------------------------------------------------------------------------
// The job.

export interface Outcome {
  result: BuildResult;
  message: string;
  /** Result files moved into the cache (the log is added by the builder). */
  files: ResultFile[];
}

export interface JobOptions {
  cookie: string;
  args: BuildArgs;
  /** <state>/builds/<cookie>; the clone goes to <workspace>/config. */
  workspace: string;
  log: BuildLog;
  cache: ResultCache;
  lb: string;
  allowedSchemes: readonly string[];
  timeoutSeconds: number;
  abortDeadlineMs: number;
  minFreeDiskBytes: number;
  /** Suite when the build does not name one. */
  defaultSuite?: string;
  /** Value of LEXBUILDER_SLAVE_BUILD in every process of this build. */
  marker: string;
  isolation?: Isolation;
  /** Where live-build caches live, one per project, suite and architecture (containers only). */
  lbCacheRoot?: string;
  onRevision(revision: string): void;
  /** A step (clone, each lb command, storing the results) ended after `ms` milliseconds. */
  onStep?(step: string, ms: number): void;
  now?: () => Date;
}

type StopReason = "abort" | "timeout";

/** Disk filled up (ENOSPC) rather than the config failing. */
function looksLikeDiskFull(log: BuildLog, workspace: string): boolean {
  if (log.writeError?.code === "ENOSPC") return true;
  try {
    return freeDiskBytes(workspace) < 1024 * 1024;
  } catch {
    return false;
  }
}

function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .find((l) => /fatal|error/i.test(l)) ??
    text.trim().split("\n")[0] ??
    ""
  ).slice(0, 300);
}

/** A name as one safe path component (never "." or "..", no "/"). */
function pathComponent(name: string): string {
  return name.replace(/[^A-Za-z0-9_+-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`) || "%";
}

/** live-build's cache directory of one project, suite and architecture. */
export function liveBuildCacheDir(root: string, project: string, suite: string, arch: string): string {
  return join(root, pathComponent(project), pathComponent(suite), pathComponent(arch));
}

export class LiveBuildJob {
  private container: BuildContainer | null = null;
  private lbCache: { kept: string; inBuild: string } | null = null;
  private cacheMovedIn = false;
  private stopReason: StopReason | null = null;
  private killing: Promise<KillResult> | null = null;
  private readonly gitAbort = new AbortController();
  /**
   * The process group of the command running now. Only that one: the id of a group whose
   * members are all gone may be reused by an unrelated process, so finished groups are never
   * signalled again (their leftovers were killed when their command ended).
   */
  private currentGroup: number | null = null;

  private spec(): { groups: number[]; marker: string } {
    return { groups: this.currentGroup === null ? [] : [this.currentGroup], marker: this.o.marker };
  }
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: JobOptions) {}

  get stopping(): StopReason | null {
    return this.stopReason;
  }

  /** Stop the build: kill every process of it. Resolves when the tree is dead or the deadline passed. */
  stop(reason: StopReason): Promise<KillResult> {
    if (!this.stopReason) this.stopReason = reason;
    if (!this.killing) {
      this.gitAbort.abort();
      this.killing = killBuild(this.spec(), this.o.abortDeadlineMs);
    }
    return this.killing;
  }

  /** Never rejects: every failure becomes an outcome. */
  async run(): Promise<Outcome> {
    this.timer = setTimeout(() => {
      this.o.log.line(`The build ran longer than its limit of ${this.o.timeoutSeconds} s; stopping it.`);
      void this.stop("timeout");
    }, this.o.timeoutSeconds * 1000);
    try {
      const outcome = await this.steps();
      return await this.settle(outcome);
    } catch (err) {
      return await this.settle({
        result: "BUILDERFAIL",
        message: `The slave failed while running the build: ${(err as Error).message}`,
        files: [],
      });
    } finally {
      clearTimeout(this.timer);
    }
  }

  /** Apply stop reasons, kill leftovers, unmount; the outcome that is finally reported. */
  private async settle(outcome: Outcome): Promise<Outcome> {
    const log = this.o.log;
    let kill: KillResult;
    if (this.killing) kill = await this.killing;
    else kill = await killBuild(this.spec(), this.o.abortDeadlineMs);
    if (kill.signalled > 0 && !this.stopReason) log.line(`Stopped ${kill.signalled} leftover process(es) of the build.`);
    if (this.container) {
      await this.container.destroy();
      this.container = null;
    }
    await this.cacheOut();
    const mounts = await unmountUnder(this.o.workspace);
    if (mounts.unmounted.length) log.line(`Unmounted what the build left mounted: ${mounts.unmounted.join(", ")}`);

    if (kill.survivors.length) {
      return {
        result: "BUILDERFAIL",
        message: `${kill.survivors.length} process(es) of the build (pids ${kill.survivors.join(", ")}) did not die within ${this.o.abortDeadlineMs / 1000} s; the builder needs attention.`,
        files: outcome.files,
      };
    }
    if (mounts.remaining.length) {
      return {
        result: "BUILDERFAIL",
        message: `Mounts under the build directory could not be removed (${mounts.remaining.join(", ")}); the builder needs attention.`,
        files: outcome.files,
      };
    }
    if (this.stopReason === "abort") return { result: "ABORTED", message: "The build was aborted.", files: [] };
    if (this.stopReason === "timeout") {
      // A config that builds forever is the config's fault, like any other lb failure.
      return { result: "BUILDFAIL", message: `The build timed out after ${this.o.timeoutSeconds} s and was stopped.`, files: [] };
    }
    if (outcome.result !== "BUILDERFAIL" && log.writeError) {
      return { result: "BUILDERFAIL", message: `The build log could not be written (${log.writeError.message}).`, files: [] };
    }
    return outcome;
  }

  private async steps(): Promise<Outcome> {
    const { args, log, workspace } = this.o;
    const configDir = join(workspace, "config");
    const fail = (result: BuildResult, message: string): Outcome => ({ result, message, files: [] });

    const free = freeDiskBytes(workspace);
    if (free < this.o.minFreeDiskBytes) {
      return fail("BUILDERFAIL", `Only ${free} bytes of disk are free, below the minimum of ${this.o.minFreeDiskBytes}; free some space on the builder.`);
    }

    // 1. The config branch.
    const cloned = await this.timed("git clone", () => this.clone(configDir));
    if ("failed" in cloned) return this.stopReason ? fail("ABORTED", "") : fail("CONFIGFAIL", cloned.failed);
    this.o.onRevision(cloned.revision);
    log.line(`Config revision: ${cloned.revision} (committed ${new Date(cloned.epoch * 1000).toISOString()})`);

    // 2. live-build.
    const now = (this.o.now ?? (() => new Date()))();
    const env: Record<string, string> = {
      PATH: BUILD_PATH,
      HOME: process.env.HOME ?? "/root",
      LANG: "C.UTF-8",
      DEBIAN_FRONTEND: "noninteractive",
      DEBCONF_NONINTERACTIVE_SEEN: "true",
    };
    for (const name of ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"]) {
      const value = process.env[name];
      if (value) env[name] = value;
    }
    for (const [name, value] of Object.entries(args.env ?? {})) {
      // The build call refused reserved names already; a caller that skipped it still cannot
      // replace what the builder sets.
      if (!isReservedEnvName(name)) env[name] = value;
    }
    env.PROJECT = args.project;
    env.ARCH = args.architecture;
    const suite = args.suite ?? this.o.defaultSuite;
    if (suite) env.SUITE = suite;
    env.NOW = now.toISOString().slice(0, 10).replace(/-/g, "");
    env.SOURCE_DATE_EPOCH = String(cloned.epoch);
    env[MARKER_VARIABLE] = this.o.marker;
    log.line(
      `Environment: PROJECT=${env.PROJECT} ARCH=${env.ARCH} SUITE=${env.SUITE ?? "(live-build's default)"} NOW=${env.NOW} SOURCE_DATE_EPOCH=${env.SOURCE_DATE_EPOCH}` +
        (Object.keys(args.env ?? {}).length ? ` (+ ${Object.keys(args.env ?? {}).sort().join(", ")})` : ""),
    );

    if (this.o.isolation?.mode === "container") {
      // Inside, a missing lb would look like the config's failure (bwrap exits 1).
      if (!resolveExecutable(this.o.lb)) {
        return fail("BUILDERFAIL", `The live-build front end "${this.o.lb}" was not found; install it as root with \`apt-get install live-build debootstrap\` or set LEXBUILDER_SLAVE_LB.`);
      }
      const made = await this.timed("make container", () => this.makeContainer(configDir, suite ?? "default"));
      if (made) return fail("BUILDERFAIL", made);
      if (this.stopReason) return fail("ABORTED", "");
    }

    for (const command of [["clean", "--purge"], ["config"], ["build"]]) {
      if (this.stopReason) return fail("ABORTED", "");
      if (command[0] === "config") await this.cacheIn();
      const label = `${this.o.lb} ${command.join(" ")}`;
      log.line(`RUN: ${label}`);
      const exit = await this.timed(`lb ${command.join(" ")}`, () => this.runCommand(this.o.lb, command, configDir, env));
      if (this.stopReason) return fail("ABORTED", "");
      if (exit.spawnError) {
        const why = exit.spawnError.code === "ENOENT" ? "was not found" : `could not be started (${exit.spawnError.message})`;
        log.line(`${label} ${why}.`);
        return fail("BUILDERFAIL", `The live-build front end "${this.o.lb}" ${why}; install it as root with \`apt-get install live-build debootstrap\` or set LEXBUILDER_SLAVE_LB.`);
      }
      if (exit.code !== 0) {
        const how = exit.signal ? `was killed by signal ${exit.signal}` : `failed with exit status ${exit.code}`;
        log.line(`${label} ${how}.`);
        if (looksLikeDiskFull(log, workspace)) {
          return fail("BUILDERFAIL", `The builder's disk filled up during "${label}"; free some space or raise its disk.`);
        }
        return fail("BUILDFAIL", `"${label}" ${how}; see the build log.`);
      }
    }

    // 3. Results.
    const files = await this.timed("store results", () => this.collect(configDir));
    if (!files.some((f) => f.kind === "image")) {
      return { result: "BUILDFAIL", message: `lb build finished but wrote no image (live-image-${args.architecture}.*); check the config's --binary-image.`, files };
    }
    return { result: "OK", message: `The build succeeded: ${files.map((f) => f.name).join(", ")}.`, files };
  }

  /** Run one step and report its duration (the daemon logs it: where a build's time goes). */
  private async timed<T>(step: string, run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await run();
    } finally {
      this.o.onStep?.(step, Math.round(performance.now() - t0));
    }
  }

  /** The build's container; a sentence on failure. */
  private async makeContainer(configDir: string, suite: string): Promise<string | null> {
    const isolation = this.o.isolation!;
    this.lbCache = {
      kept: liveBuildCacheDir(this.o.lbCacheRoot!, this.o.args.project, suite, this.o.args.architecture),
      inBuild: join(configDir, "cache"),
    };
    try {
      this.container = await BuildContainer.make({
        workDir: configDir,
        hidden: isolation.hidden,
        cgroupParent: isolation.cgroupParent,
        bwrap: isolation.bwrap,
        env: { PATH: BUILD_PATH },
      });
      this.o.log.line(`Container: made for this build; live-build's cache is the one of ${this.o.args.project}, ${suite}, ${this.o.args.architecture}.`);
      return null;
    } catch (err) {
      this.o.log.line(`The build container could not be made: ${(err as Error).message}`);
      return `The build container could not be made (${(err as Error).message}); the builder needs attention.`;
    }
  }

  /**
   * This project's live-build cache moves into the clone (a rename: live-build hard-links
   * between cache/ and chroot/, which a bind mount would forbid) after lb clean --purge, which
   * would empty it, and back out when the build ends.
   */
  private async cacheIn(): Promise<void> {
    if (!this.lbCache) return;
    const { kept, inBuild } = this.lbCache;
    try {
      await mkdir(kept, { recursive: true, mode: 0o755 });
      // Whatever the branch holds at cache/ (a directory, a symlink) gives way to the real cache.
      await rm(inBuild, { recursive: true, force: true });
      await rename(kept, inBuild);
      this.cacheMovedIn = true;
    } catch (err) {
      this.o.log.line(`live-build's cache could not be moved into the build (${(err as Error).message}); building without it.`);
    }
  }

  private async cacheOut(): Promise<void> {
    if (!this.lbCache || !this.cacheMovedIn) return;
    const { kept, inBuild } = this.lbCache;
    this.cacheMovedIn = false;
    try {
      // Only a directory goes back: a symlink the build put there would point the host elsewhere.
      if ((await lstat(inBuild)).isDirectory()) await rename(inBuild, kept);
    } catch {
      // The build removed it: the next build starts with an empty cache.
    }
  }

  private runCommand(command: string, args: string[], cwd: string, env: Record<string, string>): Promise<Exit> {
    const inContainer = this.container !== null;
    if (this.container) ({ command, args } = this.container.wrap(command, args));
    // In a container the command is started by bwrap, which says so first when it cannot.
    let firstOutput = "";
    const onOutput = (chunk: Buffer) => {
      if (firstOutput.length < 200) firstOutput += chunk.toString("utf8", 0, 200);
      this.o.log.output(chunk);
    };
    const running = spawnInGroup(command, args, { cwd, env, onOutput });
    this.currentGroup = running.pid ?? null;
    return running.exited.then(async (exit) => {
      // Grandchildren left behind by a finished command have no business running on (and
      // would hold the output pipe open).
      if (!this.stopReason && running.pid !== undefined) {
        const kill = await killBuild({ groups: [running.pid] }, this.o.abortDeadlineMs);
        await running.drained();
        this.o.log.flushPending();
        if (kill.signalled) this.o.log.line(`Stopped ${kill.signalled} process(es) left behind by ${command} ${args.join(" ")}.`);
        if (kill.survivors.length === 0) this.currentGroup = null;
      } else {
        // An abort or timeout is killing this group; settle() waits for that.
        await running.drained();
        this.o.log.flushPending();
      }
      const failedExec = inContainer && exit.code === 1 ? /^bwrap: execvp [^\n]*: ([^\n]*)/.exec(firstOutput) : null;
      if (failedExec) return { code: null, signal: null, spawnError: Object.assign(new Error(failedExec[1]!), { code: "EEXEC" }) };
      return exit;
    });
  }

  private git(baseDir: string): SimpleGit {
    const git = simpleGit({
      baseDir,
      // Never run commands through ext:: or fd:: whatever a URL or a submodule says.
      config: ["protocol.ext.allow=never", "protocol.fd.allow=never"],
      unsafe: { allowUnsafeProtocolOverride: true },
      abort: this.gitAbort.signal,
      timeout: { block: 10 * 60 * 1000 },
    });
    git.env({
      PATH: BUILD_PATH,
      HOME: process.env.HOME ?? "/root",
      LANG: "C.UTF-8",
      // git itself refuses any transport not listed.
      GIT_ALLOW_PROTOCOL: this.o.allowedSchemes.join(":"),
      GIT_TERMINAL_PROMPT: "0",
      [MARKER_VARIABLE]: this.o.marker,
    });
    git.outputHandler((_cmd, _stdout, stderr) => {
      stderr.on("data", (chunk: Buffer) => this.o.log.output(chunk));
    });
    return git;
  }

  private async clone(dir: string): Promise<{ revision: string; epoch: number } | { failed: string }> {
    const { args, log } = this.o;
    const ref = args.configRef;
    const git = this.git(this.o.workspace);
    try {
      if (ref && COMMIT_ID_PATTERN.test(ref)) {
        await mkdir(dir);
        const inner = this.git(dir);
        log.line(`RUN: git fetch --depth 1 ${args.configUrl} ${ref}`);
        await inner.raw(["init", "--quiet"]);
        try {
          await inner.raw(["fetch", "--depth", "1", "--", args.configUrl, ref]);
        } catch (err) {
          if (this.stopReason) throw err;
          // Servers that refuse fetching by commit id: fetch everything, then check it out.
          log.line(`RUN: git fetch ${args.configUrl} (the server refused fetching one commit)`);
          await inner.raw(["fetch", "--", args.configUrl, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]);
          await inner.raw(["update-ref", "FETCH_HEAD", ref]);
        }
        await inner.raw(["checkout", "--quiet", "--detach", "FETCH_HEAD"]);
      } else {
        const refArgs = ref ? ["--branch", ref] : [];
        log.line(`RUN: git clone --depth 1 ${refArgs.join(" ")}${refArgs.length ? " " : ""}${args.configUrl}`);
        await git.raw(["clone", "--depth", "1", "--no-recurse-submodules", ...refArgs, "--", args.configUrl, dir]);
      }
      const inner = this.git(dir);
      const [revision, epoch] = (await inner.raw(["log", "-1", "--format=%H %ct"])).trim().split(" ");
      if (ref && COMMIT_ID_PATTERN.test(ref) && revision !== ref) throw new Error(`checked out ${revision} instead of ${ref}`);
      return { revision: revision!, epoch: Number(epoch) };
    } catch (err) {
      log.flushPending();
      const detail = firstLine((err as Error).message);
      log.line(`Cloning the config failed: ${detail}`);
      return { failed: `The config could not be cloned${ref ? ` at "${ref}"` : ""}: ${detail}` };
    }
  }

  private async collect(configDir: string): Promise<ResultFile[]> {
    const files: ResultFile[] = [];
    const names = (await readdir(configDir)).sort();
    for (const name of names) {
      const kind = resultKind(name, this.o.args.architecture);
      if (!kind) continue;
      const path = join(configDir, name);
      if (!(await lstat(path)).isFile()) continue;
      const stored = await this.o.cache.moveIn(path);
      files.push({ name, sha256: stored.sha256, size: String(stored.size), kind });
      this.o.log.line(`Stored: ${name} (${kind}, ${stored.size} bytes, sha256 ${stored.sha256})`);
    }
    return files;
  }
}

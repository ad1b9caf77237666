// The whole lexbuilder stack as real processes on loopback, each one killable with SIGKILL and
// restartable on the same port and state: PostgreSQL (embedded, persistent data directory),
// slaves with the fake lb behind a connection-cutting TCP proxy, masters and the webapp. Used
// by the chaos soak and the load runs. The daemons run from dist/ (build first).
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, readdirSync, readlinkSync, type WriteStream } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  freePort,
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from "@lexbuilder/shared-models/embedded-postgres";
import { BASE_ENV, FAKE_LB, SLAVE_MAIN } from "../../packages/slave/test/helpers.js";

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, "..", "..");
export const MASTER_MAIN = join(ROOT, "packages", "master", "dist", "main.js");
export const WEBAPP_MAIN = join(ROOT, "packages", "webapp", "dist", "main.js");

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A deterministic PRNG (mulberry32), so a run can be repeated with its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Daemons.

export interface DaemonSpec {
  name: string;
  script: string;
  args?: string[];
  env: Record<string, string>;
  /** Output that means "up" (checked on the daemon's whole output since this start). */
  ready: RegExp;
  logFile: string;
}

/** One daemon: started, killed and restarted; its output of every life goes to one file. */
export class Daemon {
  proc: ChildProcess | null = null;
  starts = 0;
  kills = 0;
  /** Exits the harness did not cause (a master losing its lock, a crash). */
  ownExits: { at: number; code: number | null; signal: string | null }[] = [];
  private out: WriteStream;
  private expectingExit = false;
  private exited: Promise<void> = Promise.resolve();
  private current = "";

  constructor(readonly spec: DaemonSpec) {
    mkdirSync(dirname(spec.logFile), { recursive: true });
    this.out = createWriteStream(spec.logFile, { flags: "a" });
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Output of the current life. */
  output(): string {
    return this.current;
  }

  async start(extraArgs: string[] = [], waitReady = true, timeoutMs = 30_000): Promise<void> {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    this.expectingExit = false;
    this.current = "";
    const proc = spawn(process.execPath, [this.spec.script, ...(this.spec.args ?? []), ...extraArgs], {
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", HOME: process.env.HOME ?? "/root", ...this.spec.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    this.starts += 1;
    live.add(proc);
    const onData = (c: Buffer) => {
      const s = c.toString();
      this.current += s;
      if (this.current.length > 4_000_000) this.current = this.current.slice(-1_000_000);
      this.out.write(s);
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    this.exited = new Promise<void>((resolve) =>
      proc.on("exit", (code, signal) => {
        live.delete(proc);
        this.out.write(`\n{"harness":"exit","name":"${this.spec.name}","code":${code},"signal":${JSON.stringify(signal)},"time":${Date.now()}}\n`);
        if (!this.expectingExit) this.ownExits.push({ at: Date.now(), code, signal });
        resolve();
      }),
    );
    if (!waitReady) return;
    const deadline = Date.now() + timeoutMs;
    while (!this.spec.ready.test(this.current)) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`${this.spec.name} exited (${proc.exitCode ?? proc.signalCode}) before it was ready: ${this.current.slice(-2000)}`);
      }
      if (Date.now() > deadline) throw new Error(`${this.spec.name} was not ready within ${timeoutMs} ms: ${this.current.slice(-2000)}`);
      await sleep(50);
    }
  }

  /** SIGKILL (a crash) and wait until it is gone. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.expectingExit = true;
    this.kills += 1;
    this.proc!.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.expectingExit = true;
    this.proc!.kill("SIGTERM");
    const t = setTimeout(() => this.proc?.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((r) => this.out.end(r));
  }
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

// ---------------------------------------------------------------------------------------------
// PostgreSQL that can be killed with SIGKILL and started again on its data directory.

export class Postgres {
  db: EmbeddedDatabase | null = null;
  kills = 0;
  starts = 0;
  port = 0;

  constructor(readonly dataDir: string) {}

  get adminUrl(): string {
    return `postgres://postgres:lexbuilder@127.0.0.1:${this.port}/postgres`;
  }

  url(database: string): string {
    return `postgres://postgres:lexbuilder@127.0.0.1:${this.port}/${database}`;
  }

  postmasterPid(): number | null {
    try {
      return Number(readFileSync(join(this.dataDir, "postmaster.pid"), "utf8").split("\n")[0]) || null;
    } catch {
      return null;
    }
  }

  /** Start (or restart after a kill): retried while the old backends are still dying. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (!this.port) this.port = await freePort();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        this.db = await startEmbeddedPostgres({ dataDir: this.dataDir, port: this.port, persistent: true });
        this.starts += 1;
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`PostgreSQL did not start again within ${timeoutMs} ms (${String(err)})`);
        await sleep(300);
      }
    }
  }

  /** kill -9 the postmaster (its backends notice and exit by themselves). */
  async kill9(): Promise<void> {
    const pid = this.postmasterPid();
    if (!pid) return;
    this.kills += 1;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      return;
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await sleep(50);
    }
    this.db = null;
  }

  /** A clean shutdown (fast mode), used at the end. */
  async stop(): Promise<void> {
    const pid = this.postmasterPid();
    if (!pid) return;
    try {
      process.kill(pid, "SIGINT");
    } catch {
      return;
    }
    for (let i = 0; i < 200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await sleep(50);
    }
    process.kill(pid, "SIGKILL");
  }
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy that cuts connections: in front of a slave, so the master's long polls, control
// calls and downloads break at random points.

export interface CutStats {
  connections: number;
  /** Connections cut while a GET /files/ response was flowing. */
  downloadCuts: number;
  /** Other connections cut (RPC, logs). */
  otherCuts: number;
}

export class CuttingProxy {
  readonly stats: CutStats = { connections: 0, downloadCuts: 0, otherCuts: 0 };
  private server: Server | null = null;
  private readonly sockets = new Set<{ client: Socket; upstream: Socket; cut: () => void }>();
  /** Probability that the answer to a request (RPC, log) is cut at a random point. */
  cutProbability = 0;
  /** The same for GET /files/ downloads. */
  downloadCutProbability = 0;
  /** Cut points are uniform in [0, maxCutBytes) bytes into the answer. */
  maxCutBytes = 2 * 1024 * 1024;

  constructor(
    readonly port: number,
    readonly targetPort: number,
    private readonly random: () => number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => this.handle(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  private handle(client: Socket): void {
    this.stats.connections += 1;
    const upstream = connect(this.targetPort, "127.0.0.1");
    let downloading = false;
    let sent = 0;
    let cutAt = Infinity;
    const entry = {
      client,
      upstream,
      cut: () => {
        if (client.destroyed && upstream.destroyed) return;
        if (downloading) this.stats.downloadCuts += 1;
        else this.stats.otherCuts += 1;
        client.destroy();
        upstream.destroy();
      },
    };
    this.sockets.add(entry);
    const done = () => {
      this.sockets.delete(entry);
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      const head = chunk.subarray(0, 16).toString("latin1");
      if (/^(GET|POST|HEAD) /.test(head)) {
        // A new request on this connection: maybe cut its answer somewhere.
        downloading = head.startsWith("GET /files/");
        const p = downloading ? this.downloadCutProbability : this.cutProbability;
        cutAt = this.random() < p ? sent + Math.floor(this.random() * this.maxCutBytes) : Infinity;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      sent += chunk.length;
      if (sent >= cutAt) {
        const keep = chunk.length - (sent - cutAt);
        if (keep > 0) client.write(chunk.subarray(0, keep));
        entry.cut();
        return;
      }
      client.write(chunk);
    });
    client.on("error", done);
    upstream.on("error", done);
    client.on("close", done);
    upstream.on("close", done);
  }

  /** Cut every open connection now; returns how many. */
  cutAll(): number {
    let n = 0;
    for (const s of [...this.sockets]) {
      s.cut();
      n += 1;
    }
    return n;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) {
      s.client.destroy();
      s.upstream.destroy();
    }
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

// ---------------------------------------------------------------------------------------------
// Slaves.

export function slaveSpec(name: string, dir: string, port: number): DaemonSpec {
  return {
    name,
    script: SLAVE_MAIN,
    env: {
      ...BASE_ENV,
      LEXBUILDER_SLAVE_LB: FAKE_LB,
      LEXBUILDER_SLAVE_LISTEN: `127.0.0.1:${port}`,
      LEXBUILDER_SLAVE_STATE_DIR: join(dir, "state"),
      LEXBUILDER_SLAVE_TOKEN_FILE: join(dir, "slave.token"),
      LEXBUILDER_SLAVE_ABORT_DEADLINE: "10",
      LOG_LEVEL: "info",
    },
    ready: /"listen":"127\.0\.0\.1:[0-9]+"/,
    logFile: join(dir, "slave.log"),
  };
}

/** The marker the slave puts into every build process's environment. */
const MARKER = "LEXBUILDER_SLAVE_BUILD=";

export interface BuildProcess {
  pid: number;
  cookie: string;
  cwd: string;
}

/** Every live (non-zombie) process that carries a slave build marker. */
export function buildProcesses(): BuildProcess[] {
  const found: BuildProcess[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, "latin1");
      const i = environ.indexOf(MARKER);
      if (i < 0) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const value = environ.slice(i + MARKER.length, environ.indexOf("\0", i) >>> 0);
      const cookie = value.slice(0, value.lastIndexOf(".") >= 0 ? value.lastIndexOf(".") : value.length);
      let cwd = "";
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // gone meanwhile
      }
      found.push({ pid, cookie, cwd });
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return found;
}

/** Mount points at or below `dir`. */
export function mountsBelow(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(dir + "/")));
}

/** Parse a daemon's pino log file into objects (non-JSON lines are skipped). */
export function readJsonLog(file: string): Record<string, unknown>[] {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const out: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by SIGKILL
    }
  }
  return out;
}

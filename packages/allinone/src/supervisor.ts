// The daemons as child processes: started with their output prefixed, watched (one that dies
// stops everything: the all-in-one has no restart policy, a person is watching), and stopped
// in reverse order of start with SIGTERM. Each daemon stops within seconds on SIGTERM;
// SIGKILL after a long grace is the last resort for a daemon that hangs.
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { prettyLine } from "./pretty-log.js";

export interface Child {
  name: string;
  proc: ChildProcess;
  /** Resolves when the process is gone and its output is read. */
  exited: Promise<void>;
  done: boolean;
}

export interface SupervisorOptions {
  repo: string;
  pretty: boolean;
  say: (line: string) => void;
  /** A child stopped while nobody asked it to. */
  onUnexpectedExit: (name: string, why: string) => void;
}

/** How long a daemon may take to stop before it is killed (the slave unmounts a build's chroot). */
const GRACE_MS: Record<string, number> = { slave: 60_000 };
const DEFAULT_GRACE_MS = 15_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Supervisor {
  private readonly children: Child[] = [];
  private stoppingAll = false;

  constructor(private readonly o: SupervisorOptions) {}

  get stopping(): boolean {
    return this.stoppingAll;
  }

  get count(): number {
    return this.children.length;
  }

  /** Runs `node <repo>/<script>` as `name`. */
  start(name: string, script: string, env: NodeJS.ProcessEnv): Child {
    if (this.stoppingAll) throw new Error("stopping before the start-up finished.");
    const proc = spawn(process.execPath, [join(this.o.repo, script)], {
      cwd: this.o.repo,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      // A process group of its own: the terminal's Ctrl-C reaches only the starter, which stops
      // the children in order; signalling the group also reaches what a child started (lb, git).
      detached: true,
    });
    const child: Child = { name, proc, done: false, exited: Promise.resolve() };
    child.exited = new Promise<void>((resolve) => {
      proc.on("close", (code, signal) => {
        child.done = true;
        resolve();
        if (!this.stoppingAll) this.o.onUnexpectedExit(name, signal ?? `exit ${code}`);
      });
    });
    proc.on("error", (err) => this.o.onUnexpectedExit(name, `could not be started: ${err.message}`));
    this.prefixLines(proc.stdout!, name);
    this.prefixLines(proc.stderr!, name);
    this.children.push(child);
    return child;
  }

  /** Stops every child, the last started first. */
  async stopAll(): Promise<void> {
    this.stoppingAll = true;
    for (const child of [...this.children].reverse()) await this.stop(child);
  }

  /** A second Ctrl-C: no more waiting. */
  killAll(): void {
    for (const c of this.children) signalGroup(c, "SIGKILL");
  }

  private async stop(child: Child): Promise<void> {
    if (!child.done) {
      const grace = GRACE_MS[child.name] ?? DEFAULT_GRACE_MS;
      signalGroup(child, "SIGTERM");
      await Promise.race([child.exited, sleep(grace)]);
      if (!child.done) {
        this.o.say(`the ${child.name} did not stop within ${grace / 1000} s; killing it.`);
        signalGroup(child, "SIGKILL");
        await child.exited;
      }
    }
    // Anything the child left in its group (a stray lb, git) goes too.
    signalGroup(child, "SIGKILL");
  }

  private prefixLines(stream: Readable, name: string): void {
    const tag = `[${name}]`.padEnd(9);
    createInterface({ input: stream }).on("line", (line) => {
      // Once our own output broke (the starter is stopping), the daemons' lines have nowhere to go.
      if (!process.stdout.destroyed) process.stdout.write(`${tag}${this.o.pretty ? prettyLine(line) : line}\n`);
    });
  }
}

function signalGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.proc.pid!, signal);
  } catch {
    /* already gone */
  }
}

function httpStatus(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: "GET", timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** Waits until `url` answers below 500; throws a sentence if the child exits or time runs out. */
export async function waitUntilAnswering(child: Child, url: string, limitMs = 60_000): Promise<void> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if (child.done) throw new Error(`the ${child.name} exited during start-up; its last lines are above.`);
    const status = await httpStatus(url);
    if (status > 0 && status < 500) return;
    await sleep(150);
  }
  throw new Error(`the ${child.name} did not answer on ${url} within ${limitMs / 1000} s.`);
}

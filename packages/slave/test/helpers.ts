// Test support for the slave: real git repositories holding config branches, the real daemon
// as a child process (from dist/), an RpcClient as the master's side, and /proc inspection.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync, mkdirSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RpcClient, type StatusResult } from "@lexbuilder/shared-models/protocol";

const here = dirname(fileURLToPath(import.meta.url));
export const FAKE_LB = join(here, "fixtures", "fake-lb");
export const SLAVE_MAIN = join(here, "..", "dist", "main.js");

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `lexbuilder-slave-${prefix}-`));
}

/** Committer date of every commit made by the helpers (so SOURCE_DATE_EPOCH is known). */
export const COMMIT_EPOCH = 1_700_000_000;

function git(cwd: string, args: string[], env: Record<string, string> = {}): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "Test",
      GIT_AUTHOR_EMAIL: "test@example.invalid",
      GIT_COMMITTER_NAME: "Test",
      GIT_COMMITTER_EMAIL: "test@example.invalid",
      GIT_AUTHOR_DATE: `@${COMMIT_EPOCH} +0000`,
      GIT_COMMITTER_DATE: `@${COMMIT_EPOCH} +0000`,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export interface ConfigRepo {
  /** file:// URL of the bare repository. */
  url: string;
  path: string;
  /** Commit id of each branch tip. */
  commits: Record<string, string>;
}

/**
 * A bare repository with one branch per entry; each branch holds the given files (a value
 * starting with "#!" is made executable, like auto/config).
 */
export function makeConfigRepo(branches: Record<string, Record<string, string>>): ConfigRepo {
  const root = tempDir("repo");
  const bare = join(root, "config.git");
  git(root, ["init", "--quiet", "--bare", bare]);
  const commits: Record<string, string> = {};
  for (const [branch, files] of Object.entries(branches)) {
    const work = join(root, `work-${branch.replace(/\//g, "_")}`);
    git(root, ["init", "--quiet", "-b", branch, work]);
    for (const [name, content] of Object.entries(files)) {
      const path = join(work, name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
      if (content.startsWith("#!")) chmodSync(path, 0o755);
    }
    git(work, ["add", "-A"]);
    git(work, ["commit", "--quiet", "-m", `config for ${branch}`]);
    git(work, ["push", "--quiet", bare, `HEAD:refs/heads/${branch}`]);
    commits[branch] = git(work, ["rev-parse", "HEAD"]).trim();
  }
  return { url: `file://${bare}`, path: bare, commits };
}

/** Add a commit to `branch` of the repository (through a fresh clone). */
export function addCommit(repo: ConfigRepo, branch: string, files: Record<string, string>): string {
  const work = tempDir("commit");
  git(work, ["clone", "--quiet", "--branch", branch, repo.path, "w"]);
  const w = join(work, "w");
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(w, name)), { recursive: true });
    writeFileSync(join(w, name), content);
  }
  git(w, ["add", "-A"]);
  git(w, ["commit", "--quiet", "-m", "another commit"], { GIT_COMMITTER_DATE: `@${COMMIT_EPOCH + 100} +0000` });
  git(w, ["push", "--quiet", "origin", `HEAD:refs/heads/${branch}`]);
  return git(w, ["rev-parse", "HEAD"]).trim();
}

export interface Slave {
  url: string;
  token: string;
  client: RpcClient;
  stateDir: string;
  tokenFile: string;
  proc: ChildProcess;
  /** Everything the daemon printed (pino JSON lines, stderr). */
  output(): string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash) and wait for the exit. */
  crash(): Promise<void>;
}

export interface StartOptions {
  stateDir?: string;
  tokenFile?: string;
  env?: Record<string, string>;
}

export const BASE_ENV: Record<string, string> = {
  LEXBUILDER_SLAVE_LISTEN: "127.0.0.1:0",
  LEXBUILDER_SLAVE_LB: FAKE_LB,
  LEXBUILDER_SLAVE_DEBOOTSTRAP: "/bin/true",
  LEXBUILDER_SLAVE_ALLOWED_SCHEMES: "file",
  LEXBUILDER_SLAVE_MIN_FREE_DISK: "1M",
  LEXBUILDER_SLAVE_ARCHITECTURES: "amd64,arm64",
  LOG_LEVEL: "info",
};

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/** Start the real daemon (dist/main.js) and wait until it listens. */
export async function startSlave(opts: StartOptions = {}): Promise<Slave> {
  const stateDir = opts.stateDir ?? tempDir("state");
  const tokenFile = opts.tokenFile ?? join(stateDir, "..", `${stateDir.split("/").pop()}.token`);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: process.env.HOME ?? "/root",
    ...BASE_ENV,
    LEXBUILDER_SLAVE_STATE_DIR: stateDir,
    LEXBUILDER_SLAVE_TOKEN_FILE: tokenFile,
    ...opts.env,
  };
  const proc = spawn(process.execPath, [SLAVE_MAIN], { env, stdio: ["ignore", "pipe", "pipe"] });
  running.add(proc);
  let out = "";
  proc.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  proc.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.on("exit", (code) => {
      running.delete(proc);
      resolve(code);
    }),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the slave did not start in 20 s:\n${out}`)), 20_000);
    const check = () => {
      const m = /"listen":"127\.0\.0\.1:([0-9]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the slave exited with ${code} before listening:\n${out}`));
    });
  });
  const token = readFileSync(tokenFile, "utf8").trim();
  const url = `http://127.0.0.1:${port}`;
  const client = new RpcClient({ url, token, timeoutMs: 45_000 });
  return {
    url,
    token,
    client,
    stateDir,
    tokenFile,
    proc,
    output: () => out,
    stop: async () => {
      client.close();
      proc.kill("SIGTERM");
      return exited;
    },
    crash: async () => {
      client.close();
      proc.kill("SIGKILL");
      await exited;
    },
  };
}

/** Long-poll status until `pred` holds (or fail after `timeoutMs`). */
export async function waitFor(client: RpcClient, pred: (s: StatusResult) => boolean, timeoutMs = 30_000): Promise<StatusResult> {
  const deadline = Date.now() + timeoutMs;
  let s = await client.call("status");
  while (!pred(s)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`status never matched; last: ${JSON.stringify(s)}`);
    s = await client.call("status", s.version, Math.min(5, Math.ceil(left / 1000)));
  }
  return s;
}

export function waitForState(client: RpcClient, state: string, timeoutMs?: number): Promise<StatusResult> {
  return waitFor(client, (s) => s.state === state, timeoutMs);
}

/**
 * Pids of the live processes of build `cookie` of the slave whose state is in `stateDir`: those
 * carrying its exact marker (read from state.json; other slaves on this machine may run a build
 * of the same cookie) or whose working directory is in its workspace.
 */
export function processesOfBuild(stateDir: string, cookie: string): number[] {
  const dir = join(stateDir, "builds", cookie);
  const saved = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as { build: { cookie: string; marker: string } | null };
  if (saved.build?.cookie !== cookie) throw new Error(`${stateDir} holds no build ${cookie}`);
  const marker = `LEXBUILDER_SLAVE_BUILD=${saved.build.marker}`;
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const environ = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
      let cwd = "";
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // kernel threads
      }
      if (environ.includes(marker) || cwd === dir || cwd.startsWith(dir + "/")) found.push(pid);
    } catch {
      // gone
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

/** GET with the token; the body as a Buffer. */
export async function get(
  slave: { url: string; token: string },
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(slave.url + path, { headers: { Authorization: `Bearer ${slave.token}`, ...headers } });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** A config branch for the fake lb: fake-lb.conf with the given lines. */
export function fakeConf(lines: string[] = []): Record<string, string> {
  return { "fake-lb.conf": lines.join("\n") + "\n", "README": "A config branch for the fake lb.\n" };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

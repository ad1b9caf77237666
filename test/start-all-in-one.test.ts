// `npm start` end to end: the real script (scripts/start.mjs) with its embedded PostgreSQL,
// the three daemons from dist/, a real git repository for the demo project; driven over HTTP
// like a person would, stopped with SIGINT like Ctrl-C, then started again on the same data.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createPool, freePort, listBuilders, listProjects, listUsers } from "@lexbuilder/shared-models";

const repo = resolve(import.meta.dirname, "..");
const home = mkdtempSync(join(tmpdir(), "lexbuilder-start-test-"));

interface Run {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

let ports: { web: number; slave: number; metrics: number };
const running: Run[] = [];

function start(): Run {
  const env: Record<string, string | undefined> = {
    ...process.env,
    LEXBUILDER_HOME: home,
    LEXBUILDER_WEBAPP_LISTEN: `127.0.0.1:${ports.web}`,
    LEXBUILDER_SLAVE_LISTEN: `127.0.0.1:${ports.slave}`,
    LEXBUILDER_MASTER_METRICS_LISTEN: `127.0.0.1:${ports.metrics}`,
    // npm test has just built; a second tsc -b here would race with other test files.
    LEXBUILDER_SKIP_BUILD: "1",
    LOG_LEVEL: "info",
  };
  // The embedded PostgreSQL is what this tests, even when the suite runs against another one.
  delete env.DATABASE_URL;
  // A group of its own, like a shell job: Ctrl-C in a terminal signals the whole group.
  const proc = spawn(process.execPath, [join(repo, "scripts/start.mjs")], { cwd: repo, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  const run = { proc, output: () => out, exited };
  running.push(run);
  return run;
}

async function waitFor<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms: number, run?: Run): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (run && run.proc.exitCode !== null) throw new Error(`npm start exited (${run.proc.exitCode}) while waiting for ${what}:\n${run.output()}`);
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}:\n${run?.output() ?? ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Every process whose parent chain leads to `root` (read from /proc). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(name), ppid);
    } catch {
      /* gone meanwhile */
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    let p = parent.get(pid);
    for (let hops = 0; p !== undefined && p > 1 && hops < 64; hops++) {
      if (p === root) {
        out.push(pid);
        break;
      }
      p = parent.get(p);
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Processes anywhere on the machine that mention our data folder (PostgreSQL's -D, the slave's state). */
function processesUsingHome(): string[] {
  const found: string[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ");
      const environ = readFileSync(`/proc/${name}/environ`, "utf8");
      if (cmd.includes(home) || environ.includes(`LEXBUILDER_HOME=${home}`)) found.push(`${name}: ${cmd}`);
    } catch {
      /* gone, or not ours to read */
    }
  }
  return found;
}

class Browser {
  cookies = new Map<string, string>();
  constructor(readonly base: string) {}
  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(this.base + path, { ...init, redirect: "manual", headers: { ...(init.headers ?? {}), cookie: this.cookieHeader() } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair!.indexOf("=");
      this.cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
    return res;
  }
  async login(name: string, password: string): Promise<Response> {
    const page = await (await this.fetch("/login")).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1];
    expect(csrf, "the login form carries a CSRF token").toBeTruthy();
    return this.fetch("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ _csrf: csrf!, name, password, next: "/" }).toString(),
    });
  }
}

const BANNER = /lexbuilder is running at (http:\/\/127\.0\.0\.1:[0-9]+)\//;

async function stopWithSigint(run: Run): Promise<void> {
  const pid = run.proc.pid!;
  const children = descendants(pid);
  expect(children.length, "npm start runs PostgreSQL and three daemons as children").toBeGreaterThanOrEqual(4);
  // What Ctrl-C does: SIGINT to every process of the terminal's foreground group.
  process.kill(-pid, "SIGINT");
  const code = await Promise.race([run.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 120_000))]);
  expect(code, `npm start stops on SIGINT with status 0:\n${run.output().slice(-3000)}`).toBe(0);
  expect(run.output()).toContain("lexbuilder: stopped.");
  // PostgreSQL went last: nothing lost its database while it was still running.
  expect(run.output()).not.toMatch(/lost the master lock|terminating connection due to administrator command/);
  // Nothing may survive: not the daemons, not PostgreSQL, not anything they started.
  await waitFor("the children to be gone", () => children.every((p) => !alive(p)), 5_000).catch(() => {
    throw new Error(`processes survived npm start: ${children.filter(alive).join(", ")}`);
  });
  expect(processesUsingHome()).toEqual([]);
}

const isRootWithLb =
  process.getuid?.() === 0 && (process.env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, "lb")));

describe("npm start (all in one)", () => {
  afterAll(async () => {
    for (const r of running) {
      if (r.proc.exitCode !== null) continue;
      try {
        process.kill(-r.proc.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    rmSync(home, { recursive: true, force: true });
  });

  let password = "";
  let databaseUrl = "";

  it("starts everything, creates the admin once, registers the local slave and the demo project", async () => {
    ports = { web: await freePort(), slave: await freePort(), metrics: await freePort() };
    const run = start();
    const url = (await waitFor("the start banner", () => BANNER.exec(run.output())?.[1], 150_000, run))!;
    expect(url).toBe(`http://127.0.0.1:${ports.web}`);
    password = /password: +(\S+) +<- shown only now/.exec(run.output())?.[1] ?? "";
    expect(password.length, "the first start prints the admin password").toBeGreaterThanOrEqual(12);
    databaseUrl = /database: (postgres:\/\/\S+)/.exec(run.output())?.[1] ?? "";
    expect(databaseUrl).toMatch(/\/lexbuilder$/);
    // Children's pino lines are prefixed and made readable.
    expect(run.output()).toMatch(/^\[slave\] +\d\d:\d\d:\d\d INFO /m);
    expect(run.output()).toMatch(/^\[master\] +\d\d:\d\d:\d\d INFO /m);

    const browser = new Browser(url);
    expect((await browser.login("admin", "not-the-password")).status).toBe(401);
    const ok = await browser.login("admin", password);
    expect(ok.status).toBe(303);
    const builders = await (await browser.fetch("/builders")).text();
    expect(builders).toContain("local");
    expect(builders).toContain(`127.0.0.1:${ports.slave}`);
    const project = await browser.fetch("/projects/demo");
    expect(project.status).toBe(200);
    expect(await project.text()).toContain(join(home, "demo-config.git"));

    // The demo config branch is a real git repository holding examples/.
    const ls = spawn("git", ["--git-dir", join(home, "demo-config.git"), "ls-tree", "-r", "--name-only", "main"]);
    let files = "";
    ls.stdout.on("data", (d) => (files += d));
    await new Promise((r) => ls.on("exit", r));
    expect(files.split("\n")).toEqual(expect.arrayContaining(["auto/config", "auto/build", "auto/clean"]));

    // The master has talked to the slave: ready here (root, live-build), otherwise not ready
    // with the reason.
    const pool = createPool(databaseUrl, { max: 1 });
    try {
      const local = await waitFor(
        "the master to contact the local slave",
        async () => (await listBuilders(pool)).find((b) => b.name === "local" && b.lastContactAt !== null),
        60_000,
        run,
      );
      if (isRootWithLb) expect(local.ready, `not ready: ${local.notReadyReason}`).toBe(true);
      else expect(local.notReadyReason ?? "").toMatch(/root|live-build/);
    } finally {
      await pool.end();
    }
    await stopWithSigint(run);
  }, 400_000);

  it("keeps the data on a second start and creates nothing twice", async () => {
    expect(password, "the first test ran").not.toBe("");
    const run = start();
    const url = (await waitFor("the start banner", () => BANNER.exec(run.output())?.[1], 150_000, run))!;
    expect(run.output()).not.toContain("<- shown only now");
    expect(run.output()).not.toContain("registered the local slave");
    expect(run.output()).not.toContain('added project "demo"');
    const browser = new Browser(url);
    expect((await browser.login("admin", password)).status).toBe(303);
    const pool = createPool(/database: (postgres:\/\/\S+)/.exec(run.output())![1]!, { max: 1 });
    try {
      expect((await listUsers(pool)).map((u) => u.name)).toEqual(["admin"]);
      expect((await listBuilders(pool)).map((b) => b.name)).toEqual(["local"]);
      expect((await listProjects(pool, { userId: null, role: "admin" })).map((p) => p.name)).toEqual(["demo"]);
    } finally {
      await pool.end();
    }
    await stopWithSigint(run);
  }, 400_000);
});

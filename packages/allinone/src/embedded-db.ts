// npm start's own PostgreSQL, data under <home>/pg, reachable on 127.0.0.1 only with a secret:
// the superuser's password is random and kept in <home>/pg-superuser.password, the daemons
// connect as the role `lexbuilder` (no superuser, owner of the database `lexbuilder`) whose
// password is in <home>/pg-lexbuilder.password; both files are 0600. A data folder made by an
// older npm start (superuser password "lexbuilder", everything owned by the superuser) is
// brought to this the first time: new passwords, the owner role, the objects handed over.
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import {
  ensureDatabaseOwnedBy,
  ensureLoginRole,
  handOverSchemaObjects,
  setRolePassword,
} from "@lexbuilder/shared-models/db";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "@lexbuilder/shared-models/embedded-postgres";

export const OWNER_ROLE = "lexbuilder";
export const DATABASE = "lexbuilder";
/** What npm start used to give the superuser: still accepted once, to move an old data folder on. */
const LEGACY_SUPERUSER_PASSWORD = "lexbuilder";

export interface LocalDatabase {
  /** The daemons' URL: the owner role, with its password. */
  url: string;
  /** The same without the password, for showing. */
  shownUrl: string;
  port: number;
  passwordFile: string;
  stop(): Promise<void>;
}

/** The secret in `file`, made (random, mode 0600) when the file does not exist. */
export function readOrCreateSecret(file: string): string {
  if (existsSync(file)) {
    const secret = readFileSync(file, "utf8").trim();
    if (secret) {
      chmodSync(file, 0o600);
      return secret;
    }
  }
  const secret = randomBytes(24).toString("hex");
  writeFileSync(file, secret + "\n", { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

/** Is a PostgreSQL still running on `dataDir`? Its pid, or null. */
export function runningPostgres(dataDir: string): number | null {
  const pidFile = join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null; // a stale pid file: PostgreSQL replaces it
  }
}

function withCredentials(url: string, user: string, password: string, database: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  u.pathname = "/" + database;
  return u.toString();
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: "lexbuilder-start" });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** A superuser connection: with the stored password, or once with the old fixed one (then changed). */
async function connectAsSuperuser(db: EmbeddedDatabase, password: string, note: (line: string) => void): Promise<pg.Client> {
  try {
    return await connect(db.adminUrl);
  } catch (err) {
    if ((err as { code?: string }).code !== "28P01") throw err;
  }
  const client = await connect(withCredentials(db.adminUrl, "postgres", LEGACY_SUPERUSER_PASSWORD, "postgres"));
  await setRolePassword(client, "postgres", password);
  note("PostgreSQL: replaced the old fixed superuser password with a random one");
  return client;
}

/** Starts the cluster (making it on the first run) and returns the daemons' connection. */
export async function startLocalDatabase(opts: { home: string; port: number | null; note: (line: string) => void }): Promise<LocalDatabase> {
  const dataDir = join(opts.home, "pg");
  const running = runningPostgres(dataDir);
  if (running !== null) {
    throw new Error(`a PostgreSQL (pid ${running}) still runs on ${dataDir}: is another npm start running? If not, stop it with: kill ${running}`);
  }
  // Both secrets exist before the database is touched: a start cut short half-way finds them
  // again, and the old password still works for the step that did not happen.
  const superuserPassword = readOrCreateSecret(join(opts.home, "pg-superuser.password"));
  const passwordFile = join(opts.home, "pg-lexbuilder.password");
  const ownerPassword = readOrCreateSecret(passwordFile);

  const db = await startEmbeddedPostgres({ dataDir, persistent: true, password: superuserPassword, ...(opts.port ? { port: opts.port } : {}) });
  try {
    const admin = await connectAsSuperuser(db, superuserPassword, opts.note);
    try {
      await ensureLoginRole(admin, OWNER_ROLE, ownerPassword);
      await ensureDatabaseOwnedBy(admin, DATABASE, OWNER_ROLE);
    } finally {
      await admin.end();
    }
    // Tables an older npm start made as the superuser become the owner's.
    const inDatabase = await connect(withCredentials(db.adminUrl, "postgres", superuserPassword, DATABASE));
    try {
      const moved = await handOverSchemaObjects(inDatabase, OWNER_ROLE);
      if (moved) opts.note(`PostgreSQL: the role ${OWNER_ROLE} now owns the ${moved} objects of the database ${DATABASE}`);
    } finally {
      await inDatabase.end();
    }
  } catch (err) {
    await db.stop().catch(() => {});
    throw err;
  }
  const url = withCredentials(db.adminUrl, OWNER_ROLE, ownerPassword, DATABASE);
  const shown = new URL(url);
  shown.password = "";
  return { url, shownUrl: shown.toString(), port: db.port, passwordFile, stop: db.stop };
}

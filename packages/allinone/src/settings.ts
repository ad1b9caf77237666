// What `npm start` is told: the environment and the command line, read once, checked.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface Settings {
  /** The repository this runs from (examples/, the daemons' bin/). */
  repo: string;
  /** The data folder: PostgreSQL, the slave's state, artifacts, secrets. */
  home: string;
  webListen: string;
  slaveListen: string;
  metricsListen: string;
  /** The embedded PostgreSQL's port (a free one when unset). */
  pgPort: number | null;
  /** Use this PostgreSQL instead of the embedded one. */
  databaseUrl: string | null;
  /** Show the children's pino lines readable (else raw JSON). */
  pretty: boolean;
  resetAdminPassword: boolean;
}

const OPTIONS = ["--reset-admin-password"];

/** Throws a one-sentence Error for anything it cannot use. */
export function readSettings(argv: string[], env: NodeJS.ProcessEnv): Settings {
  const unknown = argv.find((a) => !OPTIONS.includes(a));
  if (unknown !== undefined) throw new Error(`unknown option "${unknown}"; the only option is --reset-admin-password.`);
  // <repo>/packages/allinone/dist/settings.js
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  const pgPort = env.LEXBUILDER_PG_PORT ? Number(env.LEXBUILDER_PG_PORT) : null;
  if (pgPort !== null && !(Number.isInteger(pgPort) && pgPort > 0 && pgPort < 65536)) {
    throw new Error(`LEXBUILDER_PG_PORT must be a port number (1-65535), not "${env.LEXBUILDER_PG_PORT}".`);
  }
  const settings: Settings = {
    repo,
    home: resolve(repo, env.LEXBUILDER_HOME || ".lexbuilder"),
    webListen: env.LEXBUILDER_WEBAPP_LISTEN || "127.0.0.1:8080",
    slaveListen: env.LEXBUILDER_SLAVE_LISTEN || "127.0.0.1:8221",
    metricsListen: env.LEXBUILDER_MASTER_METRICS_LISTEN || "127.0.0.1:9821",
    pgPort,
    databaseUrl: env.DATABASE_URL || null,
    pretty: env.LEXBUILDER_PRETTY !== "0",
    resetAdminPassword: argv.includes("--reset-admin-password"),
  };
  for (const [name, listen] of [
    ["LEXBUILDER_WEBAPP_LISTEN", settings.webListen],
    ["LEXBUILDER_SLAVE_LISTEN", settings.slaveListen],
    ["LEXBUILDER_MASTER_METRICS_LISTEN", settings.metricsListen],
  ] as const) {
    if (!LISTEN.test(listen)) throw new Error(`${name} must look like host:port, not "${listen}".`);
  }
  return settings;
}

const LISTEN = /^(?:\[([^\]]+)\]|([^:]*)):([0-9]+)$/;

/** The http:// URL that reaches a listen address from this machine (0.0.0.0 → 127.0.0.1). */
export function urlOf(listen: string): string {
  const m = LISTEN.exec(listen)!;
  const given = m[1] ?? m[2] ?? "";
  const host = given === "" || given === "0.0.0.0" ? "127.0.0.1" : given === "::" ? "::1" : given;
  return `http://${host.includes(":") ? `[${host}]` : host}:${m[3]}`;
}

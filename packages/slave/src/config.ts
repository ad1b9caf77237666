// The slave's configuration, from the environment.
// A wrong value is a ConfigError: one sentence naming the variable; main.ts exits 2 with it.
import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import {
  ConfigError,
  readInteger,
  readList,
  readListen,
  readOptionalString,
  readString,
  type ListenAddress,
} from "@lexbuilder/shared-models/config";
import {
  checkArchitectureName,
  checkSchemeList,
  DEFAULT_CONFIG_URL_SCHEMES,
  type Checked,
} from "@lexbuilder/shared-models/rules";

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export interface SlaveConfig {
  listen: ListenAddress;
  stateDir: string;
  tokenFile: string;
  /** The live-build front end (a name looked up in PATH, or a path). */
  lb: string;
  /** debootstrap, checked for readiness only (live-build runs it itself). */
  debootstrap: string;
  allowedSchemes: string[];
  buildTimeoutSeconds: number;
  /** How long abort may take before the build is declared BUILDERFAIL. */
  abortDeadlineSeconds: number;
  minFreeDiskBytes: number;
  /** Results (and stray workspaces) older than this are removed by the slave itself. */
  cacheMaxAgeSeconds: number;
  /** null: ask dpkg. */
  architectures: string[] | null;
  tls: { cert: string; key: string } | null;
  logLevel: string;
  /** container: every lb command in a throwaway container; none: on the host, as root. */
  isolation: "container" | "none";
  /** bubblewrap, which runs each command inside the container. */
  bwrap: string;
}

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Bytes: a whole number with an optional binary suffix (K, M, G, T; "iB"/"B" allowed). */
export function readBytes(env: Env, name: string, fallback: number): number {
  const value = readOptionalString(env, name);
  if (value === undefined) return fallback;
  const m = /^([0-9]+)\s*([kmgt]?)(?:i?b)?$/i.exec(value);
  if (!m) throw new ConfigError(`${name} must be a size in bytes such as 8589934592 or 8G, not "${value}".`);
  const n = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(n)) throw new ConfigError(`${name} is too large: "${value}".`);
  return n;
}

/** The rule's value, or a ConfigError with its sentence (prefixed by the setting it is about). */
function ruled<T>(checked: Checked<T>, setting?: string): T {
  if (checked.error !== undefined) throw new ConfigError(setting ? `${setting}: ${checked.error}` : checked.error);
  return checked.value;
}

function readPath(env: Env, name: string, fallback: string): string {
  const value = readString(env, name, fallback);
  if (!isAbsolute(value)) throw new ConfigError(`${name} must be an absolute path, not "${value}".`);
  return value;
}

export function readSlaveConfig(env: Env = process.env): SlaveConfig {
  const listen = readListen(env, "LEXBUILDER_SLAVE_LISTEN", "0.0.0.0:8221");
  const stateDir = readPath(env, "LEXBUILDER_SLAVE_STATE_DIR", "/var/lib/lexbuilder-slave");
  const tokenFile = readPath(env, "LEXBUILDER_SLAVE_TOKEN_FILE", "/etc/lexbuilder/slave.token");
  const lb = readString(env, "LEXBUILDER_SLAVE_LB", "lb");
  const debootstrap = readString(env, "LEXBUILDER_SLAVE_DEBOOTSTRAP", "debootstrap");

  const allowedSchemes = ruled(
    checkSchemeList(readList(env, "LEXBUILDER_SLAVE_ALLOWED_SCHEMES", [...DEFAULT_CONFIG_URL_SCHEMES]), "LEXBUILDER_SLAVE_ALLOWED_SCHEMES"),
  );

  const buildTimeoutSeconds = readInteger(env, "LEXBUILDER_SLAVE_BUILD_TIMEOUT", 14400, 1, 7 * 24 * 3600);
  const abortDeadlineSeconds = readInteger(env, "LEXBUILDER_SLAVE_ABORT_DEADLINE", 10, 1, 600);
  // Koji refuses work below 8 GiB free; a real minimal image needs about 1.75 GB while building.
  const minFreeDiskBytes = readBytes(env, "LEXBUILDER_SLAVE_MIN_FREE_DISK", 8 * 1024 ** 3);
  // launchpad-buildd clears its file cache after two days.
  const cacheMaxAgeSeconds = readInteger(env, "LEXBUILDER_SLAVE_CACHE_MAX_AGE", 2 * 24 * 3600, 1, 365 * 24 * 3600);

  let architectures: string[] | null = null;
  if (readOptionalString(env, "LEXBUILDER_SLAVE_ARCHITECTURES") !== undefined) {
    architectures = readList(env, "LEXBUILDER_SLAVE_ARCHITECTURES", []);
    for (const arch of architectures) ruled(checkArchitectureName(arch), "LEXBUILDER_SLAVE_ARCHITECTURES");
  }

  const cert = readOptionalString(env, "LEXBUILDER_SLAVE_TLS_CERT");
  const key = readOptionalString(env, "LEXBUILDER_SLAVE_TLS_KEY");
  let tls: SlaveConfig["tls"] = null;
  if (cert !== undefined || key !== undefined) {
    if (cert === undefined || key === undefined) {
      throw new ConfigError("LEXBUILDER_SLAVE_TLS_CERT and LEXBUILDER_SLAVE_TLS_KEY must be set together, or neither.");
    }
    for (const [name, file] of [["LEXBUILDER_SLAVE_TLS_CERT", cert], ["LEXBUILDER_SLAVE_TLS_KEY", key]] as const) {
      if (!existsSync(file)) throw new ConfigError(`${name} names ${file}, which does not exist.`);
    }
    tls = { cert, key };
  }

  const isolation = readString(env, "LEXBUILDER_SLAVE_ISOLATION", "container");
  if (isolation !== "container" && isolation !== "none") {
    throw new ConfigError(`LEXBUILDER_SLAVE_ISOLATION must be container or none, not "${isolation}".`);
  }

  const logLevel = readString(env, "LOG_LEVEL", "info");
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, not "${logLevel}".`);
  }

  return {
    listen,
    stateDir,
    tokenFile,
    lb,
    debootstrap,
    allowedSchemes,
    buildTimeoutSeconds,
    abortDeadlineSeconds,
    minFreeDiskBytes,
    cacheMaxAgeSeconds,
    architectures,
    tls,
    logLevel,
    isolation,
    bwrap: readString(env, "LEXBUILDER_SLAVE_BWRAP", "bwrap"),
  };
}

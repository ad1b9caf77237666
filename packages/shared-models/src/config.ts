// Environment-variable configuration: each daemon declares what it reads; a missing or wrong
// value stops it with one sentence naming the variable and what it expects.

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

export function readString(env: Env, name: string, fallback?: string): string {
  const value = raw(env, name) ?? fallback;
  if (value === undefined) throw new ConfigError(`${name} is not set; set it in the environment or in /etc/lexbuilder/*.env.`);
  return value;
}

export function readOptionalString(env: Env, name: string): string | undefined {
  return raw(env, name);
}

export function readInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^-?[0-9]+$/.test(value)) throw new ConfigError(`${name} must be a whole number, not "${value}".`);
  const n = Number(value);
  // Quote what was written: a huge value would otherwise print as 1e+21.
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, not ${value}.`);
  return n;
}

export function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${name} must be true or false, not "${value}".`);
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** "host:port", "[v6]:port" or ":port". */
export function parseListen(name: string, value: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):([0-9]{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new ConfigError(`${name} must look like host:port (for example 127.0.0.1:8080), not "${value}".`);
  }
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export function readListen(env: Env, name: string, fallback: string): ListenAddress {
  return parseListen(name, raw(env, name) ?? fallback);
}

export function readDatabaseUrl(env: Env): string {
  const url = readString(env, "DATABASE_URL");
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new ConfigError("DATABASE_URL must be a postgres:// or postgresql:// connection URL.");
  }
  try {
    new URL(url);
  } catch {
    // The value is not repeated: it may hold a password.
    throw new ConfigError("DATABASE_URL is not a valid URL; percent-encode special characters in the user name and password.");
  }
  return url;
}

export function readList(env: Env, name: string, fallback: string[]): string[] {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  // "," or " , " is a mistake, not a wish for an empty list (unset the variable for the default).
  if (items.length === 0) throw new ConfigError(`${name} must be a comma-separated list, not "${value}".`);
  return items;
}

/** Run a daemon's config reader; on ConfigError print the sentence and exit 2. */
export function loadConfigOrExit<T>(read: () => T, program: string): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${program}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

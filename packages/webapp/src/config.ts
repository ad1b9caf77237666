// The webapp's environment, validated at start-up: a wrong value stops it with one sentence.
import { targetPolicyFromEnv, type TargetPolicy } from "@lexbuilder/shared-models/webhook-target";
import { readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import {
  ConfigError,
  readDatabaseUrl,
  readList,
  readListen,
  readOptionalString,
  readString,
  type ListenAddress,
} from "@lexbuilder/shared-models/config";
import { DEFAULT_CONFIG_URL_SCHEMES, checkSchemeList } from "@lexbuilder/shared-models/rules";

export interface WebappConfig {
  databaseUrl: string;
  /** LEXBUILDER_PUBLIC_URL without a trailing slash: absolute links (feeds) start with it; unset, the request's host. */
  publicUrl?: string;
  /** Where webhooks may point (the master checks again on every send). */
  webhookPolicy: TargetPolicy;
  listen: ListenAddress;
  /** Session and CSRF secret. */
  secret: string;
  artifactsDir: string;
  allowedConfigSchemes: string[];
  /** Express "trust proxy": false, true, a hop count or a list of addresses. */
  trustProxy: boolean | number | string;
  /**
   * Secure cookies and HSTS: "auto" (default) on requests that came over HTTPS, directly or as
   * the trusted proxy says (X-Forwarded-Proto); true on every answer; false never.
   */
  secureCookies: boolean | "auto";
  /** Login attempts per address per 15 minutes. */
  /** Failed logins (and password changes) from one address in 15 minutes before it waits. */
  loginAttempts: number;
  /** Failed logins for one account (or password changes of it) in 15 minutes before it waits. */
  accountLoginAttempts: number;
  /** Live-log streams one user may hold open at once (20 when not given). */
  liveStreamsPerUser?: number;
  /** Time zone shown for schedules that name none. */
  timeZone: string;
  /**
   * How long cached sessions, token owners and pages may live when no notification drops them
   * (the bound on staleness for writes a notification might miss); 0 turns the caches off.
   * Default 1000.
   */
  cacheTtlMs?: number;
}

export function readSecretFile(path: string): string {
  let text: string | null = null;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ConfigError(`LEXBUILDER_WEBAPP_SECRET_FILE ${path} cannot be read (${(err as NodeJS.ErrnoException).code}); check its permissions.`);
    }
  }
  if (text === null) {
    const secret = randomBytes(32).toString("hex");
    try {
      writeFileSync(path, secret + "\n", { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return readSecretFile(path);
      throw new ConfigError(`LEXBUILDER_WEBAPP_SECRET_FILE ${path} cannot be created (${(err as NodeJS.ErrnoException).code}); create its folder or point the variable elsewhere.`);
    }
    return secret;
  }
  if (text.length < 32) {
    throw new ConfigError(`LEXBUILDER_WEBAPP_SECRET_FILE ${path} holds fewer than 32 characters; delete it to have a new secret made.`);
  }
  return text;
}

function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined) return false;
  if (/^(true|yes|on)$/i.test(value)) return true;
  if (/^(false|no|off)$/i.test(value)) return false;
  if (/^[0-9]{1,2}$/.test(value)) return Number(value);
  if (/^[0-9a-fA-F.:/, ]+$|^(loopback|linklocal|uniquelocal)(, *(loopback|linklocal|uniquelocal))*$/.test(value)) return value;
  throw new ConfigError(`LEXBUILDER_WEBAPP_TRUST_PROXY must be true, false, a hop count or a list of proxy addresses, not "${value}".`);
}

function readSecureCookies(env: Record<string, string | undefined>): boolean | "auto" {
  const value = readOptionalString(env, "LEXBUILDER_WEBAPP_SECURE_COOKIES");
  if (value === undefined || /^auto$/i.test(value)) return "auto";
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`LEXBUILDER_WEBAPP_SECURE_COOKIES must be auto, true or false, not "${value}".`);
}

export function readWebappConfig(env: Record<string, string | undefined> = process.env): WebappConfig {
  const databaseUrl = readDatabaseUrl(env);
  const listen = readListen(env, "LEXBUILDER_WEBAPP_LISTEN", "127.0.0.1:8080");
  const secretFile = readString(env, "LEXBUILDER_WEBAPP_SECRET_FILE", "/etc/lexbuilder/webapp.secret");
  const artifactsDir = readString(env, "LEXBUILDER_ARTIFACTS_DIR", "/var/lib/lexbuilder/artifacts");
  if (!artifactsDir.startsWith("/")) throw new ConfigError(`LEXBUILDER_ARTIFACTS_DIR must be an absolute path, not "${artifactsDir}".`);
  const schemes = checkSchemeList(readList(env, "LEXBUILDER_ALLOWED_CONFIG_SCHEMES", [...DEFAULT_CONFIG_URL_SCHEMES]), "LEXBUILDER_ALLOWED_CONFIG_SCHEMES");
  if (schemes.error !== undefined) throw new ConfigError(schemes.error);
  const allowedConfigSchemes = schemes.value;
  const level = readOptionalString(env, "LOG_LEVEL");
  if (level !== undefined && !["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(level)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, not "${level}".`);
  }
  const trustProxy = parseTrustProxy(readOptionalString(env, "LEXBUILDER_WEBAPP_TRUST_PROXY"));
  const secureCookies = readSecureCookies(env);
  const timeZone = readString(env, "TZ", "UTC");
  try {
    new Intl.DateTimeFormat("en", { timeZone });
  } catch {
    throw new ConfigError(`TZ must be a time zone name such as Europe/Berlin, not "${timeZone}".`);
  }
  const ttlText = readOptionalString(env, "LEXBUILDER_WEBAPP_CACHE_TTL_MS");
  if (ttlText !== undefined && (!/^[0-9]{1,4}$/.test(ttlText) || Number(ttlText) > 2000)) {
    throw new ConfigError(`LEXBUILDER_WEBAPP_CACHE_TTL_MS must be a whole number of milliseconds from 0 (no caching) to 2000, not "${ttlText}".`);
  }
  const cacheTtlMs = ttlText === undefined ? 1000 : Number(ttlText);
  const streamsText = readOptionalString(env, "LEXBUILDER_WEBAPP_LIVE_STREAMS_PER_USER");
  if (streamsText !== undefined && (!/^[0-9]{1,4}$/.test(streamsText) || Number(streamsText) < 1 || Number(streamsText) > 1000)) {
    throw new ConfigError(`LEXBUILDER_WEBAPP_LIVE_STREAMS_PER_USER must be a whole number from 1 to 1000, not "${streamsText}".`);
  }
  const liveStreamsPerUser = streamsText === undefined ? 20 : Number(streamsText);
  const secret = readSecretFile(secretFile);
  const policy = targetPolicyFromEnv(env);
  if (policy.error !== undefined) throw new ConfigError(policy.error);
  const publicUrl = readOptionalString(env, "LEXBUILDER_PUBLIC_URL")?.replace(/\/+$/, "");
  if (publicUrl !== undefined && !/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(publicUrl)) {
    throw new ConfigError(`LEXBUILDER_PUBLIC_URL must be the console's http(s) address, such as https://lexbuilder.example.org, not "${publicUrl.slice(0, 80)}".`);
  }
  return { publicUrl, webhookPolicy: policy.value, databaseUrl, listen, secret, artifactsDir, allowedConfigSchemes, trustProxy, secureCookies, loginAttempts: 50, accountLoginAttempts: 10, liveStreamsPerUser, timeZone, cacheTtlMs };
}

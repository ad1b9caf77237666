// The master's configuration, from the environment (systemd EnvironmentFile), validated at
// start-up: a wrong value stops the daemon with one sentence (exit 2).
import {
  ConfigError,
  readDatabaseUrl,
  readInteger,
  readListen,
  readString,
  readOptionalString,
  type ListenAddress,
} from "@lexbuilder/shared-models/config";
import { checkEmail } from "@lexbuilder/shared-models/rules";
import { targetPolicyFromEnv, type TargetPolicy } from "@lexbuilder/shared-models/webhook-target";

type Env = Record<string, string | undefined>;

export interface MasterConfig {
  databaseUrl: string;
  artifactsDir: string;
  metricsListen: ListenAddress;
  /** Consecutive failed scans tolerated as glitches before they count (launchpad: 5). */
  scanGlitches: number;
  /** Counted re-queues of one job before it fails with kind `builder` (launchpad: 3). */
  requeueLimit: number;
  /** Counted failures after which a builder is disabled (launchpad: 5). */
  builderFailureLimit: number;
  /** Pause after a failed scan before the next one, ms. */
  scanRetryMs: number;
  /** Long-poll wait passed to status(), seconds (≤ 30). */
  statusWaitSeconds: number;
  /** Whole-call timeout of a long poll, ms (launchpad: 40 s). */
  callTimeoutMs: number;
  /** Timeout of control calls (build, abort, clean, info) and HTTP transfers' idle time, ms. */
  controlTimeoutMs: number;
  /** Safety-net sweep of queue, cancels and orphans, ms. */
  sweepMs: number;
  /** How long a cancel may wait for the builder to stop, ms (launchpad: 180 s). */
  cancelDeadlineMs: number;
  /** Downloads of one file tried before the build fails with kind `collect`. */
  collectAttempts: number;
  /** Connections the master keeps to PostgreSQL; a farm of hundreds of builders wants more. */
  dbPoolSize: number;
  /** How often builder info() is refreshed, ms. */
  infoRefreshMs: number;
  /** How often the retention janitor runs, ms. */
  janitorMs: number;
  logLevel: string;
  /** Where people reach the console; links in mails and webhook payloads start with it. */
  publicUrl: string;
  /** smtp://… or smtps://…; null: no mail is sent. */
  smtpUrl: string | null;
  mailFrom: string;
  webhookPolicy: TargetPolicy;
  /** Per webhook request or mail, ms. */
  notifyTimeoutMs: number;
  /** The first retry's delay, ms (later ones double). */
  notifyRetryBaseMs: number;
  notifyPollMs: number;
  notifyConcurrency: number;
}

export function readMasterConfig(env: Env = process.env): MasterConfig {
  const level = readString(env, "LOG_LEVEL", "info");
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(level)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace or silent, not "${level}".`);
  }
  const artifactsDir = readString(env, "LEXBUILDER_ARTIFACTS_DIR", "/var/lib/lexbuilder/artifacts");
  if (!artifactsDir.startsWith("/")) {
    throw configError(`LEXBUILDER_ARTIFACTS_DIR must be an absolute path, not "${artifactsDir}".`);
  }
  const statusWaitSeconds = readInteger(env, "LEXBUILDER_MASTER_STATUS_WAIT", 30, 1, 30);
  const callTimeoutSeconds = readInteger(env, "LEXBUILDER_MASTER_CALL_TIMEOUT", 40, 2, 600);
  if (callTimeoutSeconds <= statusWaitSeconds) {
    throw configError(
      `LEXBUILDER_MASTER_CALL_TIMEOUT (${callTimeoutSeconds} s) must be longer than LEXBUILDER_MASTER_STATUS_WAIT (${statusWaitSeconds} s).`,
    );
  }
  return {
    databaseUrl: readDatabaseUrl(env),
    artifactsDir,
    metricsListen: readListen(env, "LEXBUILDER_MASTER_METRICS_LISTEN", "127.0.0.1:9821"),
    scanGlitches: readInteger(env, "LEXBUILDER_MASTER_SCAN_GLITCHES", 5, 0, 1000),
    requeueLimit: readInteger(env, "LEXBUILDER_MASTER_REQUEUE_LIMIT", 3, 0, 100),
    builderFailureLimit: readInteger(env, "LEXBUILDER_MASTER_BUILDER_FAILURE_LIMIT", 5, 1, 1000),
    scanRetryMs: readInteger(env, "LEXBUILDER_MASTER_SCAN_RETRY_MS", 2000, 10, 600_000),
    statusWaitSeconds,
    callTimeoutMs: callTimeoutSeconds * 1000,
    controlTimeoutMs: readInteger(env, "LEXBUILDER_MASTER_CONTROL_TIMEOUT", 30, 1, 600) * 1000,
    sweepMs: readInteger(env, "LEXBUILDER_MASTER_SWEEP_SECONDS", 10, 1, 3600) * 1000,
    cancelDeadlineMs: readInteger(env, "LEXBUILDER_MASTER_CANCEL_DEADLINE", 180, 1, 86_400) * 1000,
    collectAttempts: readInteger(env, "LEXBUILDER_MASTER_COLLECT_ATTEMPTS", 3, 1, 100),
    infoRefreshMs: readInteger(env, "LEXBUILDER_MASTER_INFO_REFRESH", 300, 5, 86_400) * 1000,
    janitorMs: readInteger(env, "LEXBUILDER_MASTER_JANITOR_INTERVAL", 3600, 1, 7 * 86_400) * 1000,
    dbPoolSize: readInteger(env, "LEXBUILDER_MASTER_DB_POOL", 20, 2, 500),
    logLevel: level,
    ...readNotifyConfig(env),
  };
}

function readNotifyConfig(env: Env) {
  const publicUrl = readString(env, "LEXBUILDER_PUBLIC_URL", "http://localhost:8080").replace(/\/+$/, "");
  if (!/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(publicUrl)) {
    throw configError(`LEXBUILDER_PUBLIC_URL must be the console's http(s) address, such as https://lexbuilder.example.org, not "${publicUrl.slice(0, 80)}".`);
  }
  const smtpUrl = readOptionalString(env, "LEXBUILDER_SMTP_URL") ?? null;
  if (smtpUrl !== null) {
    let u: URL | null = null;
    try {
      u = new URL(smtpUrl);
    } catch {
      u = null;
    }
    if (!u || (u.protocol !== "smtp:" && u.protocol !== "smtps:") || !u.hostname) {
      throw configError("LEXBUILDER_SMTP_URL must look like smtp://[user:password@]host:port (STARTTLS when offered) or smtps://… (TLS).");
    }
  }
  const fromText = readString(env, "LEXBUILDER_MAIL_FROM", "lexbuilder@localhost");
  const fromAddress = /<([^>]+)>\s*$/.exec(fromText)?.[1] ?? fromText;
  if (!/^[^@\s]+@[^@\s]+$/.test(fromAddress) || /[\r\n]/.test(fromText)) {
    throw configError(`LEXBUILDER_MAIL_FROM must be an address such as "lexbuilder <builds@example.org>", not "${fromText.slice(0, 80)}".`);
  }
  if (fromAddress.includes(".") && checkEmail(fromAddress).error) throw configError(`LEXBUILDER_MAIL_FROM: ${checkEmail(fromAddress).error}`);
  const policy = targetPolicyFromEnv(env);
  if (policy.error !== undefined) throw configError(policy.error);
  return {
    publicUrl,
    smtpUrl,
    mailFrom: fromText,
    webhookPolicy: policy.value,
    notifyTimeoutMs: readInteger(env, "LEXBUILDER_NOTIFY_TIMEOUT_MS", 10_000, 100, 60_000),
    notifyRetryBaseMs: readInteger(env, "LEXBUILDER_NOTIFY_RETRY_BASE_MS", 30_000, 10, 3_600_000),
    notifyPollMs: readInteger(env, "LEXBUILDER_NOTIFY_POLL_MS", 2000, 20, 600_000),
    notifyConcurrency: readInteger(env, "LEXBUILDER_NOTIFY_CONCURRENCY", 16, 1, 256),
  };
}

function configError(message: string): ConfigError {
  return new ConfigError(message);
}

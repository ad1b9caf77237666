// The pino factory every daemon uses: JSON to stdout (journald), one `name` per component.
import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger } from "pino";

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const wanted = process.env.LOG_LEVEL ?? "info";
  const level = LEVELS.includes(wanted) ? wanted : "info";
  return pino({
    name,
    level,
    // Secrets never reach logs, whichever field they end up in.
    redact: {
      paths: ["token", "*.token", "password", "*.password", "secret", "*.secret", "authorization", "*.authorization", "req.headers.authorization", "req.headers.cookie"],
      censor: "[redacted]",
    },
    ...options,
  });
}

// lexbuilder-webapp: the web console. Configuration from the environment.
import { createServer } from "node:http";
import { stat } from "node:fs/promises";
import { loadConfigOrExit } from "@lexbuilder/shared-models/config";
import { Listener, createPool, migrationStatus } from "@lexbuilder/shared-models/db";
import { createLogger } from "@lexbuilder/shared-models/logger";
import { createApp } from "./app.js";
import { readWebappConfig } from "./config.js";

const PROGRAM = "lexbuilder-webapp";

const HELP = `Usage: ${PROGRAM} [--help]

Runs lexbuilder's web console: projects, builds, live logs, manifests, builders, users and the
JSON API under /api/v1. It reads and writes PostgreSQL only (and serves files from the
artifacts directory); the master does the building.

Environment:
  DATABASE_URL                       PostgreSQL connection URL (required)
  LEXBUILDER_WEBAPP_LISTEN           host:port to listen on (127.0.0.1:8080)
  LEXBUILDER_WEBAPP_SECRET_FILE      session/CSRF secret, created 0600 if absent
                                     (/etc/lexbuilder/webapp.secret)
  LEXBUILDER_ARTIFACTS_DIR           where collected files live (/var/lib/lexbuilder/artifacts)
  LEXBUILDER_ALLOWED_CONFIG_SCHEMES  config URL schemes projects may use (https,http,git,ssh)
  LEXBUILDER_WEBAPP_TRUST_PROXY      behind a reverse proxy: true, a hop count or proxy
                                     addresses (false)
  LEXBUILDER_WEBAPP_SECURE_COOKIES   Secure cookies and HSTS: auto (on requests that came
                                     over HTTPS, as the trusted proxy says), true or false (auto)
  LEXBUILDER_WEBAPP_LIVE_STREAMS_PER_USER
                                     live logs one user may follow at once, 1-1000 (20)
  LEXBUILDER_WEBAPP_CACHE_TTL_MS     longest life of a cached session, token owner or page
                                     when no notification drops it earlier, 0-2000 (1000)
  TZ                                 time zone for shown times and new schedules (UTC)
  LOG_LEVEL                          pino level (info)
`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  if (args.length) {
    process.stderr.write(`${PROGRAM}: unknown argument "${args[0]}"; see ${PROGRAM} --help.\n`);
    process.exit(2);
  }
  const config = loadConfigOrExit(() => readWebappConfig(process.env), PROGRAM);
  const log = createLogger("webapp");
  const pool = createPool(config.databaseUrl, { max: 20, applicationName: PROGRAM });
  try {
    const status = await migrationStatus(pool);
    if (!status.current) {
      process.stderr.write(`${PROGRAM}: the database schema is not up to date (pending: ${status.pending.join(", ")}); run \`lexbuilder-admin migrate\` first.\n`);
      process.exit(2);
    }
  } catch (err) {
    process.stderr.write(`${PROGRAM}: cannot reach PostgreSQL at DATABASE_URL (${(err as Error).message}); check that it runs and the URL is right.\n`);
    process.exit(1);
  }
  if (!(await stat(config.artifactsDir).then((s) => s.isDirectory(), () => false))) {
    log.warn({ artifactsDir: config.artifactsDir }, "the artifacts directory does not exist yet; downloads will answer 404 until the master has collected files");
  }
  const listener = new Listener(config.databaseUrl, log.child({ component: "listen" }));
  await listener.start().catch((err: Error) => log.warn({ err: err.message }, "cannot listen for notifications yet; live logs poll until it reconnects"));

  const app = createApp({ pool, listener, config, log });
  const server = createServer(app);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.requestTimeout = 0; // downloads and live logs run long
  server.on("clientError", answerUnparsableRequest);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(
        new Error(
          err.code === "EADDRINUSE"
            ? `${config.listen.host}:${config.listen.port} is already in use; stop the other program or set LEXBUILDER_WEBAPP_LISTEN.`
            : `cannot listen on ${config.listen.host}:${config.listen.port} (${err.code ?? err.message}).`,
        ),
      );
    });
    server.listen(config.listen.port, config.listen.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.listen.port;
  log.info({ url: `http://${config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host}:${port}/` }, "web console listening");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    // Wait on close() itself: a "close" event listened for later may already have fired.
    const closed = new Promise((r) => server.close(() => r(undefined)));
    server.closeIdleConnections();
    // Live logs never end by themselves: give them a moment, then close them.
    setTimeout(() => server.closeAllConnections(), 1000).unref();
    await listener.stop();
    await closed;
    await pool.end().catch(() => {});
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err: Error) => {
  process.stderr.write(`${PROGRAM}: ${err.message}\n`);
  process.exit(1);
});

/**
 * Requests Node's parser refuses before Express sees them (a URL or headers over 16 KiB, bad
 * syntax) still get a sentence, as JSON like every API error, instead of an empty answer.
 */
function answerUnparsableRequest(err: NodeJS.ErrnoException, socket: import("node:stream").Duplex): void {
  if (!socket.writable || (err as { code?: string }).code === "ECONNRESET") {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === "HPE_HEADER_OVERFLOW";
  const body = JSON.stringify({
    error: tooLarge
      ? "The request's URL or headers are too long; shorten the address or remove some headers."
      : "The request could not be understood; check the address and headers.",
  });
  const status = tooLarge ? "431 Request Header Fields Too Large" : "400 Bad Request";
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

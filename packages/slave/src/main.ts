// lexbuilder-slave: runs the build-machine daemon, or (`token`) prints its bearer token.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigError, loadConfigOrExit } from "@lexbuilder/shared-models/config";
import { createLogger } from "@lexbuilder/shared-models/logger";
import { Builder } from "./builder.js";
import { ResultCache } from "./cache.js";
import { readSlaveConfig, type SlaveConfig } from "./config.js";
import { setUpIsolation } from "./isolation.js";
import { checkReadiness, dpkgArchitectures, hostCodename, liveBuildVersion } from "./readiness.js";
import { createSlaveServer } from "./server.js";

const PROGRAM = "lexbuilder-slave";

const HELP = `Usage: ${PROGRAM} [run]     run the build-machine daemon
       ${PROGRAM} token     print the bearer token (creating it if absent)
       ${PROGRAM} --help    show this help

The daemon listens for the master's XML-RPC calls on POST /rpc and serves result files on
GET /files/<sha256> and build logs on GET /builds/<cookie>/log; it runs as root.

Environment (defaults in brackets):
  LEXBUILDER_SLAVE_LISTEN           host:port to listen on [0.0.0.0:8221]
  LEXBUILDER_SLAVE_STATE_DIR        workspaces, state and result cache [/var/lib/lexbuilder-slave]
  LEXBUILDER_SLAVE_TOKEN_FILE       bearer token, created 0600 if absent [/etc/lexbuilder/slave.token]
  LEXBUILDER_SLAVE_LB               the live-build front end [lb]
  LEXBUILDER_SLAVE_DEBOOTSTRAP      debootstrap, checked for readiness [debootstrap]
  LEXBUILDER_SLAVE_ALLOWED_SCHEMES  config URL schemes [https,http,git,ssh] (file also possible)
  LEXBUILDER_SLAVE_BUILD_TIMEOUT    seconds a build may run [14400]
  LEXBUILDER_SLAVE_ABORT_DEADLINE   seconds an abort may take before BUILDERFAIL [10]
  LEXBUILDER_SLAVE_MIN_FREE_DISK    free disk needed to accept a build, bytes or 8G-style [8G]
  LEXBUILDER_SLAVE_CACHE_MAX_AGE    seconds results are kept when nobody collects them [172800]
  LEXBUILDER_SLAVE_ARCHITECTURES    comma-separated list [dpkg's native + foreign architectures]
  LEXBUILDER_SLAVE_TLS_CERT, LEXBUILDER_SLAVE_TLS_KEY   serve HTTPS with this PEM pair [plain HTTP]
  LEXBUILDER_SLAVE_ISOLATION        container (each build in a throwaway container) or none [container]
  LEXBUILDER_SLAVE_BWRAP            bubblewrap, which runs each command in the container [bwrap]
  LOG_LEVEL                         fatal, error, warn, info, debug, trace or silent [info]
`;

function fail(sentence: string, code = 1): never {
  process.stderr.write(`${PROGRAM}: ${sentence}\n`);
  process.exit(code);
}

/** The token in `file`, created (64 hex digits, mode 0600) when the file does not exist. */
function ensureToken(file: string): string {
  try {
    const token = readFileSync(file, "utf8").trim();
    if (token.length < 16 || /\s/.test(token)) {
      throw new ConfigError(`The token in ${file} is shorter than 16 characters or contains spaces; delete the file to have a new one made.`);
    }
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`The token file ${file} cannot be read (${(err as Error).message}).`);
    }
  }
  const token = randomBytes(32).toString("hex");
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    // "wx": never overwrite a token another process has just created.
    writeFileSync(file, token + "\n", { mode: 0o600, flag: "wx" });
    chmodSync(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return ensureToken(file);
    throw new ConfigError(`The token file ${file} cannot be created (${(err as Error).message}).`);
  }
  return token;
}

function builderVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

async function run(config: SlaveConfig): Promise<void> {
  const log = createLogger("lexbuilder-slave", { level: config.logLevel });
  let token: string;
  try {
    mkdirSync(config.stateDir, { recursive: true, mode: 0o755 });
    token = ensureToken(config.tokenFile);
  } catch (err) {
    fail(err instanceof ConfigError ? err.message : `The state directory ${config.stateDir} cannot be created (${(err as Error).message}).`, 2);
  }
  const architectures = config.architectures ?? (await dpkgArchitectures());
  if (architectures.length === 0) {
    fail("Cannot tell which architectures this machine builds (dpkg is missing); set LEXBUILDER_SLAVE_ARCHITECTURES.", 2);
  }
  let lbVersion = await liveBuildVersion(config.lb);
  // Also removes what containers of a crashed run left (their cgroups).
  const isolation = await setUpIsolation(config.isolation, config.stateDir, config.tokenFile, config.bwrap);
  const readiness = () =>
    checkReadiness({
      lb: config.lb,
      debootstrap: config.debootstrap,
      stateDir: config.stateDir,
      minFreeDiskBytes: config.minFreeDiskBytes,
      isolationProblem: isolation.problem,
    });

  const cache = new ResultCache(join(config.stateDir, "cache"));
  const builder = new Builder({
    stateDir: config.stateDir,
    cache,
    lb: config.lb,
    allowedSchemes: config.allowedSchemes,
    architectures,
    buildTimeoutSeconds: config.buildTimeoutSeconds,
    abortDeadlineSeconds: config.abortDeadlineSeconds,
    minFreeDiskBytes: config.minFreeDiskBytes,
    cacheMaxAgeSeconds: config.cacheMaxAgeSeconds,
    defaultSuite: hostCodename(),
    secrets: [token],
    isolation,
    readiness,
    log,
  });
  await builder.restore();

  const server = createSlaveServer({
    builder,
    cache,
    token: () => token,
    log,
    tls: config.tls,
    builderVersion: builderVersion(),
    architectures,
    allowedSchemes: config.allowedSchemes,
    liveBuildVersion: () => lbVersion,
    readiness,
    isolation: config.isolation,
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    fail(`Cannot listen on ${config.listen.host}:${config.listen.port} (${err.code ?? err.message}); set LEXBUILDER_SLAVE_LISTEN to a free address.`, 1);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.listen.port;
  const ready = readiness();
  log.info(
    { listen: `${config.listen.host}:${port}`, tls: config.tls !== null, isolation: config.isolation, architectures, liveBuildVersion: lbVersion, ready: ready.ready, notReadyReason: ready.reason },
    "lexbuilder-slave listening",
  );

  // The age limit: results nobody collected, and stray workspaces.
  const sweepEveryMs = Math.max(1000, Math.min(3_600_000, (config.cacheMaxAgeSeconds * 1000) / 2));
  const sweeper = setInterval(() => {
    builder.sweep().catch((err: unknown) => log.error({ err }, "cache sweep failed"));
    // live-build may be installed while we run.
    if (!lbVersion) void liveBuildVersion(config.lb).then((v) => (lbVersion = v));
  }, sweepEveryMs);
  sweeper.unref();
  void builder.sweep().catch((err: unknown) => log.error({ err }, "cache sweep failed"));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    clearInterval(sweeper);
    server.close();
    server.closeIdleConnections();
    builder
      .shutdown()
      .catch((err: unknown) => log.error({ err }, "shutdown failed"))
      .finally(() => {
        server.closeAllConnections();
        process.exit(0);
      });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(HELP);
    return;
  }
  if (rest.length > 0 || (command !== undefined && command !== "run" && command !== "token")) {
    fail(`Unknown command "${argv.join(" ")}"; run "${PROGRAM} --help" for the commands.`, 2);
  }
  const config = loadConfigOrExit(() => readSlaveConfig(process.env), PROGRAM);
  if (command === "token") {
    try {
      process.stdout.write(ensureToken(config.tokenFile) + "\n");
    } catch (err) {
      fail((err as Error).message, 2);
    }
    return;
  }
  await run(config);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${PROGRAM}: ${(err as Error).message}\n`);
  process.exit(1);
});

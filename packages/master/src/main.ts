// lexbuilder-master [--standby]: one master per installation (an advisory lock held for life);
// a second one exits at once saying why, or with --standby waits and takes over.
import { loadConfigOrExit } from "@lexbuilder/shared-models/config";
import { createLogger } from "@lexbuilder/shared-models/logger";
import { readMasterConfig } from "./config.js";
import { MasterLock } from "./lock.js";
import { Master } from "./master.js";
import { startMetricsServer } from "./metrics.js";

const HELP = `Usage: lexbuilder-master [--standby]

Runs the lexbuilder master: the build queue, dispatch to the slaves, live watching,
collection of results, the failure policy, daily builds and retention.

  --standby   if another master is active, wait and take over when it stops
  --help      show this help

Environment: DATABASE_URL (required), LEXBUILDER_ARTIFACTS_DIR (/var/lib/lexbuilder/artifacts),
LEXBUILDER_MASTER_METRICS_LISTEN (127.0.0.1:9821), LOG_LEVEL (info); tunables:
LEXBUILDER_MASTER_SCAN_GLITCHES (5), LEXBUILDER_MASTER_REQUEUE_LIMIT (3),
LEXBUILDER_MASTER_BUILDER_FAILURE_LIMIT (5), LEXBUILDER_MASTER_SCAN_RETRY_MS (2000),
LEXBUILDER_MASTER_STATUS_WAIT (30 s), LEXBUILDER_MASTER_CALL_TIMEOUT (40 s),
LEXBUILDER_MASTER_CONTROL_TIMEOUT (30 s), LEXBUILDER_MASTER_SWEEP_SECONDS (10),
LEXBUILDER_MASTER_CANCEL_DEADLINE (180 s), LEXBUILDER_MASTER_COLLECT_ATTEMPTS (3),
LEXBUILDER_MASTER_INFO_REFRESH (300 s), LEXBUILDER_MASTER_JANITOR_INTERVAL (3600 s),
LEXBUILDER_MASTER_DB_POOL (20 PostgreSQL connections; raise it for hundreds of builders).
`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  const unknown = args.filter((a) => a !== "--standby");
  if (unknown.length) {
    process.stderr.write(`lexbuilder-master: unknown argument ${unknown[0]}; see lexbuilder-master --help.\n`);
    process.exit(2);
  }
  const standby = args.includes("--standby");
  const config = loadConfigOrExit(() => readMasterConfig(process.env), "lexbuilder-master");
  const log = createLogger("lexbuilder-master");

  let shuttingDown = false;
  const lock = new MasterLock(config.databaseUrl, log, (why) => {
    // Another master may already be taking over: stop all work now.
    log.fatal({ why }, "lost the master lock; exiting so the service manager restarts the master");
    process.exit(1);
  });

  // Serves /healthz (503 until this master holds the lock) and /metrics from the start.
  const master = new Master(config, log);
  await startMetricsServer({ listen: config.metricsListen, metrics: master.metrics, pool: master.pool, holdsLock: () => lock.held, log }).catch(
    (err: Error) => {
      process.stderr.write(`lexbuilder-master: ${err.message}\n`);
      process.exit(2);
    },
  );

  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, "stopping");
    // A last resort only: master.stop() bounds its own waits well within this.
    const force = setTimeout(() => {
      log.fatal("the master did not stop within 4.5 s; exiting anyway");
      process.exit(1);
    }, 4500);
    force.unref();
    await master.stop().catch((err: Error) => log.error({ err: err.message }, "stopping the master failed"));
    await lock.release();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  let acquired: boolean;
  try {
    acquired = standby ? await lock.acquireWaiting(1000, () => shuttingDown) : await lock.tryAcquire();
  } catch (err) {
    process.stderr.write(`lexbuilder-master: cannot reach the database to take the master lock (${(err as Error).message}); check DATABASE_URL.\n`);
    process.exit(1);
  }
  if (!acquired) {
    if (shuttingDown) return;
    process.stderr.write(
      "lexbuilder-master: another master is already running on this database; stop it first, or start this one with --standby to take over when it stops.\n",
    );
    process.exit(1);
  }
  log.info({ standby }, "holding the master lock");
  await master.start();
}

main().catch((err) => {
  process.stderr.write(`lexbuilder-master: ${(err as Error).message}\n`);
  process.exit(1);
});

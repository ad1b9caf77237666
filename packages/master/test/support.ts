// A MasterContext over a test database, for tests of one part of the master in-process.
import type { Pool } from "@lexbuilder/shared-models/db";
import { createLogger } from "@lexbuilder/shared-models/logger";
import { readMasterConfig, type MasterConfig } from "../src/config.js";
import type { MasterContext } from "../src/context.js";
import { InFlight } from "../src/in-flight.js";
import { Metrics } from "../src/metrics.js";

export function testContext(pool: Pool, url: string, env: Record<string, string> = {}): MasterContext & { config: MasterConfig } {
  const config = readMasterConfig({ DATABASE_URL: url, ...env });
  return {
    config,
    pool,
    log: createLogger("test", { level: "silent" }),
    metrics: new Metrics(),
    clients: () => null,
    dispatching: new InFlight(),
    stopping: () => false,
  };
}

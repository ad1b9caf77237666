// One PostgreSQL for the whole test run; each test file clones the migrated template.
import { setupTestCluster } from "@lexbuilder/shared-models/testing";

export default async function globalSetup(): Promise<() => Promise<void>> {
  return setupTestCluster();
}

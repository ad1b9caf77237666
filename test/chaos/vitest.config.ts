// vitest config for the runs that are not part of `npm test`: the chaos soak (test/chaos) and
// the long fuzz and load runs. Same aliases as the main config; no shared test cluster (the
// soak runs and kills its own PostgreSQL), no time limits beyond the runs' own deadlines.
import { defineConfig } from "vitest/config";
import { sharedModelsAliases } from "../support/aliases.js";
import { fileURLToPath } from "node:url";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: sharedModelsAliases(),
  },
  test: {
    root: here("../.."),
    include: ["test/chaos/**/*.test.ts", "test/bench/load-*.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    globalSetup: [here("../support/tmpdir-setup.ts")],
    testTimeout: 30 * 60_000,
    hookTimeout: 5 * 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});

// vitest config for `npm run bench` (not part of `npm test`): the benchmarks in test/bench,
// with the same aliases and the same one-PostgreSQL-per-run test cluster as the main config.
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
    include: ["test/bench/**/*.bench.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    globalSetup: [here("../support/global-setup.ts")],
    testTimeout: 60 * 60_000,
    hookTimeout: 10 * 60_000,
    pool: "forks",
    fileParallelism: false,
    reporters: ["default"],
  },
});

import { defineConfig } from "vitest/config";
import { sharedModelsAliases } from "./test/support/aliases.js";

/**
 * Tests that take the whole machine for minutes (a real live-build, the .debs in a debootstrapped
 * root): `npm test` runs them after the rest, one at a time, through vitest.heavy.config.ts.
 */
export const HEAVY_TESTS = ["test/fullstack-real-build.test.ts", "test/packaging-debs.test.ts"];

export default defineConfig({
  resolve: {
    alias: sharedModelsAliases(),
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**", "test/bench/**", "test/chaos/**", ...HEAVY_TESTS],
    globalSetup: ["./test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    reporters: ["default"],
  },
});

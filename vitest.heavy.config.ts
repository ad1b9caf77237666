// The second half of `npm test`: the tests that need the whole machine, one file at a time, so
// a real live-build is not starved by the rest of the suite.
import { defineConfig } from "vitest/config";
import base, { HEAVY_TESTS } from "./vitest.config.js";

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: HEAVY_TESTS,
    exclude: ["**/node_modules/**", "**/dist/**"],
    fileParallelism: false,
  },
});

// Vitest aliases: every subpath export of @lexbuilder/shared-models maps to its source file (read
// from the package's own export map, so a new subpath needs no edit here), and the test support
// module, which is never compiled. Tests thus run shared-models from source: a stale dist/
// never hides a change.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const SHARED = "../../packages/shared-models/";

export function sharedModelsAliases(): { find: RegExp; replacement: string }[] {
  const pkg = JSON.parse(readFileSync(here(SHARED + "package.json"), "utf8")) as { exports: Record<string, { default: string }> };
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
  return [
    ...Object.entries(pkg.exports).map(([sub, target]) => ({
      find: new RegExp(`^@lexbuilder/shared-models/${escape(sub.slice(2))}$`),
      replacement: here(SHARED + "src/" + target.default.replace(/^\.\/dist\//, "").replace(/\.js$/, ".ts")),
    })),
    { find: /^@lexbuilder\/shared-models\/testing$/, replacement: here(SHARED + "testing/index.ts") },
  ];
}

// The build writer is the only code that changes a builds row: every `UPDATE builds` in the
// packages' sources is in build-transitions.ts.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../../..");
const WRITER = "packages/shared-models/src/db/build-transitions.ts";

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

describe("writes of builds rows", () => {
  it("happen only in build-transitions.ts", () => {
    const found: string[] = [];
    for (const pkg of readdirSync(join(ROOT, "packages"))) {
      for (const file of sources(join(ROOT, "packages", pkg, "src"))) {
        const rel = file.slice(ROOT.length + 1);
        const text = readFileSync(file, "utf8");
        for (const m of text.matchAll(/UPDATE\s+builds\b(?:\s+\w+)?\s+SET\s+([\s\S]*?)(?:\bWHERE\b|\bFROM\b|\bRETURNING\b)/gi)) {
          found.push(rel);
          expect(rel, `UPDATE builds SET ${m[1]!.trim().slice(0, 60)}`).toBe(WRITER);
        }
      }
    }
    // The scan sees the writer's statements, so an empty result cannot pass by accident.
    expect(found).toContain(WRITER);
  });
});

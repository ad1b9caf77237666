#!/usr/bin/env node
// `npm start` launcher: builds (tsc -b, unless LEXBUILDER_SKIP_BUILD=1), then runs the
// all-in-one starter (packages/allinone, compiled) in a process group of its own and passes
// Ctrl-C, SIGTERM and SIGHUP on to it alone. Without the group, the terminal's Ctrl-C would
// reach the embedded PostgreSQL directly (a child of the starter, in the same group) and stop
// the database while the master and webapp still use it; the starter stops them first.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("..", import.meta.url));
const say = (line) => process.stdout.write(`lexbuilder: ${line}\n`);

if (!existsSync(new URL("../node_modules", import.meta.url))) {
  process.stderr.write("lexbuilder: node_modules is missing; run `npm ci` first.\n");
  process.exit(1);
}
if (process.env.LEXBUILDER_SKIP_BUILD !== "1") {
  const t = Date.now();
  const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
  const r = spawnSync(process.execPath, [tsc, "-b"], { cwd: repo, stdio: "inherit" });
  if (r.status !== 0) {
    process.stderr.write("lexbuilder: the TypeScript build (tsc -b) failed; see the errors above.\n");
    process.exit(1);
  }
  say(`built in ${((Date.now() - t) / 1000).toFixed(1)} s`);
}

const starter = spawn(process.execPath, [fileURLToPath(new URL("../packages/allinone/dist/main.js", import.meta.url)), ...process.argv.slice(2)], {
  cwd: repo,
  stdio: ["ignore", "inherit", "inherit"],
  detached: true,
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    try {
      starter.kill(signal);
    } catch {
      /* already gone */
    }
  });
}
starter.on("error", (err) => {
  process.stderr.write(`lexbuilder: cannot start ${err.message}\n`);
  process.exit(1);
});
starter.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

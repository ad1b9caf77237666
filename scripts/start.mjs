#!/usr/bin/env node
// `npm start` launcher: runs scripts/start-supervisor.mjs (which does the work; its header
// lists the options) in a process group of its own and passes Ctrl-C, SIGTERM and SIGHUP on
// to it alone. Without this, the terminal's Ctrl-C would reach the embedded PostgreSQL
// directly (it is a child of the supervisor, in the same group) and stop the database while
// the master and webapp still use it; the supervisor stops them first, then PostgreSQL.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const supervisor = spawn(process.execPath, [fileURLToPath(new URL("./start-supervisor.mjs", import.meta.url)), ...process.argv.slice(2)], {
  stdio: ["ignore", "inherit", "inherit"],
  detached: true,
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    try {
      supervisor.kill(signal);
    } catch {
      /* already gone */
    }
  });
}
supervisor.on("error", (err) => {
  process.stderr.write(`lexbuilder: cannot start ${err.message}\n`);
  process.exit(1);
});
supervisor.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

// One temporary directory per test run, removed at its end: every temp dir the tests make
// (slave state, clones, artifacts, the embedded PostgreSQL, browser profiles) lands inside it
// through TMPDIR. Left in /tmp they piled up — 6.6 GB after two days of runs, with file
// creation in /tmp ten times slower than elsewhere on the same disk.
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Mount points at or below `dir` (a real live-build's chroot may leave some behind). */
function mountsBelow(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => (line.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((point) => point === dir || point.startsWith(dir + "/"));
}

/** Makes the run's directory and points TMPDIR at it; the returned function removes it. */
export function useRunTmpdir(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "lexbuilder-test-run-"));
  // Like /tmp itself: PostgreSQL runs as another user and reads and writes files here.
  chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  return () => {
    if (process.env.LEXBUILDER_KEEP_TEST_FILES === "1") {
      process.stdout.write(`Test files kept in ${dir} (LEXBUILDER_KEEP_TEST_FILES=1).\n`);
      return;
    }
    const mounts = mountsBelow(dir);
    if (mounts.length) {
      // Never delete through a mount (it could reach the host's /proc or /dev).
      process.stdout.write(`Test files kept in ${dir}: something is still mounted there (${mounts.join(", ")}).\n`);
      return;
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
}

// Reading /proc files into one reused buffer: the process walk after every build command reads
// the stat (and often the environ) of every process on the machine, and readFileSync allocates
// 64 KiB per file of unknown size — that allocation was most of the walk's cost.
import { closeSync, openSync, readSync } from "node:fs";

/** Environments beyond this are read only this far (the kernel's own limit is near 2 MiB). */
const MAX_BYTES = 4 * 1024 * 1024;
let buffer = Buffer.allocUnsafe(16 * 1024);

/** The bytes of a /proc file, valid until the next call; null when it cannot be read (the process is gone). */
export function readProcFile(path: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return null;
  }
  try {
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (buffer.length >= MAX_BYTES) break;
        const bigger = Buffer.allocUnsafe(buffer.length * 2);
        buffer.copy(bigger, 0, 0, length);
        buffer = bigger;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return buffer.subarray(0, length);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Whether a NUL-separated environ block holds exactly the entry `entry` ("NAME=value"). */
export function environHas(environ: Buffer, entry: Buffer): boolean {
  for (let at = environ.indexOf(entry); at >= 0; at = environ.indexOf(entry, at + 1)) {
    const end = at + entry.length;
    if ((at === 0 || environ[at - 1] === 0) && (end === environ.length || environ[end] === 0)) return true;
  }
  return false;
}

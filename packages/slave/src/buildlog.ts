// The build log: one file per build, appended synchronously (so its size is always exact),
// with credentials in URLs (`://user:pass@`) and known secrets scrubbed before any byte
// reaches the disk.
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";

const CREDENTIALS = /:\/\/[^\s/@:]+:[^\s/@]*@/g;

/** Replace `://user:pass@` with `://***@` and every given secret with `***`. */
export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(CREDENTIALS, "://***@");
  for (const secret of secrets) {
    if (secret.length >= 8) out = out.split(secret).join("***");
  }
  return out;
}

/** Longest partial line kept back waiting for its end (so a URL is scrubbed whole). */
const MAX_PENDING = 64 * 1024;

export class BuildLog {
  private fd: number | null;
  private bytes: number;
  private pending = "";
  private atLineStart = true;
  /** The first write error (ENOSPC above all); writing stops after it. */
  writeError: NodeJS.ErrnoException | null = null;

  constructor(
    readonly path: string,
    private readonly secrets: readonly string[],
    private readonly onChange: () => void,
  ) {
    this.fd = openSync(path, "a", 0o644);
    this.bytes = fstatSync(this.fd).size;
  }

  get size(): number {
    return this.bytes;
  }

  /** A line of our own (RUN: …, results), always on a line of its own. */
  line(text: string): void {
    this.flushPending();
    this.append((this.atLineStart ? "" : "\n") + scrub(text, this.secrets) + "\n");
  }

  /** Raw command output; held back to the last line break so secrets are never split. */
  output(chunk: Buffer): void {
    // latin1 maps bytes 1:1, so non-UTF-8 output survives the round trip unchanged.
    this.pending += chunk.toString("latin1");
    const cut = Math.max(this.pending.lastIndexOf("\n"), this.pending.lastIndexOf("\r"));
    if (cut >= 0) {
      const complete = this.pending.slice(0, cut + 1);
      this.pending = this.pending.slice(cut + 1);
      this.append(scrub(complete, this.secrets));
    }
    if (this.pending.length > MAX_PENDING) this.flushPending();
  }

  flushPending(): void {
    if (this.pending) {
      const rest = this.pending;
      this.pending = "";
      this.append(scrub(rest, this.secrets));
    }
  }

  close(): void {
    this.flushPending();
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }

  private append(text: string): void {
    if (this.fd === null || this.writeError || text.length === 0) return;
    const buf = Buffer.from(text, "latin1");
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off);
      this.bytes += buf.length;
      this.atLineStart = text.endsWith("\n");
    } catch (err) {
      this.writeError = err as NodeJS.ErrnoException;
      // Keep what was written; the size stays what the file holds.
      try {
        this.bytes = fstatSync(this.fd).size;
      } catch {
        // ignore
      }
    }
    this.onChange();
  }
}

/** The last `n` bytes of a log file, decoded for display. */
export function readTail(path: string, size: number, n: number): string {
  const start = Math.max(0, size - n);
  const buf = Buffer.alloc(size - start);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return "";
  }
  try {
    const got = readSync(fd, buf, 0, buf.length, start);
    return buf.subarray(0, got).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

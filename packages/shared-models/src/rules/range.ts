// Where a download starts: an HTTP Range header on a file (the slave's result files, the
// webapp's artifacts), or the offset into a build log (?offset=N, the slave's and the API's).
// One byte range is honoured; several ranges or other units are ignored and the whole file is
// sent, as RFC 9110 allows.
import { accept, refuse, type Checked } from "./checked.js";

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** The bytes to send: a range, null for the whole file, or the sentence of a 416 answer. */
export function checkRange(header: string | undefined, size: number): Checked<ByteRange | null> {
  if (header === undefined) return accept(null);
  const m = /^bytes=([0-9]*)-([0-9]*)$/.exec(header.trim());
  if (!m) return accept(null);
  const [, first, last] = m as unknown as [string, string, string];
  const outside = refuse<ByteRange | null>(`The requested range is outside the file's ${size} bytes.`);
  if (first === "" && last === "") return outside;
  let start: number;
  let end = size - 1;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0) return outside;
    start = Math.max(0, size - suffix);
  } else {
    start = Number(first);
    if (last !== "") {
      if (Number(last) < start) return outside;
      end = Math.min(Number(last), size - 1);
    }
  }
  if (size === 0 || start >= size) return outside;
  return accept({ start, end });
}

/** A byte offset into a log, as in ?offset=N; absent means 0. */
export function checkLogOffset(v: unknown): Checked<number> {
  if (v === undefined || v === null) return accept(0);
  if (typeof v !== "string" || !/^[0-9]{1,15}$/.test(v)) return refuse("The offset must be a whole number of bytes, 0 or more, as in ?offset=0.");
  return accept(Number(v));
}

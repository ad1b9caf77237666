// Sends bytes start..end of a file as an HTTP body with two reused 1 MiB buffers: the next
// chunk is read while the previous one is written. fs.createReadStream allocates a fresh
// buffer per chunk (new pages the kernel must zero, garbage for the GC); reusing two keeps the
// memory of a download at 2 MiB whatever the file's size, and was the fastest variant measured
// here (packages/slave/README.md, Benchmarks).
import { open } from "node:fs/promises";
import type { ServerResponse } from "node:http";

export const CHUNK_BYTES = 1024 * 1024;

/** The error a download ends with when the client hangs up (not worth an error log line). */
function hungUp(): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error("The client closed the connection during the download.");
  err.code = "ERR_STREAM_PREMATURE_CLOSE";
  return err;
}

/** Write `chunk`; resolves once it has been handed to the kernel, so its buffer may be reused. */
function write(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onClose = () => reject(hungUp());
    res.once("close", onClose);
    res.write(chunk, (err) => {
      res.off("close", onClose);
      if (err) reject(hungUp());
      else resolve();
    });
  });
}

/**
 * Send bytes `start`..`end` (inclusive) of `path` and end the response; the headers are the
 * caller's. Rejects with code ERR_STREAM_PREMATURE_CLOSE when the client hangs up, and with
 * an error when the file is shorter than `end` (it changed while being served).
 */
export async function sendFileRange(path: string, start: number, end: number, res: ServerResponse, chunkBytes = CHUNK_BYTES): Promise<void> {
  const file = await open(path, "r");
  try {
    const buffers = [Buffer.allocUnsafeSlow(chunkBytes), Buffer.allocUnsafeSlow(chunkBytes)];
    let position = start;
    let next = 0;
    let writing: Promise<void> = Promise.resolve();
    while (position <= end) {
      const buffer = buffers[next]!;
      next ^= 1;
      // This buffer's previous write was awaited before the other buffer's write began.
      const { bytesRead } = await file.read(buffer, 0, Math.min(chunkBytes, end - position + 1), position);
      if (bytesRead === 0) throw new Error(`${path} ended at byte ${position}, before byte ${end}; it changed while being served.`);
      position += bytesRead;
      await writing;
      if (res.destroyed) throw hungUp();
      writing = write(res, buffer.subarray(0, bytesRead));
      // Observed by the `await` above on the next round (or below); until then, not unhandled.
      writing.catch(() => {});
    }
    await writing;
    res.end();
  } finally {
    await file.close();
  }
}

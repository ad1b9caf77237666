// Log bytes → text without splitting a UTF-8 character across two pieces.

/** Length of the longest prefix of buf that does not end inside a UTF-8 sequence. */
export function completeUtf8Length(buf: Uint8Array): number {
  const n = buf.length;
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = buf[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/** Where a tail starting at `start` should begin: after the first newline, so no half line shows. */
export function tailStart(buf: Uint8Array, start: number): number {
  if (start === 0) return 0;
  const nl = buf.indexOf(0x0a);
  return nl >= 0 && nl < buf.length - 1 ? nl + 1 : 0;
}

/** Resolves when the response can take more data, or when the client has gone. */
export function drained(res: import("node:http").ServerResponse): Promise<void> {
  if (!res.writableNeedDrain || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

/**
 * The tails of finished builds' logs, most recently used first. A finished build's log never
 * changes, and (build id, log size) names its bytes exactly (retention empties a log and sets
 * its size to 0, a new attempt is a new build), so a build page viewed again does not read and
 * decompress the last log chunk again (a 1 MiB chunk for a 64 KiB tail).
 */
export class LogTailCache {
  private readonly entries = new Map<string, Promise<Buffer>>();

  constructor(private readonly maxEntries = 64) {}

  get(buildId: number, start: number, size: number, load: () => Promise<Buffer>): Promise<Buffer> {
    const key = `${buildId}:${start}:${size}`;
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
    } else {
      entry = load();
      // A failed read is not remembered.
      entry.catch(() => this.entries.delete(key));
    }
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }

  get size(): number {
    return this.entries.size;
  }
}

// Content-addressed result store: <state>/cache/<sha256>. A file is hashed as it is read once,
// then renamed (or hard-linked, for the log) into place on the same file system, so no second
// copy of a multi-gigabyte image is ever made.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { link, mkdir, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { SHA256_PATTERN } from "@lexbuilder/shared-models/protocol";

export interface Stored {
  sha256: string;
  size: number;
}

export async function sha256File(path: string): Promise<Stored> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), size };
}

export class ResultCache {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
  }

  /** Where a hash's bytes live; null for anything that is not a lowercase sha256. */
  pathOf(sha256: string): string | null {
    return SHA256_PATTERN.test(sha256) ? join(this.dir, sha256) : null;
  }

  /** Hash `path` and move it into the cache (it no longer exists at `path` afterwards). */
  async moveIn(path: string): Promise<Stored> {
    const stored = await sha256File(path);
    const target = join(this.dir, stored.sha256);
    if (await exists(target)) await unlink(path);
    else await rename(path, target);
    return stored;
  }

  /** Hash `path` and hard-link it into the cache (the log stays where it is, too). */
  async linkIn(path: string): Promise<Stored> {
    const stored = await sha256File(path);
    const target = join(this.dir, stored.sha256);
    if (!(await exists(target))) await link(path, target);
    return stored;
  }

  async remove(sha256: string): Promise<void> {
    const path = this.pathOf(sha256);
    if (path) await rm(path, { force: true });
  }

  /** Remove entries older than `maxAgeMs` that are not in `keep`; returns the removed hashes. */
  async sweep(maxAgeMs: number, keep: ReadonlySet<string>, now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.dir)) {
      if (keep.has(name)) continue;
      const path = join(this.dir, name);
      try {
        const st = await stat(path);
        if (now - st.mtimeMs > maxAgeMs) {
          await rm(path, { force: true, recursive: true });
          removed.push(name);
        }
      } catch {
        // Gone meanwhile.
      }
    }
    return removed;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

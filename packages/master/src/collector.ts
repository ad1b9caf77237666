// Collection: each result file is streamed over HTTP GET /files/<sha256> into a temporary file
// in its destination directory, hashed and counted while it is written (constant memory for
// any size), verified against the sha256 and size the slave reported, then renamed into place
// under <artifacts>/<project>/<YYYYMMDD>/<build id>/. A cut transfer resumes with Range; a
// mismatch retries the download from zero; after
// N attempts the build FAILS with kind `collect` — a corrupt file is never recorded as success.
// Then, in one transaction, the artifact rows, the manifest rows and SUCCEEDED; then clean().
// Idempotent: a restarted master finds COLLECTING builds and collects again (files already in
// place are re-verified, not re-downloaded).
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  addArtifact,
  failBuild,
  getActiveBuild,
  insertManifest,
  markSucceeded,
  parseManifest,
  withTransaction,
  type ActiveBuild,
} from "@lexbuilder/shared-models/db";
import type { ResultFile } from "@lexbuilder/shared-models/protocol";
import { checkResultFile } from "@lexbuilder/shared-models/rules";
import { errorMessage, sleep, type BuilderClients, type MasterContext } from "./context.js";
import type { Judge } from "./judge.js";
import { SlaveHttpError, slaveGet } from "./slave-http.js";

/** Largest manifest read into memory for parsing (live-build's are ~10 KB). */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Resumptions of cut transfers allowed per file (each must have made progress). */
const MAX_RESUMES = 100;

/** A verified download did not match what the slave reported. */
class MismatchError extends Error {}
/** The slave no longer has the results. */
class ResultsGoneError extends Error {}
/** The build left COLLECTING while we worked (cancelled, re-queued). */
class NotCollectingError extends Error {}

export function artifactDirOf(build: { id: number; projectName: string; requestedAt: Date }): string {
  const d = build.requestedAt;
  const day = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, "0")}${String(d.getUTCDate()).padStart(2, "0")}`;
  return `${build.projectName}/${day}/${build.id}`;
}

async function sha256OfFile(path: string): Promise<{ sha256: string; size: number } | null> {
  try {
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    return { sha256: hash.digest("hex"), size };
  } catch {
    return null;
  }
}

export class Collector {
  private readonly active = new Map<number, Promise<void>>();

  constructor(
    private readonly ctx: MasterContext,
    private readonly judge: Judge,
  ) {}

  get running(): number {
    return this.active.size;
  }

  /** Starts collecting this build unless a collection of it is already running. */
  ensure(build: ActiveBuild, files: ResultFile[], clients: BuilderClients): void {
    if (this.active.has(build.id) || this.ctx.stopping()) return;
    const p = this.collect(build, files, clients)
      .catch((err) => this.ctx.log.error({ build: build.id, err: errorMessage(err) }, "collection failed; it will be tried again"))
      .finally(() => this.active.delete(build.id));
    this.active.set(build.id, p);
  }

  async drain(): Promise<void> {
    await Promise.allSettled([...this.active.values()]);
  }

  private async collect(build: ActiveBuild, files: ResultFile[], clients: BuilderClients): Promise<void> {
    const { pool, config, log, metrics } = this.ctx;
    const cookie = build.cookie!;
    const relDir = artifactDirOf(build);
    const root = resolve(config.artifactsDir);
    const absDir = resolve(root, relDir);
    if (!absDir.startsWith(root + sep)) throw new Error(`The artifact directory ${relDir} would leave the artifacts directory.`);

    const bad = files.map(checkResultFile).find((f) => f.error !== undefined)?.error;
    if (bad || files.length === 0) {
      const why = bad ? `The builder reported a result file that cannot be stored: ${bad}` : "The builder reported success but no result files.";
      if (await failBuild(pool, build.id, cookie, "collect", why)) metrics.countFinished("FAILED");
      await this.cleanSlave(clients, cookie);
      return;
    }

    await mkdir(absDir, { recursive: true });
    const started = Date.now();
    try {
      for (const f of files) {
        await this.fetchVerified(build, clients, f, absDir);
      }
    } catch (err) {
      if (err instanceof NotCollectingError) {
        await rm(absDir, { recursive: true, force: true });
        return;
      }
      if (err instanceof MismatchError) {
        log.error({ build: build.id, err: err.message }, "collection failed: downloads kept arriving corrupt");
        // Files first: once the build reads FAILED, nothing of it may remain on disk.
        await rm(absDir, { recursive: true, force: true });
        if (await failBuild(pool, build.id, cookie, "collect", err.message)) metrics.countFinished("FAILED");
        await this.cleanSlave(clients, cookie);
        return;
      }
      if (err instanceof ResultsGoneError) {
        await rm(absDir, { recursive: true, force: true });
        await this.judge.lostJob({ id: clients.endpoint.id, name: clients.endpoint.name }, build, err.message);
        return;
      }
      // Transport trouble: leave COLLECTING; the watcher tries again on its next answer.
      await sleep(this.ctx.config.scanRetryMs);
      throw err;
    }

    // The manifest, parsed from the verified file on disk.
    let entries: { package: string; version: string }[] = [];
    const manifest = files.find((f) => f.kind === "manifest");
    if (manifest && Number(manifest.size) <= MAX_MANIFEST_BYTES) {
      const parsed = parseManifest(await readFile(join(absDir, manifest.name), "utf8"));
      entries = parsed.entries;
      if (parsed.errors.length) log.warn({ build: build.id, errors: parsed.errors.slice(0, 5), count: parsed.errors.length }, "manifest lines skipped");
    }

    const ok = await withTransaction(pool, async (c) => {
      for (const f of files) {
        await addArtifact(c, {
          buildId: build.id,
          name: f.name,
          kind: f.kind,
          sha256: f.sha256,
          size: Number(f.size),
          storedPath: `${relDir}/${f.name}`,
        });
      }
      if (entries.length) await insertManifest(c, build.id, entries);
      if (!(await markSucceeded(c, build.id, cookie, relDir))) throw new NotCollectingError();
      return true;
    }).catch((err) => {
      if (err instanceof NotCollectingError) return false;
      throw err;
    });
    if (!ok) {
      await rm(absDir, { recursive: true, force: true });
      return;
    }
    metrics.countFinished("SUCCEEDED");
    log.info({ build: build.id, files: files.length, packages: entries.length, seconds: (Date.now() - started) / 1000 }, "build collected");
    await this.cleanSlave(clients, cookie);
  }

  private async cleanSlave(clients: BuilderClients, cookie: string): Promise<void> {
    await clients.control.call("clean", cookie).catch((err) => {
      this.ctx.log.warn({ cookie, err: errorMessage(err) }, "clean after collection failed; the watcher will clean");
    });
  }

  private async stillCollecting(build: ActiveBuild): Promise<void> {
    const now = await getActiveBuild(this.ctx.pool, build.id);
    if (!now || now.state !== "COLLECTING" || now.cookie !== build.cookie) throw new NotCollectingError();
  }

  /**
   * One file in place and verified, or MismatchError after the allowed attempts. A transfer
   * cut in the middle resumes where it stopped (HTTP Range) and does not count as an attempt
   * while it makes progress; only a finished file that does not verify (or a transfer that gets
   * nowhere) does, and starts again from zero.
   */
  private async fetchVerified(build: ActiveBuild, clients: BuilderClients, f: ResultFile, absDir: string): Promise<void> {
    const { config, metrics, log } = this.ctx;
    const finalPath = join(absDir, f.name);
    const size = Number(f.size);
    // Already collected by an earlier (interrupted) collection: verify instead of downloading.
    const existing = await stat(finalPath).catch(() => null);
    if (existing && existing.size === size) {
      const have = await sha256OfFile(finalPath);
      if (have && have.sha256 === f.sha256) return;
    }
    // Named by content, so a partial file is only ever resumed with the same bytes.
    const partial = join(absDir, `.${f.sha256}.part`);
    let lastProblem = "";
    let attempt = 1;
    let resumes = 0;
    while (attempt <= config.collectAttempts) {
      await this.stillCollecting(build);
      const before = (await stat(partial).catch(() => null))?.size ?? 0;
      try {
        const got = await this.download(clients, f.sha256, partial, before < size ? before : 0);
        if (got.size === size && got.sha256 === f.sha256) {
          await rename(partial, finalPath);
          metrics.bytesCollected += size;
          metrics.filesCollected++;
          return;
        }
        lastProblem =
          got.size !== size
            ? `${f.name} arrived with ${got.size} bytes instead of ${size}`
            : `${f.name} arrived with sha256 ${got.sha256} instead of ${f.sha256}`;
        await unlink(partial).catch(() => {});
        attempt++;
      } catch (err) {
        if (err instanceof SlaveHttpError && (err.status === 404 || err.status === 410)) {
          await unlink(partial).catch(() => {});
          throw new ResultsGoneError(`The builder ${clients.endpoint.name} no longer has ${f.name}; the build went back to the queue.`);
        }
        if (err instanceof SlaveHttpError && err.status === undefined) throw err; // unreachable: not a corruption
        lastProblem = `${f.name} could not be transferred (${errorMessage(err)})`;
        const after = (await stat(partial).catch(() => null))?.size ?? 0;
        if (after > before && resumes < MAX_RESUMES) {
          resumes++;
          metrics.collectResumes++;
          log.warn({ build: build.id, file: f.name, bytes: after, of: size }, "transfer cut; resuming where it stopped");
          continue;
        }
        await unlink(partial).catch(() => {});
        attempt++;
      }
      metrics.collectRetries++;
      log.warn({ build: build.id, file: f.name, attempt, problem: lastProblem }, "download did not verify; retrying");
    }
    throw new MismatchError(`Collecting the results failed after ${config.collectAttempts} attempts: ${lastProblem}.`);
  }

  /**
   * Streams /files/<sha256> into `path`, from byte `offset` when the file already holds that
   * many (Range); the hash covers the whole file either way.
   */
  private async download(clients: BuilderClients, sha256: string, path: string, offset: number): Promise<{ sha256: string; size: number }> {
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const res = await slaveGet(clients.endpoint.url, `/files/${sha256}`, clients.endpoint.token, this.ctx.config.controlTimeoutMs, headers);
    const resuming = offset > 0 && res.statusCode === 206;
    const hash = createHash("sha256");
    let size = 0;
    if (resuming) {
      for await (const chunk of createReadStream(path, { end: offset - 1 }) as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
      }
    }
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    // A 200 to a Range request (or no Range) rewrites the file from its start.
    const out = resuming ? createWriteStream(path, { flags: "r+", start: offset }) : createWriteStream(path, { flags: "w", mode: 0o644 });
    await pipeline(res, tap, out);
    return { sha256: hash.digest("hex"), size };
  }
}

// sendFileRange: exact bytes across chunk boundaries, a client that hangs up mid-download and
// a file that shrinks while served, both without leaking the file descriptor.
import { randomBytes } from "node:crypto";
import { readdirSync, readlinkSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendFileRange } from "../src/sendfile.js";
import { tempDir } from "./helpers.js";

const CHUNK = 1000;
const dir = tempDir("sendfile");
const path = join(dir, "data");
const data = randomBytes(10_500);
let server: http.Server;
let base: string;
/** The outcome of the last request's sendFileRange. */
let last: Promise<unknown> = Promise.resolve();

function openFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      out.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out.filter((p) => p === path);
}

beforeAll(async () => {
  writeFileSync(path, data);
  server = http.createServer((req, res) => {
    const [start, end] = new URL(req.url!, "http://x").searchParams.get("range")!.split("-").map(Number) as [number, number];
    res.writeHead(200, { "Content-Length": end - start + 1 });
    last = sendFileRange(path, start, end, res, CHUNK).then(
      () => "ok",
      (err: NodeJS.ErrnoException) => {
        res.destroy(); // as the slave's handler does once headers are out
        return err;
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe("sendFileRange", () => {
  it("sends exactly the requested bytes, across chunk boundaries", async () => {
    for (const [start, end] of [
      [0, data.length - 1],
      [999, 1000],
      [1500, 7321],
      [2000, 2999],
      [data.length - 1, data.length - 1],
    ] as const) {
      const body = Buffer.from(await (await fetch(`${base}/?range=${start}-${end}`)).arrayBuffer());
      expect(body.equals(data.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
      expect(await last).toBe("ok");
    }
    expect(openFds()).toEqual([]);
  });

  it("stops when the client hangs up, and closes the file", async () => {
    // A body far larger than the socket buffers, so the hang-up comes mid-transfer.
    const big = Buffer.alloc(64 * 1024 * 1024, 7);
    writeFileSync(path, big);
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(`${base}/?range=0-${big.length - 1}`, (res) => {
          res.once("data", () => {
            req.destroy();
            resolve();
          });
        });
        req.on("error", () => {});
        req.setTimeout(10_000, () => reject(new Error("no data")));
      });
      const outcome = (await last) as NodeJS.ErrnoException;
      expect(outcome).toBeInstanceOf(Error);
      expect(outcome.code).toBe("ERR_STREAM_PREMATURE_CLOSE");
      expect(openFds()).toEqual([]);
    } finally {
      writeFileSync(path, data);
    }
  });

  it("fails, saying why, when the file is shorter than the range", async () => {
    truncateSync(path, 5000);
    try {
      const res = await fetch(`${base}/?range=0-9999`).catch((err: Error) => err);
      if (!(res instanceof Error)) await res.arrayBuffer().catch(() => {});
      const outcome = (await last) as Error;
      expect(outcome).toBeInstanceOf(Error);
      expect(outcome.message).toMatch(/changed while being served/);
      expect(openFds()).toEqual([]);
    } finally {
      writeFileSync(path, data);
    }
  });
});

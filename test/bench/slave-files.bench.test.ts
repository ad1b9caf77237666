// Slave benchmark (npm run bench, or
//   npx vitest run --config test/bench/vitest.config.ts test/bench/slave-files.bench.test.ts):
// GET /files/<sha256> throughput against a minimal Node static server serving the same file
// (`fs.createReadStream(path).pipe(res)`, Node's defaults), both fetched the same way (curl to
// /dev/null; BENCH_FILES_RUNS (5) rounds, the order alternating each round so neither side
// always runs on a warmer machine; the medians), and the slave's RSS while it serves a
// BENCH_FILES_MIB (2048) file: it must stay flat.
// Goals (issue 3): throughput ≥ 90 % of the static server's; memory flat.
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startSlave, tempDir, type Slave } from "../../packages/slave/test/helpers.js";

const MIB = Number(process.env.BENCH_FILES_MIB ?? 2048);
const RUNS = Number(process.env.BENCH_FILES_RUNS ?? 5);

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+([0-9]+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

/** curl's average download speed, bytes/s (the body goes to /dev/null). */
async function curlSpeed(url: string, headers: string[] = []): Promise<number> {
  const { stdout } = await promisify(execFile)("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{speed_download}", ...headers.flatMap((h) => ["-H", h]), url], {
    encoding: "utf8",
  });
  const [code, speed] = stdout.trim().split(" ");
  expect(code).toBe("200");
  return Number(speed);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (x: number) => `${(x / 1024 / 1024).toFixed(0)} MiB/s`;

describe("slave /files", () => {
  const dir = tempDir("bench-files");
  let slave: Slave | null = null;
  let staticServer: ChildProcess | null = null;
  afterAll(async () => {
    staticServer?.kill("SIGTERM");
    await slave?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`serves a ${MIB} MiB file at ≥ 90 % of a static server's throughput, with flat memory`, async () => {
    // The file: random megabytes (hashed as written), moved into the slave's cache by its hash.
    const stateDir = join(dir, "state");
    mkdirSync(join(stateDir, "cache"), { recursive: true });
    const tmp = join(dir, "image.tmp");
    const fd = openSync(tmp, "w");
    const hash = createHash("sha256");
    for (let i = 0; i < MIB; i++) {
      const chunk = randomBytes(1024 * 1024);
      hash.update(chunk);
      writeSync(fd, chunk);
    }
    closeSync(fd);
    const sha = hash.digest("hex");
    const path = join(stateDir, "cache", sha);
    renameSync(tmp, path);

    slave = await startSlave({ stateDir });
    const server = `
      const http = require("node:http"), fs = require("node:fs");
      const size = fs.statSync(process.argv[1]).size;
      const s = http.createServer((req, res) => {
        res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": size });
        fs.createReadStream(process.argv[1]).pipe(res);
      });
      s.listen(0, "127.0.0.1", () => console.log(s.address().port));`;
    staticServer = spawn(process.execPath, ["-e", server, path], { stdio: ["ignore", "pipe", "inherit"] });
    const port = await new Promise<number>((resolve) => staticServer!.stdout!.once("data", (c: Buffer) => resolve(Number(c.toString().trim()))));

    const slaveUrl = `${slave.url}/files/${sha}`;
    const auth = [`Authorization: Bearer ${slave.token}`];
    const loadBefore = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    const rssBefore = rssKiB(slave.proc.pid!);
    let rssMax = rssBefore;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssKiB(slave!.proc.pid!))), 50);
    const slaveSpeeds: number[] = [];
    const staticSpeeds: number[] = [];
    try {
      for (let i = 0; i < RUNS; i++) {
        const staticRun = async () => staticSpeeds.push(await curlSpeed(`http://127.0.0.1:${port}/`));
        const slaveRun = async () => slaveSpeeds.push(await curlSpeed(slaveUrl, auth));
        if (i % 2 === 0) {
          await staticRun();
          await slaveRun();
        } else {
          await slaveRun();
          await staticRun();
        }
      }
    } finally {
      clearInterval(sampler);
    }

    const ratio = median(slaveSpeeds) / median(staticSpeeds);
    const loadNow = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    const all = (xs: number[]) => xs.map((x) => (x / 1024 / 1024).toFixed(0)).join(", ");
    const growthMiB = (rssMax - rssBefore) / 1024;
    process.stdout.write(
      `\nSlave /files benchmark (${MIB} MiB, ${RUNS} runs each, ${execFileSync("nproc").toString().trim()} cores, load average ${loadBefore} before, ${loadNow} after):\n` +
        `| metric | measured (median) | goal | met |\n|---|---|---|---|\n` +
        `| slave /files | ${mbps(median(slaveSpeeds))} (runs: ${all(slaveSpeeds)}) | | |\n` +
        `| static Node server | ${mbps(median(staticSpeeds))} (runs: ${all(staticSpeeds)}) | | |\n` +
        `| ratio | ${(ratio * 100).toFixed(0)} % | ≥ 90 % | ${ratio >= 0.9 ? "yes" : "NO"} |\n` +
        `| slave RSS growth while serving | ${growthMiB.toFixed(1)} MiB (from ${(rssBefore / 1024).toFixed(0)} MiB) | flat (< 64 MiB) | ${growthMiB < 64 ? "yes" : "NO"} |\n\n`,
    );
    expect(ratio).toBeGreaterThanOrEqual(0.9);
    expect(growthMiB).toBeLessThan(64);
  });
});

// Isolation benchmark (npm run bench, or
//   npx vitest run --config test/bench/vitest.config.ts test/bench/isolation.bench.test.ts):
// what a build container costs per build. (1) Two slaves on this machine, one with
// LEXBUILDER_SLAVE_ISOLATION=container and one with none, build the same trivial fake-lb config
// BENCH_ISOLATION_ROUNDS times (default 15) each, alternating which goes first; the difference
// of the median build times (build() → WAITING over RPC) is the container's cost per build:
// making it, entering it for three lb commands, destroying it. The "make container" step the
// daemon logs is printed too. (2) Unless BENCH_ISOLATION_REAL=0, one real minimal live-build
// (packages/slave/test/real-build.ts) through the container slave, with every check of its
// result, gives the ratio cost / real build. Goal: ≤ 2 s and ≤ 3 % of a real build.
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { fakeConf, makeConfigRepo, startSlave, waitForState, type Slave } from "../../packages/slave/test/helpers.js";
import {
  arch,
  checkRealBuild,
  checkRealSlaveInfo,
  minutes,
  REAL_SLAVE_ENV,
  realConfigRepo,
  skipReason,
  stopRealSlave,
  suite,
} from "../../packages/slave/test/real-build.js";

const ROUNDS = Number(process.env.BENCH_ISOLATION_ROUNDS ?? "15") || 15;
const REAL = process.env.BENCH_ISOLATION_REAL !== "0";
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Milliseconds of each logged step `step` of the slave so far. */
function stepTimes(slave: Slave, step: string): number[] {
  return slave
    .output()
    .split("\n")
    .filter((l) => l.includes('"build step finished"'))
    .map((l) => JSON.parse(l) as { step: string; ms: number })
    .filter((e) => e.step === step)
    .map((e) => e.ms);
}

const slaves: Slave[] = [];
afterAll(async () => {
  for (const s of slaves) await s.stop();
});

let costMs = 0;

describe("build isolation's cost", () => {
  it(`per build, over ${ROUNDS} trivial builds with and without a container`, async () => {
    const repo = makeConfigRepo({ main: fakeConf([]) });
    const container = await startSlave({ env: { LEXBUILDER_SLAVE_ISOLATION: "container" } });
    const none = await startSlave({ env: { LEXBUILDER_SLAVE_ISOLATION: "none" } });
    slaves.push(container, none);
    expect((await container.client.call("info")).ready).toBe(true);
    const times: Record<"container" | "none", number[]> = { container: [], none: [] };
    const loadBefore = load();
    const buildOnce = async (slave: Slave, cookie: string) => {
      const t0 = performance.now();
      await slave.client.call("build", cookie, { project: "bench", configUrl: repo.url, configRef: "main", architecture: "amd64" });
      const s = await waitForState(slave.client, "WAITING", 60_000);
      const ms = performance.now() - t0;
      expect(s.result, s.message).toBe("OK");
      expect(await slave.client.call("clean", cookie)).toEqual({ state: "IDLE" });
      return ms;
    };
    // One warm-up each (page cache, first container).
    await buildOnce(container, "1000-1");
    await buildOnce(none, "1000-1");
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 ? (["container", "none"] as const) : (["none", "container"] as const);
      for (const mode of order) times[mode].push(await buildOnce(mode === "container" ? container : none, `${round}-1`));
    }
    const makeMs = stepTimes(container, "make container").slice(1);
    costMs = median(times.container) - median(times.none);
    process.stdout.write(
      [
        "",
        `isolation bench (load ${loadBefore} → ${load()}), ${ROUNDS} rounds, medians:`,
        `  build with a container     ${median(times.container).toFixed(0)} ms  (min ${Math.min(...times.container).toFixed(0)}, max ${Math.max(...times.container).toFixed(0)})`,
        `  build without (none)       ${median(times.none).toFixed(0)} ms  (min ${Math.min(...times.none).toFixed(0)}, max ${Math.max(...times.none).toFixed(0)})`,
        `  cost per build             ${costMs.toFixed(0)} ms  (goal ≤ 2000 ms)`,
        `  of which making it         ${median(makeMs).toFixed(0)} ms (the daemon's "make container" step)`,
        "",
      ].join("\n"),
    );
    expect(costMs).toBeLessThanOrEqual(2000);
  }, 30 * 60_000);

  it.skipIf(!REAL || skipReason !== null)(`as a share of a real live-build in a container${skipReason ? ` (skipped: ${skipReason})` : ""}`, async () => {
    const repo = realConfigRepo();
    const slave = await startSlave({ env: { ...REAL_SLAVE_ENV, LEXBUILDER_SLAVE_ARCHITECTURES: arch, LEXBUILDER_SLAVE_ISOLATION: "container" } });
    slaves.push(slave);
    try {
      await checkRealSlaveInfo(slave);
      const t0 = performance.now();
      await slave.client.call("build", "900-1", { project: "real-minimal", configUrl: repo.url, configRef: "real", architecture: arch, suite });
      const s = await waitForState(slave.client, "WAITING", minutes * 60_000);
      const realMs = performance.now() - t0;
      await checkRealBuild(slave, s, repo, "900-1");
      const ratio = costMs / realMs;
      process.stdout.write(
        `\nreal build in a container: ${(realMs / 1000).toFixed(1)} s; isolation cost ${costMs.toFixed(0)} ms = ${(ratio * 100).toFixed(2)} % (goal ≤ 3 %)\n`,
      );
      expect(ratio).toBeLessThanOrEqual(0.03);
    } catch (err) {
      await stopRealSlave(slave);
      throw err;
    }
  }, (minutes + 5) * 60_000);
});

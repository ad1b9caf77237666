// What one build() call costs the master's event loop, by CPU rather than wall time (the
// machine is shared, latencies are noisy; CPU per call is what a burst of 100 queues up):
//  - decoding an answer: the `xmlrpc` package's stock path (its Deserializer reading a stream,
//    as ours did before) against ours (the same Deserializer driven by a plain sax parser),
//    in the same run, rounds alternating, as a ratio; both must give the same values;
//  - encoding a build() call;
//  - whole calls: bursts of 100 build() calls (then 100 clean()) through one RpcClient per
//    builder against 100 protocol-speaking stand-ins in a process of their own, CPU and
//    event-loop utilisation of this process per call.
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deserializeResponse,
  RpcClient,
  serializeCall,
  serializeResponse,
} from "@lexbuilder/shared-models/protocol";
import { startStandinBuilders, STANDIN_TOKEN, type StandinFarm } from "./standin-builders.js";

const require = createRequire(import.meta.url);
const StockDeserializer = require("xmlrpc/lib/deserializer.js") as new (encoding: string) => {
  deserializeMethodResponse(stream: Readable, cb: (err: Error | null, value?: unknown) => void): void;
};

/** The package's own way: its Deserializer over a stream of the body. */
function stockDecode(body: Buffer): Promise<unknown> {
  return new Promise((resolve, reject) => {
    new StockDeserializer("utf8").deserializeMethodResponse(Readable.from([body]), (err, value) => (err ? reject(err) : resolve(value)));
  });
}

const BUILD_ARGS = [
  "1234-1",
  { project: "standin-42", configUrl: "https://example.org/config.git", configRef: "main", architecture: "amd64", suite: "trixie", env: {} },
] as const;
// The two answers the master reads per dispatched build: build()'s, and the status() long poll
// the build wakes (a stand-in's, with its log tail).
const ANSWERS = {
  build: Buffer.from(serializeResponse({ state: "BUILDING", cookie: "1234-1" })),
  status: Buffer.from(
    serializeResponse({
      state: "BUILDING",
      version: 7,
      cookie: "1234-1",
      startedAt: "2026-12-04T17:00:00.000Z",
      logSize: "48",
      logTail: "stand-in build\nP: Build completed successfully\n",
    }),
  ),
};

/** CPU microseconds (user + system) of this process per iteration of `fn`. */
async function cpuPer(n: number, fn: () => unknown): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const lines: string[] = [];
afterAll(() => process.stdout.write(`\nRPC call costs (${new Date().toISOString()}):\n${lines.join("\n")}\n\n`));

describe("XML-RPC encode/decode CPU", () => {
  for (const [name, body] of Object.entries(ANSWERS)) {
    it(`decodes a ${name}() answer faster than the package's stream path, to the same values`, async () => {
      const ours = await deserializeResponse(body);
      expect(ours).toEqual({ fault: false, value: await stockDecode(body) });
      const N = 2000;
      await cpuPer(N, () => stockDecode(body)); // warm both
      await cpuPer(N, () => deserializeResponse(body));
      const stock: number[] = [];
      const direct: number[] = [];
      for (let round = 0; round < 5; round++) {
        if (round % 2 === 0) {
          stock.push(await cpuPer(N, () => stockDecode(body)));
          direct.push(await cpuPer(N, () => deserializeResponse(body)));
        } else {
          direct.push(await cpuPer(N, () => deserializeResponse(body)));
          stock.push(await cpuPer(N, () => stockDecode(body)));
        }
      }
      const ratio = median(direct) / median(stock);
      lines.push(`decode ${name}() answer (${body.length} B): stock stream path ${median(stock).toFixed(0)} µs, ours ${median(direct).toFixed(0)} µs CPU (${(ratio * 100).toFixed(0)} %)`);
      // Half or less on a quiet machine; 0.75 leaves room for a shared one, and a return to the stream path (1.0) fails.
      expect(ratio).toBeLessThan(0.75);
    });
  }

  it("encodes a build() call", async () => {
    const N = 2000;
    await cpuPer(N, () => serializeCall("build", [...BUILD_ARGS]));
    const runs: number[] = [];
    for (let round = 0; round < 3; round++) runs.push(await cpuPer(N, () => serializeCall("build", [...BUILD_ARGS])));
    const per = median(runs);
    lines.push(`encode build() call: ${per.toFixed(0)} µs CPU`);
    expect(per).toBeGreaterThan(0);
  });
});

describe("whole build() calls in bursts of 100 (protocol-speaking stand-ins)", () => {
  let farm: StandinFarm;
  let clients: RpcClient[];
  const N = 100;

  beforeAll(async () => {
    farm = await startStandinBuilders(N, 600_000);
    clients = farm.urls.map((url) => new RpcClient({ url, token: STANDIN_TOKEN, timeoutMs: 30_000 }));
  });
  afterAll(async () => {
    for (const c of clients ?? []) c.close();
    await farm?.close();
  });

  it("reports this process's CPU and event-loop use per call", async () => {
    const rounds = Number(process.env.BENCH_RPC_ROUNDS ?? 10);
    const perCall: number[] = [];
    const walls: number[] = [];
    const elus: number[] = [];
    for (let r = 0; r <= rounds; r++) {
      const cookies = clients.map((_, i) => `${r}-${i}`);
      const c0 = process.cpuUsage();
      const e0 = performance.eventLoopUtilization();
      const t0 = performance.now();
      const answers = await Promise.all(clients.map((c, i) => c.call("build", cookies[i]!, { ...BUILD_ARGS[1], project: `standin-${i}` })));
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const elu = performance.eventLoopUtilization(e0);
      expect(answers.every((a, i) => a.state === "BUILDING" && a.cookie === cookies[i])).toBe(true);
      await Promise.all(clients.map((c, i) => c.call("clean", cookies[i]!)));
      if (r === 0) continue; // cold code, fresh sockets
      perCall.push((c.user + c.system) / N);
      walls.push(wall);
      elus.push(elu.utilization);
    }
    lines.push(
      `burst of ${N} build() calls, ${rounds} rounds after a first: this process's CPU per call median ${median(perCall).toFixed(0)} µs ` +
        `(min ${Math.min(...perCall).toFixed(0)}, max ${Math.max(...perCall).toFixed(0)}); last answer after median ${median(walls).toFixed(1)} ms; event loop busy ${(median(elus) * 100).toFixed(0)} %`,
    );
  }, 10 * 60_000);
});

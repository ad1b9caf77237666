// Fuzzing the slave daemon (a real process from dist/) with seeded bad input: XML-RPC bodies
// (entity bombs, external entities, deep nesting, huge strings, invalid UTF-8, broken XML,
// wrong, missing and extra arguments), bad tokens, and garbage file and log paths. No answer
// may be a 5xx or carry a stack trace, the daemon must stay up and its memory bounded.
// Short and deterministic in `npm test`; `npm run fuzz` (FUZZ_LONG=1) runs many more cases.
import { afterAll, beforeAll, expect, test } from "vitest";
import { startSlave, type Slave } from "../packages/slave/test/helpers.js";
import { badRpcBody, badString, FUZZ_SEED, invalidUtf8, iterations, LEAK, pick, rng, rssOf, urlEncode } from "./chaos/fuzz-gen.js";

const CASES = iterations(1000, 30_000);
// The same seeded sequence always; on a slow or busy machine the short run stops at its budget.
const BUDGET_MS = process.env.FUZZ_LONG === "1" ? 25 * 60_000 : 35_000;
let slave: Slave;

beforeAll(async () => {
  slave = await startSlave();
});

afterAll(async () => {
  await slave?.stop();
});

interface Answer {
  status: number;
  body: string;
  contentType: string;
}

async function send(path: string, init: { method: string; body?: Buffer; headers?: Record<string, string> }): Promise<Answer | null> {
  try {
    const res = await fetch(slave.url + path, { ...init, redirect: "manual", signal: AbortSignal.timeout(20_000) });
    return { status: res.status, body: await res.text(), contentType: res.headers.get("content-type") ?? "" };
  } catch (err) {
    // The server may close a connection whose body is over the limit before reading it.
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === "ECONNRESET" || cause?.code === "EPIPE" || cause?.code === "UND_ERR_SOCKET") return null;
    throw err;
  }
}

test(
  `the slave survives ${CASES} bad requests (seed ${FUZZ_SEED})`,
  async () => {
    const r = rng(FUZZ_SEED);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let faults = 0;
    // Warm up, then take the baseline.
    for (let i = 0; i < 20; i++) await slave.client.call("info");
    const rssBefore = rssOf(slave.proc.pid!);
    let rssMax = rssBefore;

    const cases = Array.from({ length: CASES }, (_, i) => i);
    const runCase = async (i: number) => {
      const k = r();
      let path = "/rpc";
      let init: { method: string; body?: Buffer; headers?: Record<string, string> };
      const auth: Record<string, string> = k < 0.05 ? {} : k < 0.1 ? { authorization: `Bearer ${pick(r, ["", "x", slave.token + "x", slave.token.slice(1), badString(r, 100).replace(/[^\x21-\x7e]/g, "")])}` } : { authorization: `Bearer ${slave.token}` };
      const m = r();
      if (m < 0.8) {
        init = { method: "POST", body: badRpcBody(r), headers: { ...auth, "content-type": pick(r, ["text/xml", "text/xml", "application/json", "text/plain; charset=latin1"]) } };
      } else if (m < 0.9) {
        const seg = pick(r, [
          "0".repeat(64),
          "g".repeat(64),
          "../state.json",
          "..%2f..%2fetc%2fpasswd",
          "%00",
          urlEncode(badString(r, 3000)),
          [...invalidUtf8(r)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""),
        ]);
        path = `/files/${seg}`;
        init = { method: "GET", headers: { ...auth, range: pick(r, ["bytes=0-", "bytes=-0", "bytes=9-1", "bytes=x", "bytes=0-1,2-3", "items=0-1", ""]) } };
      } else {
        path = `/builds/${urlEncode(pick(r, ["1-1", "../..", "", badString(r, 3000)]))}/log?offset=${urlEncode(pick(r, ["0", "-1", "1e99", "x", "99999999999999999999", badString(r, 200)]))}`;
        init = { method: pick(r, ["GET", "GET", "POST", "DELETE", "PUT"]), headers: auth };
      }
      const answer = await send(path, init);
      if (!answer) return;
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const where = `case ${i} (${init.method} ${path.slice(0, 60)}, ${init.body?.length ?? 0} bytes)`;
      if (answer.status >= 500) failures.push(`${where}: HTTP ${answer.status}: ${answer.body.slice(0, 200)}`);
      const sent = init.body?.toString("latin1") ?? path;
      if (LEAK.test(answer.body) && !LEAK.test(sent)) failures.push(`${where}: internals in the answer: ${answer.body.slice(0, 300)}`);
      if (path === "/rpc" && answer.status === 200) {
        if (!answer.body.includes("<methodResponse>")) failures.push(`${where}: 200 without an XML-RPC response: ${answer.body.slice(0, 200)}`);
        const fault = /<name>faultString<\/name>\s*<value>(?:<string>)?(?:<!\[CDATA\[)?([^<\]]*)/.exec(answer.body);
        if (answer.body.includes("<fault>")) {
          faults += 1;
          if (!fault || fault[1]!.trim().length < 10) failures.push(`${where}: a fault without a sentence: ${answer.body.slice(0, 300)}`);
        }
      }
      if (answer.status === 401 && auth.authorization === `Bearer ${slave.token}`) failures.push(`${where}: the right token was refused`);
    };
    // Eight clients at once.
    let next = 0;
    const stopAt = Date.now() + BUDGET_MS;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < cases.length && Date.now() < stopAt) {
          const i = next++;
          await runCase(i);
          if (i % 100 === 0) rssMax = Math.max(rssMax, rssOf(slave.proc.pid!));
        }
      }),
    );

    // Still up, still answering properly.
    expect(slave.proc.exitCode).toBeNull();
    const info = await slave.client.call("info");
    expect(info.protocolVersion).toBe("1");
    const rssAfter = rssOf(slave.proc.pid!);
    rssMax = Math.max(rssMax, rssAfter);
    const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
    process.stdout.write(
      `slave fuzz: ${next} of ${CASES} cases in ${((Date.now() - stopAt + BUDGET_MS) / 1000).toFixed(1)} s, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${faults} faults, RSS ${mib(rssBefore)} → ${mib(rssAfter)} MiB (max ${mib(rssMax)})\n`,
    );
    expect(failures.slice(0, 20)).toEqual([]);
    // Bounded memory: parsing limits hold (1 MiB bodies, eight at a time, stay far below this).
    expect(rssMax - rssBefore).toBeLessThan(256 * 1024 * 1024);
    expect(rssAfter - rssBefore).toBeLessThan(160 * 1024 * 1024);
    // The generator did reach the interesting places.
    expect(next).toBeGreaterThanOrEqual(Math.min(CASES, 100));
    expect(faults).toBeGreaterThan(next / 10);
    expect(statuses.get(401) ?? 0).toBeGreaterThan(0);
  },
  process.env.FUZZ_LONG === "1" ? 30 * 60_000 : 60_000,
);

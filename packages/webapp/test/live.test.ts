// The live log: SSE delivers appended bytes as they arrive (LISTEN/NOTIFY), resumes from an
// offset, never splits a UTF-8 character, and ends when the build does.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendLog, requestBuild } from "@lexbuilder/shared-models/db";
import { driveBuild } from "@lexbuilder/shared-models/testing";
import { loginAs, seedProject, startHarness, type Client, type Harness } from "./harness.js";

let h: Harness;
let bob: Client;
let projectId: number;

beforeAll(async () => {
  h = await startHarness();
  bob = await loginAs(h.base, "bob");
  projectId = (await seedProject(h, "live")).id;
}, 120_000);

afterAll(async () => {
  await h?.close();
});

interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/** Opens the stream and collects parsed events; `until` resolves when a predicate matches. */
function openStream(path: string, client: Client, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const events: SseEvent[] = [];
  // Comment blocks: the safety-net timer sends one (": keep-alive") each time it fires.
  let comments = 0;
  const waiters: { pred: (e: SseEvent[]) => boolean; resolve: () => void }[] = [];
  const cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  const ready = fetch(h.base + path, { headers: { cookie, accept: "text/event-stream", ...headers }, signal: controller.signal }).then(async (res) => {
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (block.startsWith(":")) comments++;
            const ev: SseEvent = { event: "message", data: "" };
            let hasData = false;
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) ev.event = line.slice(7);
              else if (line.startsWith("id: ")) ev.id = line.slice(4);
              else if (line.startsWith("data: ")) {
                ev.data += line.slice(6);
                hasData = true;
              }
            }
            if (hasData) events.push(ev);
            for (const w of [...waiters]) if (w.pred(events)) w.resolve();
          }
        }
      } catch {
        /* aborted */
      }
    })();
  });
  const until = (pred: (e: SseEvent[]) => boolean, ms = 5000) =>
    new Promise<void>((resolve, reject) => {
      if (pred(events)) return resolve();
      const t = setTimeout(() => reject(new Error(`timed out; events: ${JSON.stringify(events)}`)), ms);
      waiters.push({ pred, resolve: () => (clearTimeout(t), resolve()) });
    });
  const text = () => events.filter((e) => e.event === "log").map((e) => JSON.parse(e.data).text).join("");
  return { ready, events, until, text, comments: () => comments, close: () => controller.abort() };
}

async function runningBuild(ref: string) {
  const b = await requestBuild(h.pool, { projectId, reason: "manual", configRef: ref, priority: 1_000_000 });
  await driveBuild(h.pool, b.id, "BUILDING");
  return b;
}

describe("live log", () => {
  it("delivers appended bytes within moments, then ends with the build", async () => {
    const b = await runningBuild("live-1");
    await appendLog(h.pool, b.id, 0, Buffer.from("RUN: lb config\n"));
    const s = openStream(`/builds/${b.id}/log/stream?offset=0`, bob);
    await s.ready;
    await s.until(() => s.text() === "RUN: lb config\n");
    // NOTIFY-driven, not the safety-net timer: no timer tick came between the append and the
    // bytes (the timer sends its keep-alive before it looks for new bytes).
    const ticksBefore = s.comments();
    let ticksAtArrival = -1;
    await appendLog(h.pool, b.id, 15, Buffer.from("RUN: lb build\n"));
    await s.until(() => s.text().endsWith("RUN: lb build\n") && ((ticksAtArrival = s.comments()), true));
    expect(ticksAtArrival).toBe(ticksBefore);
    // A character split across two appends arrives whole.
    const e = Buffer.from("é\n");
    await appendLog(h.pool, b.id, 29, e.subarray(0, 1));
    await appendLog(h.pool, b.id, 30, e.subarray(1));
    await s.until(() => s.text().endsWith("é\n"));
    expect(s.text()).toBe("RUN: lb config\nRUN: lb build\né\n");
    expect(s.events.filter((x) => x.event === "log").at(-1)!.id).toBe("32");
    await driveBuild(h.pool, b.id, "FAILED", { failureMessage: "lb build failed" });
    await s.until((ev) => ev.some((x) => x.event === "end"));
    expect(s.events.some((x) => x.event === "state" && JSON.parse(x.data).state === "FAILED")).toBe(true);
    s.close();
  });

  it("resumes from Last-Event-ID and the page's offset; a finished build ends at once", async () => {
    const b = await runningBuild("live-2");
    await appendLog(h.pool, b.id, 0, Buffer.from("one\ntwo\nthree\n"));
    const s = openStream(`/builds/${b.id}/log/stream?offset=0`, bob, { "last-event-id": "8" });
    await s.ready;
    await s.until(() => s.text() === "three\n");
    s.close();
    const page = await bob.get(`/builds/${b.id}`);
    expect(page.text).toMatch(new RegExp(`data-stream="/builds/${b.id}/log/stream" data-offset="14"`));
    expect(page.text).toContain("one\ntwo\nthree\n<span id=\"log-end\"></span></pre>");
    await driveBuild(h.pool, b.id, "CANCELLING");
    await driveBuild(h.pool, b.id, "CANCELLED");
    const done = openStream(`/builds/${b.id}/log/stream?offset=14`, bob);
    await done.ready;
    await done.until((ev) => ev.some((x) => x.event === "end"));
    expect(done.text()).toBe("");
    done.close();
    // A finished build's page has no stream, only the log and the download link.
    const after = await bob.get(`/builds/${b.id}`);
    expect(after.text).not.toContain("data-stream=");
    expect(after.text).toContain(`href="/builds/${b.id}/log?download=1"`);
  });

  it("a long log: the page shows only the tail, the download has everything", async () => {
    const b = await runningBuild("live-3");
    const lines = Array.from({ length: 100_000 }, (_, i) => `line ${i} of a long build log\n`).join("");
    const buf = Buffer.from(lines);
    let off = 0;
    for (let i = 0; i < buf.length; i += 512 * 1024) {
      off = (await appendLog(h.pool, b.id, off, buf.subarray(i, i + 512 * 1024)))!;
    }
    const page = await bob.get(`/builds/${b.id}`);
    expect(page.text.length).toBeLessThan(120_000);
    expect(page.text).toContain("line 99999 of a long build log");
    expect(page.text).not.toContain("line 0 of a long build log");
    expect(page.text).toContain("Earlier lines are not shown here");
    const full = await bob.get(`/builds/${b.id}/log?download=1`);
    expect(full.headers.get("content-disposition")).toMatch(/attachment/);
    expect(full.text.length).toBe(buf.length);
    expect(full.text).toBe(lines);
  });
});

// Terminal escapes in build logs: SGR colours become classes, everything else is dropped, text
// is escaped (no HTML from a log reaches the page); the page, the live stream and the text
// download agree, and the raw download keeps the original bytes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendLog, requestBuild } from "@lexbuilder/shared-models/db";
import { driveBuild } from "@lexbuilder/shared-models/testing";
import { AnsiParser, ansiToHtml, piecesToRanges, stripAnsi } from "../src/ansi.js";
import { loginAs, seedProject, seedSucceededBuild, startHarness, type Client, type Harness } from "./harness.js";

const E = "\x1b";

describe("ansiToHtml and stripAnsi", () => {
  const table: [string, string, string, string][] = [
    ["plain text", "I: Building\n", "I: Building\n", "I: Building\n"],
    ["a colour and its reset", `${E}[31mE: failed${E}[0m ok`, '<span class="ansi-red">E: failed</span> ok', "E: failed ok"],
    ["an empty reset", `${E}[32mok${E}[m.`, '<span class="ansi-green">ok</span>.', "ok."],
    ["bold and bright in one code", `${E}[1;93mP:${E}[22m x`, '<span class="ansi-bright-yellow ansi-bold">P:</span><span class="ansi-bright-yellow"> x</span>', "P: x"],
    ["background and default colour", `${E}[41;37mX${E}[39mY${E}[49mZ`, '<span class="ansi-white ansi-bg-red">X</span><span class="ansi-bg-red">Y</span>Z', "XYZ"],
    ["injection inside a colour", `${E}[31m<script>alert(1)</script>${E}[0m`, '<span class="ansi-red">&lt;script&gt;alert(1)&lt;/script&gt;</span>', "<script>alert(1)</script>"],
    ["injection in parameters is not an escape", `${E}["><img src=x onerror=alert(1)>m`, '[&quot;&gt;&lt;img src=x onerror=alert(1)&gt;m', '["><img src=x onerror=alert(1)>m'],
    ["quotes and ampersands", `a & b "c" 'd'`, "a &amp; b &quot;c&quot; &#39;d&#39;", `a & b "c" 'd'`],
    ["256 colours and RGB are dropped, not shown", `${E}[38;5;196mred${E}[48;2;1;2;3mx${E}[0m`, "redx", "redx"],
    ["cursor moves and line erase dropped", `50%${E}[2K${E}[1G100%`, "50%100%", "50%100%"],
    ["a window title (OSC) dropped", `${E}]0;lb build${E}\\done`, "done", "done"],
    ["a character-set choice dropped", `${E}(Bdone`, "done", "done"],
    ["a lone ESC at the end dropped", `end${E}`, "end", "end"],
    ["an unterminated CSI at the end dropped", `end${E}[31`, "end[31", "end[31"],
  ];
  for (const [label, input, html, text] of table) {
    it(label, () => {
      expect(ansiToHtml(input)).toBe(html);
      expect(stripAnsi(input)).toBe(text);
      expect(ansiToHtml(input)).not.toMatch(/<(?!\/?span)/);
    });
  }

  it("carries a colour and an escape cut in two from one chunk to the next", () => {
    const p = new AnsiParser();
    const pieces = [...p.push(`a${E}[3`), ...p.push(`1mb${E}`), ...p.push(`[0mc`, true)];
    expect(piecesToRanges(pieces)).toEqual({ text: "abc", styles: [[1, 2, "ansi-red"]] });
  });

  it("does not wait forever for an escape that never ends", () => {
    const p = new AnsiParser();
    const first = p.push(`${E}[${"1;".repeat(40)}`);
    expect(first.map((x) => x[1]).join("")).toBe(`[${"1;".repeat(40)}`);
  });
});

describe("logs with escapes over HTTP", () => {
  let h: Harness;
  let bob: Client;
  const log = `I: start\n${E}[31m<b>E: bad</b>${E}[0m\n${E}[1;32mP: done${E}[0m\n`;

  beforeAll(async () => {
    h = await startHarness();
    bob = await loginAs(h.base, "bob");
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it("the page shows colours, the text log has none, the raw log keeps the bytes", async () => {
    const p = await seedProject(h, "colours");
    const { build } = await seedSucceededBuild(h, p.id, { log });
    const page = await bob.get(`/builds/${build.id}`);
    expect(page.text).toContain('<span class="ansi-red">&lt;b&gt;E: bad&lt;/b&gt;</span>');
    expect(page.text).toContain('<span class="ansi-green ansi-bold">P: done</span>');
    expect(page.text).not.toContain("<b>E: bad");
    expect(page.text).not.toContain(E);
    const text = await bob.get(`/builds/${build.id}/log?download=1`);
    expect(text.text).toBe("I: start\n<b>E: bad</b>\nP: done\n");
    expect(text.headers.get("content-disposition")).toContain(`colours-build-${build.id}.log`);
    const raw = await fetch(`${h.base}/builds/${build.id}/log?raw=1&download=1`, { headers: { cookie: [...bob.cookies].map(([k, v]) => `${k}=${v}`).join("; ") } });
    expect(Buffer.from(await raw.arrayBuffer()).equals(Buffer.from(log))).toBe(true);
    expect(raw.headers.get("content-disposition")).toContain(`colours-build-${build.id}.raw.log`);
  });

  it("the live stream sends plain text with the coloured runs as ranges", async () => {
    const p = await seedProject(h, "colours-live");
    // First in the queue, so the test's claim takes this build whatever else is queued.
    const b = await requestBuild(h.pool, { projectId: p.id, reason: "manual", priority: 1_000_000 });
    await driveBuild(h.pool, b.id, "BUILDING");
    const first = Buffer.from(`ok ${E}[3`);
    await appendLog(h.pool, b.id, 0, first);
    const rest = Buffer.from(`3m<warn>${E}[0m\n`);
    await appendLog(h.pool, b.id, first.length, rest);
    await driveBuild(h.pool, b.id, "FAILED", { failureMessage: "x" });
    const res = await fetch(`${h.base}/builds/${b.id}/log/stream?offset=0`, { headers: { cookie: [...bob.cookies].map(([k, v]) => `${k}=${v}`).join("; ") } });
    const body = await res.text(); // the build has finished: the stream ends by itself
    const logs = body
      .split("\n\n")
      .filter((e) => e.includes("event: log"))
      .map((e) => JSON.parse(e.slice(e.indexOf("data: ") + 6)) as { text: string; styles?: [number, number, string][] });
    expect(logs.map((l) => l.text).join("")).toBe("ok <warn>\n");
    const all = logs.flatMap((l) => l.styles ?? []);
    expect(all).toEqual([[3, 9, "ansi-yellow"]]);
    expect(body).not.toContain("\\u001b");
  });
});

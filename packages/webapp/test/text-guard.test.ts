// A NUL character or a lone surrogate anywhere in a query or body is refused with a sentence
// (PostgreSQL text and jsonb cannot hold them; before the guard, the first query to meet one
// answered 500 — after the build was queued, when it was the audit row). Found by `npm run fuzz`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, loginAs, seedProject, startHarness, type Client, type Harness } from "./harness.js";
import { fieldWithBadText } from "../src/text-guard.js";

let h: Harness;
let bob: Client;

beforeAll(async () => {
  h = await startHarness();
  await seedProject(h, "pub");
  bob = await loginAs(h.base, "bob");
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe("text PostgreSQL cannot store", () => {
  it("finds them in nested values and names the field", () => {
    expect(fieldWithBadText({ a: "x", b: ["y", "z\u0000"] })).toEqual({ field: "b", problem: "a NUL character" });
    expect(fieldWithBadText({ "k\u0000": "v" })).toMatchObject({ field: "a field name" });
    expect(fieldWithBadText({ a: { b: { c: "\u0000" } } })).toMatchObject({ field: "c" });
    expect(fieldWithBadText({ m: "x\ud800y" })).toEqual({ field: "m", problem: "a lone UTF-16 surrogate (half of a character)" });
    expect(fieldWithBadText({ m: "\udc00" })).toMatchObject({ field: "m" });
    expect(fieldWithBadText({ a: "clean \ud83d\ude80 caf\u00e9", n: 1, t: true, z: null })).toBeNull();
  });

  it("a form field: 400 with a sentence, nothing stored", async () => {
    const before = await h.pool.query("SELECT count(*)::int AS n FROM api_tokens");
    const r = await bob.post("/account/tokens", { label: "ci\u0000job" });
    expect(r.status).toBe(400);
    expect(r.text).toContain("contains a NUL character");
    const after = await h.pool.query("SELECT count(*)::int AS n FROM api_tokens");
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it("a query parameter of a page: 400, for GET and HEAD", async () => {
    const r = await bob.get("/packages?name=bash&version=%00");
    expect(r.status).toBe(400);
    expect(r.text).toContain("&#34;version&#34; contains a NUL character");
    const head = await bob.request("HEAD", "/packages?name=%00");
    expect(head.status).toBe(400);
  });

  it("an API body: 400 JSON, no build queued", async () => {
    const olga = api(h.base, h.users.olga!.token);
    const r = await olga("POST", "/api/v1/projects/pub/builds", { milestone: "1.0\u0000" });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/"milestone" contains a NUL character/);
    // The fuzz case: a milestone of lone surrogates (JSON escapes) — refused before anything is queued.
    const lone = await olga("POST", "/api/v1/projects/pub/builds", `{"milestone": "${"\\ud800".repeat(5)}"}`);
    expect(lone.status).toBe(400);
    expect(lone.json.error).toMatch(/"milestone" contains a lone UTF-16 surrogate/);
    const { rows } = await h.pool.query("SELECT count(*)::int AS n FROM builds");
    expect(rows[0].n).toBe(0);
  });
});

// The JSON API: statuses (200/201/400/401/403/404/409), shapes, keyset pagination, logs,
// manifests and downloads with Range.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listAudit, requestBuild } from "@lexbuilder/shared-models/db";
import { api, seedProject, seedSucceededBuild, startHarness, type Harness } from "./harness.js";

let h: Harness;
let ids: Record<string, number>;
const image = Buffer.from("0123456789".repeat(1000));

beforeAll(async () => {
  h = await startHarness();
  const pub = await seedProject(h, "pub", { scheduleDailyAt: "03:30", scheduleTz: "Europe/Berlin" });
  const priv = await seedProject(h, "priv", { private: true }, ["bob"]);
  const a = await seedSucceededBuild(h, pub.id, {
    log: "line one\nline two\n",
    manifest: [["bash", "5.2"], ["coreutils", "9.1"]],
    files: [{ name: "live-image-amd64.tar.tar.gz", kind: "image", content: image }],
  });
  const p = await seedSucceededBuild(h, priv.id, { files: [{ name: "x.img", kind: "image", content: Buffer.from("p") }] });
  ids = { pub: pub.id, priv: priv.id, build: a.build.id, artifact: a.artifacts[0]!.id, privBuild: p.build.id, privArtifact: p.artifacts[0]!.id };
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe("authentication", () => {
  it("401 without a token, with a malformed one and with an unknown one, as JSON", async () => {
    for (const token of [null, "nonsense", "lxb_" + "A".repeat(43)]) {
      const r = await api(h.base, token)("GET", "/api/v1/projects");
      expect(r.status).toBe(401);
      expect(typeof r.json.error).toBe("string");
      expect(r.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }
  });

  it("a session cookie does not authenticate the API", async () => {
    const r = await fetch(`${h.base}/api/v1/projects`, { headers: { cookie: "lexbuilder.sid=whatever" } });
    expect(r.status).toBe(401);
  });

  it("unknown endpoints answer 404 JSON", async () => {
    const r = await api(h.base, h.users.vera!.token)("GET", "/api/v1/nope");
    expect(r.status).toBe(404);
    expect(r.json.error).toMatch(/no API endpoint/);
  });
});

describe("projects", () => {
  it("lists only visible projects; one project with schedule and next run", async () => {
    const vera = api(h.base, h.users.vera!.token);
    const list = await vera("GET", "/api/v1/projects");
    expect(list.status).toBe(200);
    expect(list.json.map((p: { name: string }) => p.name)).toEqual(["pub"]);
    const bob = await api(h.base, h.users.bob!.token)("GET", "/api/v1/projects");
    expect(bob.json.map((p: { name: string }) => p.name).sort()).toEqual(["priv", "pub"]);
    const one = await vera("GET", "/api/v1/projects/pub");
    expect(one.status).toBe(200);
    expect(one.json.name).toBe("pub");
    expect(JSON.stringify(one.json)).toContain("03:30");
    const next = new Date(one.json.schedule?.nextRun ?? one.json.nextRun);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect((await vera("GET", "/api/v1/projects/priv")).status).toBe(404);
    expect((await vera("GET", "/api/v1/projects/..%2F..")).status).toBe(404);
  });
});

describe("requesting builds", () => {
  it("201 {id, state}; 409 for an identical queued build; 403 for viewers; 404 for hidden projects; 400 for bad bodies", async () => {
    const olga = api(h.base, h.users.olga!.token);
    const first = await olga("POST", "/api/v1/projects/pub/builds", { configRef: "v1.0" });
    expect(first.status).toBe(201);
    expect(first.json).toEqual({ id: expect.any(Number), state: "QUEUED" });
    const again = await olga("POST", "/api/v1/projects/pub/builds", { configRef: "v1.0" });
    expect(again.status).toBe(409);
    expect(again.json.error).toMatch(/already queued/);
    const milestone = await olga("POST", "/api/v1/projects/pub/builds", { milestone: "2026.11", configRef: "v1.0" });
    expect(milestone.status).toBe(201);
    expect((await api(h.base, h.users.vera!.token)("POST", "/api/v1/projects/pub/builds", {})).status).toBe(403);
    expect((await olga("POST", "/api/v1/projects/priv/builds", {})).status).toBe(404);
    expect((await api(h.base, h.users.vera!.token)("POST", "/api/v1/projects/priv/builds", {})).status).toBe(404);
    expect((await olga("POST", "/api/v1/projects/pub/builds", "{not json")).status).toBe(400);
    expect((await olga("POST", "/api/v1/projects/pub/builds", { configRef: "--upload-pack=evil" })).status).toBe(400);
    expect((await olga("POST", "/api/v1/projects/pub/builds", { milestone: 42 })).status).toBe(400);
    expect((await olga("POST", "/api/v1/projects/pub/builds", { extra: 1 })).status).toBe(400);
    const audit = await listAudit(h.pool, { objectType: "build", objectId: first.json.id });
    expect(audit[0]).toMatchObject({ action: "build.request", actor: "olga" });
  });
});

describe("Idempotency-Key", () => {
  const post = (key: string | null, body: unknown, token = h.users.olga!.token) =>
    fetch(`${h.base}/api/v1/projects/pub/builds`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...(key === null ? {} : { "idempotency-key": key }) },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, headers: r.headers, json: (await r.json()) as any }));

  it("answers a repeated request with the first build, also after it left the queue; 422 when the key meant another request", async () => {
    const key = `release-${Date.now()}`;
    const first = await post(key, { configRef: "idem" });
    expect(first.status).toBe(201);
    // The first answer was lost; the client sends the same request again, whatever state the build is in.
    await h.pool.query("UPDATE builds SET state = 'CANCELLED', finished_at = now() WHERE id = $1", [first.json.id]);
    const again = await post(key, { configRef: "idem" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual({ id: first.json.id, state: "CANCELLED" });
    const { rows } = await h.pool.query("SELECT count(*)::int AS n FROM builds WHERE config_ref = 'idem'");
    expect(rows[0].n).toBe(1);
    // The same key for a different request is the client's mistake, said in a sentence.
    const other = await post(key, { configRef: "something-else" });
    expect(other.status).toBe(422);
    expect(other.json.error).toMatch(/already used for a different build request/);
    // Keys belong to their user: bob's identical key is his own request.
    const bobs = await post(key, { configRef: "idem" }, h.users.bob!.token);
    expect(bobs.status).toBe(201);
    expect(bobs.json.id).not.toBe(first.json.id);
  });

  it("refuses a malformed key with 400 and queues nothing", async () => {
    for (const bad of ["", "two words", "x".repeat(201)]) {
      const r = await post(bad, { configRef: "badkey" });
      expect(r.status).toBe(400);
      expect(r.json.error).toMatch(/Idempotency-Key header must be/);
    }
    const { rows } = await h.pool.query("SELECT count(*)::int AS n FROM builds WHERE config_ref = 'badkey'");
    expect(rows[0].n).toBe(0);
  });
});

describe("builds", () => {
  it("lists newest first with keyset pagination and filters; 400 for bad parameters", async () => {
    const vera = api(h.base, h.users.vera!.token);
    for (let i = 0; i < 5; i++) await requestBuild(h.pool, { projectId: ids.pub!, reason: "manual", configRef: `page-${i}` });
    const page1 = await vera("GET", "/api/v1/builds?project=pub&limit=3");
    expect(page1.status).toBe(200);
    expect(page1.json).toHaveLength(3);
    const idsSeen = page1.json.map((b: { id: number }) => b.id);
    expect([...idsSeen].sort((a: number, b: number) => b - a)).toEqual(idsSeen);
    const page2 = await vera("GET", `/api/v1/builds?project=pub&limit=3&before=${idsSeen[2]}`);
    expect(page2.json[0].id).toBeLessThan(idsSeen[2]);
    const succeeded = await vera("GET", "/api/v1/builds?state=SUCCEEDED");
    expect(succeeded.json.every((b: { state: string }) => b.state === "SUCCEEDED")).toBe(true);
    expect(succeeded.json.some((b: { id: number }) => b.id === ids.privBuild)).toBe(false);
    // The build state rule ignores case (as the console and lexbuilder-admin do); answers stay upper case.
    const lower = await vera("GET", "/api/v1/builds?state=succeeded");
    expect(lower.json.map((b: { id: number }) => b.id)).toEqual(succeeded.json.map((b: { id: number }) => b.id));
    const done = await vera("GET", "/api/v1/builds?state=DONE");
    expect([done.status, done.json.error]).toEqual([400, `"DONE" is not a build state; use one of QUEUED, DISPATCHING, BUILDING, COLLECTING, SUCCEEDED, FAILED, CANCELLING, CANCELLED.`]);
    expect((await vera("GET", "/api/v1/builds?limit=0")).status).toBe(400);
    expect((await vera("GET", "/api/v1/builds?limit=abc")).status).toBe(400);
    expect((await vera("GET", "/api/v1/builds?before=-1")).status).toBe(400);
    expect((await vera("GET", "/api/v1/builds?project=priv")).status).toBe(404);
  });

  it("one build: state, timings, builder, config revision, files", async () => {
    const vera = api(h.base, h.users.vera!.token);
    const r = await vera("GET", `/api/v1/builds/${ids.build}`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id: ids.build, state: "SUCCEEDED", configRevision: "0123456789abcdef0123456789abcdef01234567" });
    expect(r.json).toHaveProperty("builder");
    expect(r.json.files).toEqual([
      { id: ids.artifact, name: "live-image-amd64.tar.tar.gz", kind: "image", size: image.length, sha256: createHash("sha256").update(image).digest("hex") },
    ]);
    expect((await vera("GET", `/api/v1/builds/${ids.privBuild}`)).status).toBe(404);
    expect((await vera("GET", "/api/v1/builds/999999")).status).toBe(404);
    expect((await vera("GET", "/api/v1/builds/1abc")).status).toBe(404);
  });

  it("log from an offset, manifest as [{package, version}]", async () => {
    const vera = api(h.base, h.users.vera!.token);
    const log = await vera("GET", `/api/v1/builds/${ids.build}/log?offset=9`);
    expect(log.status).toBe(200);
    expect(log.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(log.text).toBe("line two\n");
    const negative = await vera("GET", `/api/v1/builds/${ids.build}/log?offset=-1`);
    expect([negative.status, negative.json.error]).toEqual([400, "The offset must be a whole number of bytes, 0 or more, as in ?offset=0."]);
    const manifest = await vera("GET", `/api/v1/builds/${ids.build}/manifest`);
    expect(manifest.json).toEqual([
      { package: "bash", version: "5.2" },
      { package: "coreutils", version: "9.1" },
    ]);
    expect((await vera("GET", `/api/v1/builds/${ids.privBuild}/log`)).status).toBe(404);
    expect((await vera("GET", `/api/v1/builds/${ids.privBuild}/manifest`)).status).toBe(404);
  });

  it("cancel: 403 for viewers, the new state for builders, 409 when finished", async () => {
    const b = await requestBuild(h.pool, { projectId: ids.pub!, reason: "manual", configRef: "to-cancel" });
    expect((await api(h.base, h.users.vera!.token)("POST", `/api/v1/builds/${b.id}/cancel`)).status).toBe(403);
    const olga = api(h.base, h.users.olga!.token);
    const r = await olga("POST", `/api/v1/builds/${b.id}/cancel`);
    expect(r.status).toBe(200);
    expect(r.json.state).toBe("CANCELLED");
    expect((await olga("POST", `/api/v1/builds/${b.id}/cancel`)).status).toBe(409);
    const retry = await olga("POST", `/api/v1/builds/${b.id}/retry`);
    expect(retry.status).toBe(201);
    expect(retry.json).toMatchObject({ id: expect.any(Number), state: "QUEUED" });
    expect((await olga("POST", `/api/v1/builds/${ids.build}/retry`)).status).toBe(409);
    expect((await olga("POST", `/api/v1/builds/${ids.privBuild}/retry`)).status).toBe(404);
  });
});

describe("artifacts", () => {
  it("streams the file with Range support and Content-Disposition attachment", async () => {
    const token = h.users.vera!.token;
    const full = await fetch(`${h.base}/api/v1/artifacts/${ids.artifact}`, { headers: { authorization: `Bearer ${token}` } });
    expect(full.status).toBe(200);
    expect(full.headers.get("content-disposition")).toMatch(/^attachment; filename="?live-image-amd64\.tar\.tar\.gz"?$/);
    expect(Buffer.from(await full.arrayBuffer()).equals(image)).toBe(true);
    const part = await fetch(`${h.base}/api/v1/artifacts/${ids.artifact}`, { headers: { authorization: `Bearer ${token}`, range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${image.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(image.subarray(100, 200))).toBe(true);
    const tail = await fetch(`${h.base}/api/v1/artifacts/${ids.artifact}`, { headers: { authorization: `Bearer ${token}`, range: "bytes=-10" } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(image.subarray(image.length - 10))).toBe(true);
    const bad = await fetch(`${h.base}/api/v1/artifacts/${ids.artifact}`, { headers: { authorization: `Bearer ${token}`, range: `bytes=${image.length + 5}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get("content-range")).toBe(`bytes */${image.length}`);
    // Several ranges or another unit: ignored, the whole file comes (as the builders' /files answers).
    for (const range of ["bytes=0-1,5-6", "items=0-1"]) {
      const whole = await fetch(`${h.base}/api/v1/artifacts/${ids.artifact}`, { headers: { authorization: `Bearer ${token}`, range } });
      expect(whole.status).toBe(200);
      expect(Buffer.from(await whole.arrayBuffer()).equals(image)).toBe(true);
    }
    // If-Range naming another version of the file: the whole file, not a piece of the wrong one.
    const stale = await fetch(`${h.base}/api/v1/artifacts/${ids.artifact}`, { headers: { authorization: `Bearer ${token}`, range: "bytes=0-9", "if-range": '"0000"' } });
    expect(stale.status).toBe(200);
    expect(Buffer.from(await stale.arrayBuffer()).equals(image)).toBe(true);
    expect((await fetch(`${h.base}/api/v1/artifacts/${ids.privArtifact}`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    expect((await fetch(`${h.base}/api/v1/artifacts/${ids.privArtifact}`, { headers: { authorization: `Bearer ${h.users.bob!.token}` } })).status).toBe(200);
  });
});

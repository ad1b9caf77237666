// Adding a builder checks it at once against a real XML-RPC server on loopback and explains
// what failed: unreachable, wrong token, not ready. Enable/disable need a reason and are audited.
import { createServer, type Server } from "node:http";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBuilderByName, listAudit } from "@lexbuilder/shared-models/db";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";
import { createRpcHandler, type InfoResult } from "@lexbuilder/shared-models/protocol";
import { loginAs, startHarness, type Client, type Harness } from "./harness.js";

let h: Harness;
let admin: Client;
let slave: Server;
let slaveUrl: string;
const TOKEN = "slave-token-0123456789";
let ready = true;

beforeAll(async () => {
  h = await startHarness();
  admin = await loginAs(h.base, "alice");
  const info = (): InfoResult => ({
    protocolVersion: "1",
    builderVersion: "0.1.0",
    hostname: "builder-test",
    architectures: ["amd64", "i386"],
    builderTypes: ["live-build"],
    liveBuildVersion: "1:20230502",
    ready,
    ...(ready ? {} : { notReadyReason: "lb is not installed" }),
    freeDiskBytes: "100000000000",
  });
  slave = createServer(createRpcHandler({ token: () => TOKEN, methods: { info: () => info() }, log: pino({ level: "silent" }) }));
  await new Promise<void>((r) => slave.listen(0, "127.0.0.1", r));
  const a = slave.address();
  slaveUrl = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
}, 120_000);

afterAll(async () => {
  await new Promise((r) => slave?.close(r));
  await h?.close();
});

function checkError(html: string): string | null {
  const m = /<p class="flash flash-error" role="alert" id="check-error">([^<]*)<\/p>/.exec(html);
  return m ? m[1]!.replace(/&#39;/g, "'").replace(/&#34;/g, '"') : null;
}

describe("adding a builder", () => {
  it("explains an unreachable builder", async () => {
    const port = await freePort();
    const r = await admin.post("/builders", { name: "gone", url: `http://127.0.0.1:${port}`, token: TOKEN });
    expect(r.status).toBe(400);
    expect(checkError(r.text)).toMatch(/^Could not reach lexbuilder-slave at http:\/\/127\.0\.0\.1:[0-9]+; check the address and port/);
    expect(r.text).not.toMatch(/nothing listens/);
    expect(r.text).not.toMatch(/ECONN/);
    expect(r.text).toContain(`value="http://127.0.0.1:${port}"`);
    expect(r.text).not.toContain(TOKEN);
    expect(await getBuilderByName(h.pool, "gone")).toBeNull();
  });

  it("says the same for another kind of server as for a closed port (no port-scan oracle)", async () => {
    const other = createServer((_req, res) => res.writeHead(404).end("not here"));
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (other.address() as { port: number }).port;
      const r = await admin.post("/builders", { name: "webserver", url: `http://127.0.0.1:${port}`, token: TOKEN });
      expect(r.status).toBe(400);
      const closed = await admin.post("/builders", { name: "closed", url: `http://127.0.0.1:${await freePort()}`, token: TOKEN });
      const neutral = (t: string) => checkError(t)!.replace(/127\.0\.0\.1:[0-9]+/, "HOST");
      expect(neutral(r.text)).toBe(neutral(closed.text));
      expect(r.text).not.toMatch(/404|HTTP/);
    } finally {
      other.close();
    }
  });

  it("explains a wrong token", async () => {
    const r = await admin.post("/builders", { name: "wrongtoken", url: slaveUrl, token: "not-the-token" });
    expect(r.status).toBe(400);
    expect(checkError(r.text)).toMatch(/refused the token/);
  });

  it("explains a builder that is not ready, and adds it anyway when asked", async () => {
    ready = false;
    const r = await admin.post("/builders", { name: "notready", url: slaveUrl, token: TOKEN });
    expect(r.status).toBe(400);
    expect(checkError(r.text)).toBe("The builder answered but is not ready: lb is not installed.");
    const anyway = await admin.post("/builders", { name: "notready", url: slaveUrl, token: TOKEN, addAnyway: "on" });
    expect(anyway.status).toBe(303);
    const b = await getBuilderByName(h.pool, "notready");
    expect(b).toMatchObject({ ready: false, notReadyReason: "lb is not installed", architectures: ["amd64", "i386"] });
    ready = true;
  });

  it("adds a ready builder with its architectures, and shows it", async () => {
    const bad = await admin.post("/builders", { name: "Bad Name", url: "ftp://x", token: "" });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/id="name-error"/);
    expect(bad.text).toMatch(/id="url-error"/);
    expect(bad.text).toMatch(/id="token-error"/);
    const r = await admin.post("/builders", { name: "b1", url: slaveUrl, token: TOKEN });
    expect(r.status).toBe(303);
    const page = await admin.get("/builders");
    expect(page.text).toContain("Builder b1 added. Connected to builder-test");
    expect(page.text).toContain("amd64, i386");
    const dup = await admin.post("/builders", { name: "b1", url: slaveUrl, token: TOKEN });
    expect(dup.status).toBe(400);
    expect(dup.text).toContain("A builder named b1 already exists");
    const b = await getBuilderByName(h.pool, "b1");
    const audit = await listAudit(h.pool, { objectType: "builder", objectId: b!.id });
    expect(audit[0]).toMatchObject({ action: "builder.add", actor: "alice" });
    expect(JSON.stringify(audit[0]!.details)).not.toContain(TOKEN);
  });

  it("disable needs a reason; enable clears it", async () => {
    const none = await admin.post("/builders/b1/disable", { reason: "" });
    expect(none.status).toBe(303);
    expect((await getBuilderByName(h.pool, "b1"))!.enabled).toBe(true);
    expect((await admin.get("/builders")).text).toContain("Give a reason of 1 to 500 characters, on one line.");
    await admin.post("/builders/b1/disable", { reason: "disk <replacement>" });
    expect(await getBuilderByName(h.pool, "b1")).toMatchObject({ enabled: false, disabledReason: "disk <replacement>" });
    expect((await admin.get("/builders")).text).toContain("disk &lt;replacement&gt;");
    await admin.post("/builders/b1/enable");
    expect(await getBuilderByName(h.pool, "b1")).toMatchObject({ enabled: true, disabledReason: null });
    expect((await admin.post("/builders/nope/enable")).status).toBe(404);
    const actions = (await listAudit(h.pool, { objectType: "builder" })).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(["builder.disable", "builder.enable"]));
  });
});

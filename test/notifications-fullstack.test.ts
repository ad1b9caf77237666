// Notifications through the real master process: a build finishes on a real slave (fake lb),
// its webhook delivery is in flight when the master is killed with SIGKILL, and the next master
// sends it again with the same delivery id and body (at least once, never lost).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createHmac } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { createWebhook, getProjectByName, listDeliveries } from "@lexbuilder/shared-models/db";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { fakeConf, makeConfigRepo, startSlave, type Slave } from "../packages/slave/test/helpers.js";
import { addBuilderViaCli, admin, startMaster, tempDir, waitForBuildState, waitUntil, type MasterProcess } from "./fullstack-helpers.js";

const SECRET = "a-webhook-secret-16+";
const NOTIFY_ENV = {
  LEXBUILDER_WEBHOOK_ALLOW_PRIVATE: "true",
  LEXBUILDER_NOTIFY_TIMEOUT_MS: "2000",
  LEXBUILDER_NOTIFY_RETRY_BASE_MS: "200",
  LEXBUILDER_NOTIFY_POLL_MS: "200",
  LEXBUILDER_PUBLIC_URL: "https://farm.example.org",
};

describe("the outbox across a master killed mid-delivery", () => {
  let db: TestDatabase;
  let slave: Slave;
  const masters: MasterProcess[] = [];
  const held: ServerResponse[] = [];
  const got: { delivery: string; body: string; signature: string }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      got.push({ delivery: String(req.headers["x-lexbuilder-delivery"]), body: Buffer.concat(chunks).toString("utf8"), signature: String(req.headers["x-lexbuilder-signature-256"]) });
      // The first request is never answered: the master dies while it waits.
      if (got.length === 1) held.push(res);
      else res.writeHead(200).end("thanks");
    });
  });

  afterAll(async () => {
    for (const m of masters) await m.stop();
    for (const r of held) r.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await slave?.stop();
    await db?.drop();
  });

  it("delivers build.succeeded after the restart with the same delivery id", async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    db = await createTestDatabase();
    const repo = makeConfigRepo({ main: fakeConf([]) });
    slave = await startSlave({ env: { LEXBUILDER_SLAVE_ARCHITECTURES: "amd64", LEXBUILDER_SLAVE_ISOLATION: "none" } });
    await addBuilderViaCli(db.url, "amd", slave.url, slave.token);
    expect((await admin(db.url, ["add-project", "hooked", "--config-url", repo.url, "--arch", "amd64"])).code).toBe(0);
    const project = (await getProjectByName(db.pool, "hooked"))!;
    const hook = await createWebhook(db.pool, { projectId: project.id, url: `http://127.0.0.1:${port}/hook`, secret: SECRET, events: ["build.succeeded"], format: "json", createdBy: null });
    const artifacts = tempDir("notify-artifacts");

    const first = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts, env: NOTIFY_ENV });
    masters.push(first);
    await first.started;
    const id = Number((await admin(db.url, ["request-build", "hooked"])).stdout.trim());
    await waitForBuildState(db.pool, id, ["SUCCEEDED"], 60_000);
    await waitUntil("the first delivery attempt to reach the receiver", async () => got.length >= 1, 30_000);
    await first.crash();
    masters.splice(masters.indexOf(first), 1);
    const [inFlight] = await listDeliveries(db.pool, hook);
    expect(inFlight).toMatchObject({ state: "pending", attempts: 1, log: [] });

    const second = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts, env: NOTIFY_ENV });
    masters.push(second);
    await second.started;
    // Its lease (1.5 × the timeout + 5 s) runs out, then the delivery goes again.
    await waitUntil("the delivery to succeed after the restart", async () => (await listDeliveries(db.pool, hook))[0]?.state === "delivered", 60_000);
    expect(got.length).toBe(2);
    expect(got[1]!.delivery).toBe(got[0]!.delivery);
    expect(got[1]!.body).toBe(got[0]!.body);
    expect(got[1]!.signature).toBe("sha256=" + createHmac("sha256", SECRET).update(got[1]!.body).digest("hex"));
    const body = JSON.parse(got[1]!.body);
    expect(body).toMatchObject({ event: "build.succeeded", build: { id, state: "SUCCEEDED", url: `https://farm.example.org/builds/${id}` } });
    expect(body.build.files.length).toBeGreaterThan(0);
    expect(body.build.files[0].url).toMatch(/^https:\/\/farm\.example\.org\/artifacts\/\d+$/);
    // The secret is in no log line of either master.
    expect(second.output()).not.toContain(SECRET);
  }, 180_000);
});

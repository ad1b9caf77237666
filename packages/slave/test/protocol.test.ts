// Protocol conformance against the real daemon process, from this (separate) process: every
// method in every state, every fault, auth, idempotency, the long poll, bad bodies.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FaultCode,
  RpcClient,
  RpcFault,
  RpcTransportError,
  type StatusResult,
} from "@lexbuilder/shared-models/protocol";
import { fakeConf, makeConfigRepo, sleep, startSlave, waitFor, waitForState, type ConfigRepo, type Slave } from "./helpers.js";

let repo: ConfigRepo;
let slave: Slave;

beforeAll(async () => {
  repo = makeConfigRepo({
    quick: fakeConf([]),
    slow: fakeConf(["sleep=120"]),
    stubborn: fakeConf(["sleep=120", "ignore-term=yes"]),
  });
  slave = await startSlave();
});

afterAll(async () => {
  await slave?.stop();
});

const args = (ref: string, more: Record<string, unknown> = {}) =>
  ({ project: "demo", configUrl: repo.url, configRef: ref, architecture: "amd64", ...more }) as never;

async function fault(p: Promise<unknown>): Promise<RpcFault> {
  const err = await p.then(
    (v) => new Error(`expected a fault, got ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
  if (!(err instanceof RpcFault)) throw err;
  expect(err.faultString).toMatch(/^[A-Z"].*[.!?]$/s);
  expect(err.faultString).not.toMatch(/\n\s+at /);
  return err;
}

async function rawPost(body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(`${slave.url}/rpc`, {
    method: "POST",
    headers: { Authorization: `Bearer ${slave.token}`, "Content-Type": "text/xml", ...headers },
    body,
  });
  return { status: res.status, text: await res.text() };
}

describe("authentication", () => {
  it("answers 401 without the token or with a wrong one, everywhere but /healthz", async () => {
    const wrong = new RpcClient({ url: slave.url, token: "not-the-token-at-all" });
    const err = await wrong.call("echo", 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcTransportError);
    expect((err as RpcTransportError).kind).toBe("unauthorized");
    wrong.close();
    for (const [path, method] of [
      ["/rpc", "POST"],
      [`/files/${"a".repeat(64)}`, "GET"],
      ["/builds/1-1/log", "GET"],
      ["/state.json", "GET"],
    ] as const) {
      const none = await fetch(slave.url + path, { method, body: method === "POST" ? "<x/>" : undefined });
      expect(none.status, path).toBe(401);
      expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
      const bad = await fetch(slave.url + path, { method, headers: { Authorization: `Bearer ${slave.token}x` } });
      expect(bad.status, path).toBe(401);
      const basic = await fetch(slave.url + path, { method, headers: { Authorization: `Basic ${slave.token}` } });
      expect(basic.status, path).toBe(401);
    }
    const health = await fetch(`${slave.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, state: "IDLE" });
  });
});

describe("methods while IDLE", () => {
  it("echo returns its arguments", async () => {
    expect(await slave.client.call("echo", "a", 1, true, ["x"], { k: "v" })).toEqual(["a", 1, true, ["x"], { k: "v" }]);
    expect(await slave.client.call("echo")).toEqual([]);
  });

  it("info describes the builder", async () => {
    const info = await slave.client.call("info");
    expect(info).toMatchObject({
      protocolVersion: "1",
      builderVersion: "0.1.0",
      architectures: ["amd64", "arm64"],
      builderTypes: ["live-build"],
      liveBuildVersion: "fake-lb 1.0 (lexbuilder test fixture)",
      ready: true,
    });
    expect(info.hostname.length).toBeGreaterThan(0);
    expect(info.freeDiskBytes).toMatch(/^[0-9]+$/);
    expect(info.notReadyReason).toBeUndefined();
    expect((await fault(slave.client.call("info", ...([1] as unknown as [])))).faultCode).toBe(FaultCode.INVALID_PARAMS);
  });

  it("status, abort and clean", async () => {
    const s = await slave.client.call("status");
    expect(s.state).toBe("IDLE");
    expect(s.cookie).toBeUndefined();
    expect(typeof s.version).toBe("number");
    expect(await slave.client.call("abort", "7-1")).toEqual({ state: "IDLE" });
    expect(await slave.client.call("clean", "7-1")).toEqual({ state: "IDLE" });
  });
});

describe("faults", () => {
  it("-32700 for malformed XML, and the daemon lives on", async () => {
    for (const body of ["<methodCall><methodName>echo", "not xml at all", "", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><methodCall><methodName>echo</methodName></methodCall>']) {
      const res = await rawPost(body);
      expect(res.status).toBe(200);
      expect(res.text).toContain("<int>-32700</int>");
    }
    expect(await slave.client.call("echo", "alive")).toEqual(["alive"]);
  });

  it("-32601 for an unknown method", async () => {
    const res = await rawPost('<?xml version="1.0"?><methodCall><methodName>shutdown</methodName><params/></methodCall>');
    expect(res.text).toContain("<int>-32601</int>");
    expect(res.text).toContain("shutdown");
  });

  it("-32602 for bad arguments and refused config URLs", async () => {
    const bad: Array<[unknown[], RegExp]> = [
      [["1-1"], /2 arguments/],
      [["nope", args("quick")], /cookie/],
      [["1-1", { configUrl: repo.url, architecture: "amd64" }], /project/],
      [["1-1", args("quick", { configUrl: "ext::sh -c touch% /tmp/pwned" })], /./],
      [["1-1", args("quick", { configUrl: "ext::sh%20-c%20id" })], /^Remote-helper transports such as ext:: and fd:: are not allowed/],
      [["1-1", args("quick", { configUrl: "fd::3" })], /^Remote-helper transports/],
      [["1-1", args("quick", { configUrl: "--upload-pack=touch /tmp/x" })], /./],
      [["1-1", args("quick", { configUrl: "-uoops" })], /may not start with a dash/],
      // This builder allows only file (LEXBUILDER_SLAVE_ALLOWED_SCHEMES).
      [["1-1", args("quick", { configUrl: "https://example.invalid/config.git" })], /^The scheme https:\/\/ is not allowed for configuration URLs; use one of: file\.$/],
      [["1-1", args("quick", { configUrl: "relative/path" })], /must start with one of file:\/\//],
      [["1-1", args("--orphan")], /may not start with a dash/],
      [["1-1", args("a..b")], /must not contain '\.\.'/],
      [["1-1", args("quick", { env: { PATH: "/tmp" } })], /PATH/],
      [["1-1", args("quick", { timeoutSeconds: "10" })], /timeoutSeconds/],
    ];
    for (const [params, why] of bad) {
      const f = await fault(slave.client.call("build", ...(params as [string, never])));
      expect(f.faultCode, JSON.stringify(params)).toBe(FaultCode.INVALID_PARAMS);
      expect(f.faultString).toMatch(why);
    }
    expect((await fault(slave.client.call("status", ...(["x"] as unknown as [number])))).faultCode).toBe(FaultCode.INVALID_PARAMS);
    expect((await fault(slave.client.call("abort", ...([] as unknown as [string])))).faultCode).toBe(FaultCode.INVALID_PARAMS);
    expect((await fault(slave.client.call("clean", "../../etc"))).faultCode).toBe(FaultCode.INVALID_PARAMS);
    // Nothing was started by any of these.
    expect((await slave.client.call("status")).state).toBe("IDLE");
  });

  it("-32602 for an ssh or git host or user that looks like an option, on a builder that allows ssh", async () => {
    const sshSlave = await startSlave({ env: { LEXBUILDER_SLAVE_ALLOWED_SCHEMES: "file,ssh,git" } });
    try {
      const dash = "The host and user name of the configuration URL may not start with a dash.";
      const must = "The configuration URL must start with one of file://, ssh://, git://.";
      const cases: [string, string][] = [
        ["ssh://-oProxyCommand=touch%20x/repo", dash],
        ["ssh://-oProxyCommand=x@host/repo", dash],
        ["ssh://%2doProxyCommand=x@host/repo", dash],
        ["git://-evil/repo", dash],
        ["git@-oProxyCommand=x:repo", must],
        ["-oProxyCommand=x@host:repo", "The configuration URL may not start with a dash; give a URL such as https://example.org/config.git."],
        ["ext::ssh -oProxyCommand=x host", "The configuration URL may not contain spaces or control characters."],
        ["ext::sh%20-c%20id", "Remote-helper transports such as ext:: and fd:: are not allowed; use a URL with one of: file, ssh, git."],
      ];
      for (const [configUrl, sentence] of cases) {
        const f = await fault(sshSlave.client.call("build", "1-1", args("quick", { configUrl })));
        expect(f.faultCode, configUrl).toBe(FaultCode.INVALID_PARAMS);
        expect(f.faultString, configUrl).toBe(sentence);
      }
      expect((await sshSlave.client.call("status")).state).toBe("IDLE");
    } finally {
      await sshSlave.stop();
    }
  });

  it("UNSUPPORTED_ARCH for an architecture the builder does not build", async () => {
    const f = await fault(slave.client.call("build", "1-1", args("quick", { architecture: "s390x" })));
    expect(f.faultCode).toBe(FaultCode.UNSUPPORTED_ARCH);
    expect(f.faultString).toMatch(/amd64, arm64/);
  });

  it("a body over 1 MiB is refused (413) and the daemon lives on; so does a caller that hangs up", async () => {
    const huge = `<?xml version="1.0"?><methodCall><methodName>echo</methodName><params><param><value><string>${"x".repeat(2 * 1024 * 1024)}</string></value></param></params></methodCall>`;
    const res = await rawPost(huge).catch(() => ({ status: 413, text: "" }));
    expect(res.status).toBe(413);
    // A caller that says "big" and then hangs up mid-body.
    const { request } = await import("node:http");
    await new Promise<void>((resolve) => {
      const req = request(`${slave.url}/rpc`, {
        method: "POST",
        headers: { Authorization: `Bearer ${slave.token}`, "Content-Length": "100000" },
      });
      req.on("error", () => resolve());
      req.write("<?xml version=");
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    expect(await slave.client.call("echo", "still here")).toEqual(["still here"]);
    expect(slave.proc.exitCode).toBeNull();
  });
});

describe("every method in every state", () => {
  it("BUILDING: idempotent build, BUSY, UNKNOWN_COOKIE, WRONG_STATE; then abort → ABORTED", async () => {
    expect(await slave.client.call("build", "40-1", args("slow"))).toEqual({ state: "BUILDING", cookie: "40-1" });
    expect(await slave.client.call("build", "40-1", args("slow"))).toEqual({ state: "BUILDING", cookie: "40-1" });
    const s = await slave.client.call("status");
    expect(s).toMatchObject({ state: "BUILDING", cookie: "40-1" });
    expect(s.logSize).toMatch(/^[0-9]+$/);
    expect(typeof s.logTail).toBe("string");
    expect(s.result).toBeUndefined();
    expect(s.files).toBeUndefined();
    expect((await fault(slave.client.call("build", "41-1", args("quick")))).faultCode).toBe(FaultCode.BUSY);
    expect((await fault(slave.client.call("abort", "41-1"))).faultCode).toBe(FaultCode.UNKNOWN_COOKIE);
    expect((await fault(slave.client.call("clean", "41-1"))).faultCode).toBe(FaultCode.UNKNOWN_COOKIE);
    expect((await fault(slave.client.call("clean", "40-1"))).faultCode).toBe(FaultCode.WRONG_STATE);
    expect((await slave.client.call("info")).ready).toBe(true);
    expect(await slave.client.call("echo", 1)).toEqual([1]);
    expect(await slave.client.call("abort", "40-1")).toEqual({ state: "ABORTING" });
    const done = await waitForState(slave.client, "WAITING");
    expect(done.result).toBe("ABORTED");
    expect(await slave.client.call("clean", "40-1")).toEqual({ state: "IDLE" });
  });

  it("ABORTING: idempotent build and abort, BUSY, WRONG_STATE", async () => {
    await slave.client.call("build", "42-1", args("stubborn"));
    await waitFor(slave.client, (s) => (s.logTail ?? "").includes("Progress 1/"));
    expect(await slave.client.call("abort", "42-1")).toEqual({ state: "ABORTING" });
    // SIGTERM is ignored: the slave stays ABORTING for its grace period (3 s) before SIGKILL.
    const s = await slave.client.call("status");
    expect(s).toMatchObject({ state: "ABORTING", cookie: "42-1" });
    expect(await slave.client.call("abort", "42-1")).toEqual({ state: "ABORTING" });
    expect(await slave.client.call("build", "42-1", args("stubborn"))).toEqual({ state: "BUILDING", cookie: "42-1" });
    expect((await fault(slave.client.call("build", "43-1", args("quick")))).faultCode).toBe(FaultCode.BUSY);
    expect((await fault(slave.client.call("clean", "42-1"))).faultCode).toBe(FaultCode.WRONG_STATE);
    expect((await fault(slave.client.call("abort", "43-1"))).faultCode).toBe(FaultCode.UNKNOWN_COOKIE);
    const done = await waitForState(slave.client, "WAITING");
    expect(done.result).toBe("ABORTED");
    await slave.client.call("clean", "42-1");
  });

  it("WAITING: results held; idempotent build/abort/clean; BUSY and UNKNOWN_COOKIE", async () => {
    await slave.client.call("build", "44-1", args("quick"));
    const s = await waitForState(slave.client, "WAITING");
    expect(s).toMatchObject({ state: "WAITING", cookie: "44-1", result: "OK" });
    expect(s.files!.length).toBe(5);
    expect(await slave.client.call("build", "44-1", args("quick"))).toEqual({ state: "BUILDING", cookie: "44-1" });
    expect((await slave.client.call("status")).state).toBe("WAITING");
    expect((await fault(slave.client.call("build", "45-1", args("quick")))).faultCode).toBe(FaultCode.BUSY);
    expect(await slave.client.call("abort", "44-1")).toEqual({ state: "WAITING" });
    expect((await fault(slave.client.call("abort", "45-1"))).faultCode).toBe(FaultCode.UNKNOWN_COOKIE);
    expect((await fault(slave.client.call("clean", "45-1"))).faultCode).toBe(FaultCode.UNKNOWN_COOKIE);
    const [a, b] = await Promise.all([slave.client.call("clean", "44-1"), slave.client.call("clean", "44-1")]);
    expect(a).toEqual({ state: "IDLE" });
    expect(b).toEqual({ state: "IDLE" });
    expect(await slave.client.call("clean", "44-1")).toEqual({ state: "IDLE" });
    expect((await slave.client.call("status")).state).toBe("IDLE");
  });

  it("two builds racing: exactly one is accepted", async () => {
    const results = await Promise.allSettled([
      slave.client.call("build", "46-1", args("quick")),
      slave.client.call("build", "47-1", args("quick")),
    ]);
    const accepted = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    expect(accepted.length).toBe(1);
    expect((refused[0]!.reason as RpcFault).faultCode).toBe(FaultCode.BUSY);
    const s = await waitForState(slave.client, "WAITING");
    await slave.client.call("clean", s.cookie!);
  });
});

describe("the long poll", () => {
  it("returns when its wait expires, with the same version", async () => {
    const s = await slave.client.call("status");
    const t0 = Date.now();
    const again = await slave.client.call("status", s.version, 2);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(8000);
    expect(again.version).toBe(s.version);
    // A version the slave has not reached (from before a restart) answers at once.
    const t1 = Date.now();
    await slave.client.call("status", s.version + 5000, 10);
    expect(Date.now() - t1).toBeLessThan(3000);
  });

  it("wakes as soon as the state moves, and the version grows with the log", async () => {
    const s = await slave.client.call("status");
    const t0 = Date.now();
    const poll = slave.client.call("status", s.version, 30);
    await sleep(300);
    await slave.client.call("build", "48-1", args("quick"));
    const woke: StatusResult = await poll;
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(woke.version).toBeGreaterThan(s.version);
    expect(woke.state).toBe("BUILDING");
    // Every log change moves the version: follow the build to the end by versions only.
    let last = woke;
    let steps = 0;
    while (last.state !== "WAITING") {
      const next = await slave.client.call("status", last.version, 30);
      expect(next.version).toBeGreaterThan(last.version);
      expect(Number(next.logSize ?? 0)).toBeGreaterThanOrEqual(Number(last.logSize ?? 0));
      last = next;
      steps++;
    }
    expect(steps).toBeGreaterThan(2);
    await slave.client.call("clean", "48-1");
  });
});

describe("readiness", () => {
  it("says why it is not ready and refuses builds with NOT_READY", async () => {
    const other = await startSlave({
      env: {
        LEXBUILDER_SLAVE_LB: "/nonexistent/lb",
        LEXBUILDER_SLAVE_DEBOOTSTRAP: "no-such-debootstrap",
        LEXBUILDER_SLAVE_MIN_FREE_DISK: "1000000G",
      },
    });
    try {
      const info = await other.client.call("info");
      expect(info.ready).toBe(false);
      expect(info.notReadyReason).toMatch(/"\/nonexistent\/lb" was not found/);
      expect(info.notReadyReason).toMatch(/"no-such-debootstrap" was not found/);
      expect(info.notReadyReason).toMatch(/below the minimum/);
      expect(info.liveBuildVersion).toBe("");
      const f = await fault(other.client.call("build", "1-1", args("quick")));
      expect(f.faultCode).toBe(FaultCode.NOT_READY);
      expect(f.faultString).toMatch(/not ready/);
      expect((await other.client.call("status")).state).toBe("IDLE");
    } finally {
      await other.stop();
    }
  });
});

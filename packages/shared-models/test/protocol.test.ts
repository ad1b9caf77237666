// The XML-RPC wrapper against bad input, across a process boundary: the server runs in its own
// Node process (test/fixtures/rpc-server.mjs, from dist/), and after every hostile request we
// check it still answers an echo.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { statSync, readdirSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deserializeResponse,
  FaultCode,
  MAX_RPC_BODY_BYTES,
  RpcClient,
  RpcEncodeError,
  RpcFault,
  RpcTransportError,
  serializeCall,
  serializeResponse,
} from "@lexbuilder/shared-models/protocol";
import { waitUntil } from "../testing/index.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const FIXTURE = here("./fixtures/rpc-server.mjs");
const TOKEN = randomBytes(24).toString("base64url");

let child: ChildProcess;
let port: number;
let base: string;
let stderr = "";
let client: RpcClient;

/**
 * The fixture runs the compiled package. When a source file is newer than its output, build
 * (under the shared build lock) so the test never exercises stale code; a build that leaves
 * the output untouched means tsc found it current.
 */
function ensureDistFresh(): void {
  const src = here("../src/protocol");
  const stale = readdirSync(src)
    .filter((f) => f.endsWith(".ts"))
    .some((file) => {
      try {
        return statSync(`${src}/${file}`).mtimeMs > statSync(here(`../dist/protocol/${file.replace(/\.ts$/, ".js")}`)).mtimeMs;
      } catch {
        return true;
      }
    });
  if (!stale) return;
  const root = here("../../..");
  const tsc = ["npx", "tsc", "-b", "packages/shared-models"];
  try {
    execFileSync("flock", ["/tmp/lexbuilder-tsc.lock", ...tsc], { cwd: root, stdio: "ignore", timeout: 120_000 });
  } catch (err) {
    // tsc exits non-zero for errors elsewhere in the package but still emits; only a missing
    // output is fatal.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") execFileSync(tsc[0]!, tsc.slice(1), { cwd: root, stdio: "ignore", timeout: 120_000 });
  }
  statSync(here("../dist/protocol/server.js"));
}

beforeAll(async () => {
  ensureDistFresh();
  child = spawn(process.execPath, [FIXTURE], {
    env: { ...process.env, RPC_TOKEN: TOKEN, RPC_BODY_TIMEOUT_MS: "1500", RPC_MAX_IN_FLIGHT: "16" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line && out.includes("\n")) resolve(JSON.parse(line).port);
    });
    child.once("exit", (code) => reject(new Error(`the fixture server exited with ${code}: ${stderr}`)));
    setTimeout(() => reject(new Error(`the fixture server did not start: ${stderr}`)), 15_000);
  });
  base = `http://127.0.0.1:${port}`;
  client = new RpcClient({ url: base, token: TOKEN, timeoutMs: 10_000 });
});

afterAll(async () => {
  client?.close();
  if (child && child.exitCode === null) {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
});

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One POST with full control over headers and body; a fresh connection each time. */
function raw(body: string | Buffer, headers: Record<string, string> = {}, path = "/rpc", method = "POST"): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, method, agent: false, headers: { "Content-Type": "text/xml", Authorization: `Bearer ${TOKEN}`, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function faultOf(answer: RawAnswer): Promise<{ faultCode: unknown; faultString: unknown }> {
  expect(answer.status).toBe(200);
  expect(answer.headers["content-type"]).toMatch(/^text\/xml/);
  const decoded = await deserializeResponse(Buffer.from(answer.body));
  if (!decoded.fault) throw new Error(`expected a fault, got ${JSON.stringify(decoded.value)}`);
  return { faultCode: decoded.faultCode, faultString: decoded.faultString };
}

/** The server is still up and answering. */
async function alive(): Promise<void> {
  expect(child.exitCode).toBeNull();
  const nonce = randomBytes(6).toString("hex");
  expect(await client.call("echo", nonce)).toEqual([nonce]);
}

function call(method: string, paramsXml = ""): string {
  return `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${paramsXml}</params></methodCall>`;
}
const param = (valueXml: string) => `<param><value>${valueXml}</value></param>`;

async function expectFault(promise: Promise<unknown>, code: number, sentence?: RegExp): Promise<RpcFault> {
  const err = await promise.then(
    (v) => {
      throw new Error(`expected fault ${code}, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RpcFault);
  const fault = err as RpcFault;
  expect(fault.faultCode).toBe(code);
  expect(fault.faultString).toMatch(/^[A-Z"].*\.$/s);
  if (sentence) expect(fault.faultString).toMatch(sentence);
  return fault;
}

describe("well-formed calls", () => {
  it("round-trips every XML-RPC type through echo", async () => {
    const tricky = "a <b> & ]]> c \u00e9\u4e2d\ud83d\ude00";
    const value = [
      "", tricky, 0, -1, 2147483647, -2147483648, 1.5, -0.25, true, false, null,
      { nested: { list: [1, "two", { three: [] }] }, empty: {} },
      Buffer.from([0, 1, 2, 255]),
    ];
    const result = await client.call("echo", ...value);
    expect(result).toEqual(value);
  });

  it("serves typed results: info, status long-poll, build, abort, clean", async () => {
    const info = await client.call("info");
    expect(info.freeDiskBytes).toBe(String(2 ** 40 + 5));
    expect((await client.call("status")).state).toBe("IDLE");
    const accepted = await client.call("build", "42-1", {
      project: "debian-live",
      configUrl: "file:///srv/config.git",
      architecture: "amd64",
      configRef: "refs/tags/v1.0",
      suite: "trixie",
      env: { MIRROR: "http://deb.example/debian", EXTRA_1: "" },
      timeoutSeconds: 3600,
    });
    expect(accepted).toMatchObject({ state: "BUILDING", cookie: "42-1" });
    expect(await client.call("abort", "42-1")).toMatchObject({ state: "ABORTING" });
    expect(await client.call("clean", "42-1")).toMatchObject({ state: "IDLE" });
  });

  it("drops undefined struct members and sends undefined array items as nil", async () => {
    expect(await client.call("undefinedMembers" as "echo")).toEqual({ a: 1, c: [1, null, 3] });
    expect(await client.call("nothing" as "echo")).toBeNull();
  });

  it("answers 50 concurrent calls over kept-alive connections", async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => client.call("echo", i, `n${i}`)));
    results.forEach((r, i) => expect(r).toEqual([i, `n${i}`]));
  });

  it("reaches a builder whose URL has a path prefix and an IPv6 literal", async () => {
    // A plain proxy in this process: /prefix/rpc on [::1] → the fixture's /rpc.
    const proxy = http.createServer((req, res) => {
      const up = http.request({ host: "127.0.0.1", port, path: req.url!.replace(/^\/prefix/, ""), method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "::1", resolve));
    const v6 = new RpcClient({ url: `http://[::1]:${(proxy.address() as AddressInfo).port}/prefix/`, token: TOKEN });
    try {
      expect(await v6.call("echo", "via ::1")).toEqual(["via ::1"]);
    } finally {
      v6.close();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe("malformed XML → fault -32700", () => {
  const bodies: Array<[string, string | Buffer]> = [
    ["an unclosed element", call("echo", param("<int>1</int>")).replace("</methodCall>", "")],
    ["plain text", "this is not XML at all"],
    ["an empty body", ""],
    ["a methodResponse instead of a call", '<?xml version="1.0"?><methodResponse><params><param><value>x</value></param></params></methodResponse>'],
    ["a call without a method name", "<methodCall><params></params></methodCall>"],
    ["an unknown tag", call("echo", param("<float>1</float>"))],
    ["an int that is not a number", call("echo", param("<int>12abc</int>"))],
    ["a boolean that is neither 0 nor 1", call("echo", param("<boolean>yes</boolean>"))],
    ["a double beyond range", call("echo", param("<double>1e999</double>"))],
    ["an empty <fault> inside a call (crashes the bare package)", "<methodCall><methodName>echo</methodName><fault></fault></methodCall>"],
    ["random bytes", randomBytes(4096)],
    ["a processing instruction", '<?xml version="1.0"?><?evil stuff?>' + call("echo").replace('<?xml version="1.0"?>', "")],
  ];
  for (const [what, body] of bodies) {
    it(`refuses ${what}`, async () => {
      const fault = await faultOf(await raw(body));
      expect(fault.faultCode).toBe(FaultCode.PARSE_ERROR);
      expect(fault.faultString).toMatch(/\.$/);
      await alive();
    });
  }
});

describe("unknown methods → fault -32601", () => {
  for (const name of ["nope", "constructor", "__proto__", "toString", "hasOwnProperty", "x".repeat(5000), "echo\u0001"]) {
    it(`refuses ${JSON.stringify(name.slice(0, 20))}`, async () => {
      const fault = await faultOf(await raw(call(name.replace("\u0001", "&#1;"))));
      expect(fault.faultCode).toBe(FaultCode.METHOD_NOT_FOUND);
      expect(fault.faultString).toMatch(/has no method .*; it knows .*echo/);
      expect(String(fault.faultString).length).toBeLessThan(600);
      await alive();
    });
  }
});

describe("wrong arguments → fault -32602", () => {
  const goodArgs = { project: "p", configUrl: "https://git.example/p.git", architecture: "amd64" };
  const cases: Array<[string, unknown[]]> = [
    ["build without arguments", []],
    ["build with only a cookie", ["1-1"]],
    ["build with 3 arguments", ["1-1", goodArgs, "x"]],
    ["build with an integer cookie", [1, goodArgs]],
    ["build with a malformed cookie", ["abc", goodArgs]],
    ["build with a zero build id", ["0-1", goodArgs]],
    ["build with an array for the arguments", ["1-1", [goodArgs]]],
    ["build without project", ["1-1", { configUrl: "x", architecture: "amd64" }]],
    ["build with an unknown argument", ["1-1", { ...goodArgs, priority: 1 }]],
    ["build with an integer project", ["1-1", { ...goodArgs, project: 5 }]],
    ["build with a project with a slash", ["1-1", { ...goodArgs, project: "../etc" }]],
    ["build with an architecture with spaces", ["1-1", { ...goodArgs, architecture: "amd 64" }]],
    ["build with an empty configUrl", ["1-1", { ...goodArgs, configUrl: "" }]],
    ["build with an option-looking configUrl", ["1-1", { ...goodArgs, configUrl: "--upload-pack=touch /tmp/x" }]],
    ["build with a configUrl over 2000 characters", ["1-1", { ...goodArgs, configUrl: "https://x/" + "a".repeat(2000) }]],
    ["build with an option-looking configRef", ["1-1", { ...goodArgs, configRef: "-c core.sshCommand=x" }]],
    ["build with a configRef over 250 characters", ["1-1", { ...goodArgs, configRef: "r".repeat(251) }]],
    ["build with env as a list", ["1-1", { ...goodArgs, env: ["A=1"] }]],
    ["build with a lower-case env name", ["1-1", { ...goodArgs, env: { mirror: "x" } }]],
    ["build with a reserved env name", ["1-1", { ...goodArgs, env: { SOURCE_DATE_EPOCH: "0" } }]],
    ["build overriding LD_PRELOAD", ["1-1", { ...goodArgs, env: { LD_PRELOAD: "/tmp/x.so" } }]],
    ["build with an integer env value", ["1-1", { ...goodArgs, env: { MIRROR: 1 } }]],
    ["build with timeoutSeconds below 60", ["1-1", { ...goodArgs, timeoutSeconds: 59 }]],
    ["build with timeoutSeconds above 172800", ["1-1", { ...goodArgs, timeoutSeconds: 172801 }]],
    ["build with timeoutSeconds as a string", ["1-1", { ...goodArgs, timeoutSeconds: "3600" }]],
    ["build with a fractional timeoutSeconds", ["1-1", { ...goodArgs, timeoutSeconds: 3600.5 }]],
    ["status with a string version", ["3"]],
    ["status with a negative version", [-1]],
    ["status with a negative wait", [1, -5]],
    ["status with 3 arguments", [1, 2, 3]],
    ["clean without a cookie", []],
    ["clean with an integer cookie", [42]],
    ["clean with two cookies", ["1-1", "1-2"]],
    ["abort with a struct", [{ cookie: "1-1" }]],
    ["info with an argument", [1]],
  ];
  for (const [what, args] of cases) {
    it(`refuses ${what}`, async () => {
      const method = what.split(" ")[0] as "echo";
      await expectFault(client.call(method, ...args), FaultCode.INVALID_PARAMS);
      await alive();
    });
  }

  it("maps a thrown ValidationError to -32602 with its sentence", async () => {
    await expectFault(client.call("throwingValidation" as "echo"), FaultCode.INVALID_PARAMS, /^The widget must be blue\.$/);
  });

  it("accepts nil for optional build members and clamps a long status wait", async () => {
    const answer = await faultOrValue(
      raw(
        call(
          "build",
          param("<string>7-2</string>") +
            param(
              "<struct><member><name>project</name><value>p</value></member><member><name>configUrl</name><value>file:///x</value></member>" +
                "<member><name>architecture</name><value>arm64</value></member><member><name>configRef</name><value><nil/></value></member></struct>",
            ),
        ),
      ),
    );
    expect(answer).toEqual({ state: "BUILDING", cookie: "7-2", args: { project: "p", configUrl: "file:///x", architecture: "arm64" } });
    const status = (await client.call("status", 999, 3600)) as unknown as { waited: number };
    expect(status.waited).toBe(30);
  });
});

async function faultOrValue(answer: Promise<RawAnswer>): Promise<unknown> {
  const a = await answer;
  expect(a.status).toBe(200);
  const decoded = await deserializeResponse(Buffer.from(a.body));
  return decoded.fault ? decoded : decoded.value;
}

describe("body size limit", () => {
  it("answers 413 to a declared Content-Length over 1 MiB without reading it", async () => {
    const answer = await new Promise<RawAnswer>((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port, path: "/rpc", method: "POST", agent: false, headers: { Authorization: `Bearer ${TOKEN}`, "Content-Length": String(MAX_RPC_BODY_BYTES + 1) } },
        (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (d: string) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        },
      );
      req.on("error", (err: NodeJS.ErrnoException) => (err.code === "EPIPE" || err.code === "ECONNRESET" ? undefined : reject(err)));
      req.write("<methodCall>"); // headers and a first byte; the rest never comes
    });
    expect(answer.status).toBe(413);
    expect(answer.body).toMatch(/larger than 1048576 bytes/);
    await alive();
  });

  /** Streams up to `total` bytes of body in 64 KiB chunks; settles with the answer or the connection error. */
  function flood(total: number, headers: Record<string, string>): Promise<{ answer?: RawAnswer; error?: string; sent: number }> {
    const chunk = Buffer.alloc(64 * 1024, "a");
    let sent = 0;
    return new Promise((resolve) => {
      const req = http.request(
        { host: "127.0.0.1", port, path: "/rpc", method: "POST", agent: false, headers: { Authorization: `Bearer ${TOKEN}`, ...headers } },
        (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (d: string) => (body += d));
          res.on("end", () => resolve({ answer: { status: res.statusCode!, headers: res.headers, body }, sent }));
          res.on("error", (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message, sent }));
        },
      );
      // A reset before the answer was read: only acceptable for the flood case below.
      req.on("error", (err: NodeJS.ErrnoException) => setTimeout(() => resolve({ error: err.code ?? err.message, sent }), 200));
      const pump = () => {
        while (sent < total && !req.destroyed) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once("drain", pump);
            return;
          }
        }
        if (!req.destroyed) req.end();
      };
      req.write(call("echo", param("<string>")));
      pump();
    });
  }

  it("answers 413 to a chunked 2 MiB body, ten times out of ten, and stays up", async () => {
    for (let i = 0; i < 10; i++) {
      const { answer, error } = await flood(2 * MAX_RPC_BODY_BYTES, { "Transfer-Encoding": "chunked" });
      expect(error).toBeUndefined();
      expect(answer!.status).toBe(413);
      expect(answer!.headers.connection).toBe("close");
      expect(answer!.body).toMatch(/^The request body is larger than 1048576 bytes; .*\.\n$/);
    }
    await alive();
  });

  it("cuts off a 64 MiB flood after a bounded amount, and stays up", async () => {
    const { answer, error, sent } = await flood(64 * MAX_RPC_BODY_BYTES, { "Transfer-Encoding": "chunked" });
    // The 413 is written at 1 MiB; past 5 MiB the connection is cut, and a cut can reach the
    // caller before it read the 413, so either is the server doing its job.
    if (answer) expect(answer.status).toBe(413);
    else expect(error).toMatch(/EPIPE|ECONNRESET/);
    expect(sent).toBeLessThan(64 * MAX_RPC_BODY_BYTES);
    await alive();
  });

  it("accepts a body just under 1 MiB", async () => {
    const filler = "b".repeat(MAX_RPC_BODY_BYTES - 400);
    const answer = await raw(call("count", param(`<string>${filler}</string>`)));
    expect(answer.status).toBe(200);
    expect(await deserializeResponse(Buffer.from(answer.body))).toEqual({ fault: false, value: 1 });
  });

  it("answers 408 to a body that stops arriving", async () => {
    const answer = await new Promise<RawAnswer>((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port, path: "/rpc", method: "POST", agent: false, headers: { Authorization: `Bearer ${TOKEN}`, "Content-Length": "1000" } },
        (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (d: string) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        },
      );
      req.on("error", reject);
      req.write("<methodCall>");
    });
    expect(answer.status).toBe(408);
    await alive();
  });

  it("survives a caller that hangs up in the middle of a body", async () => {
    await new Promise<void>((resolve) => {
      const req = http.request({ host: "127.0.0.1", port, path: "/rpc", method: "POST", agent: false, headers: { Authorization: `Bearer ${TOKEN}`, "Content-Length": "5000" } });
      req.on("error", () => {});
      req.on("close", () => resolve());
      req.write("<methodCall><methodName>echo", () => setTimeout(() => req.destroy(), 50));
    });
    await alive();
  });
});

describe("authentication → 401", () => {
  const cases: Array<[string, Record<string, string>]> = [
    ["a missing token", { Authorization: "" }],
    ["a wrong token", { Authorization: `Bearer ${TOKEN}x` }],
    ["a token prefix", { Authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ["another scheme", { Authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString("base64")}` }],
    ["the bare token", { Authorization: TOKEN }],
  ];
  for (const [what, headers] of cases) {
    it(`refuses ${what}`, async () => {
      const answer = await raw(call("echo", param("<string>x</string>")), headers);
      expect(answer.status).toBe(401);
      expect(answer.headers["content-type"]).toMatch(/^text\/plain/);
      expect(answer.headers["www-authenticate"]).toMatch(/^Bearer/);
      expect(answer.body.trim()).toMatch(/^This builder needs .*\.$/);
      expect(answer.body).not.toContain(TOKEN);
      await alive();
    });
  }

  it("checks the token before reading or parsing the body", async () => {
    const answer = await raw("not xml", { Authorization: "Bearer wrong" });
    expect(answer.status).toBe(401);
  });

  it("answers 401 (not a reset) to a wrong token with a 3 MiB body, five times over", async () => {
    for (let i = 0; i < 5; i++) {
      const answer = await raw(Buffer.alloc(3 * MAX_RPC_BODY_BYTES, "z"), { Authorization: "Bearer wrong" });
      expect(answer.status).toBe(401);
    }
    await alive();
  });

  it("gives the client an 'unauthorized' error with a sentence", async () => {
    const wrong = new RpcClient({ url: base, token: "wrong-token" });
    const err = await wrong.call("echo").catch((e: unknown) => e);
    wrong.close();
    expect(err).toBeInstanceOf(RpcTransportError);
    expect((err as RpcTransportError).kind).toBe("unauthorized");
    expect((err as RpcTransportError).message).toMatch(/^The builder at http:\/\/127\.0\.0\.1:\d+ refused the token; .*\.$/);
  });

  it("answers 405 to a GET", async () => {
    const answer = await raw("", {}, "/rpc", "GET");
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe("POST");
  });
});

describe("handler failures → faults, never a crash or a stack trace", () => {
  it("a plain Error becomes -32500 with a generic sentence; the detail goes to the log", async () => {
    const answer = await raw(call("throwing"));
    const fault = await faultOf(answer);
    expect(fault.faultCode).toBe(FaultCode.INTERNAL_ERROR);
    expect(fault.faultString).toBe('The builder failed while handling "throwing"; its log has the details.');
    expect(answer.body).not.toMatch(/secret|\/srv\/|\.mjs|at Object|stack/);
    await alive();
    // The log line crosses a pipe: wait for it.
    const logged = await waitUntil("the failure's log line", () => stderr.split("\n").find((l) => l.includes("secret internal detail")));
    expect(JSON.parse(logged)).toMatchObject({ level: 50, method: "throwing", msg: "rpc method failed" });
    expect(logged).toContain("rpc-server.mjs");
  });

  for (const method of ["throwingString", "rejecting", "bigResult", "nanResult"]) {
    it(`${method} becomes -32500`, async () => {
      const answer = await raw(call(method));
      expect((await faultOf(answer)).faultCode).toBe(FaultCode.INTERNAL_ERROR);
      expect(answer.body).not.toMatch(/TypeError|undefined|1099511627776|NaN/);
      await alive();
    });
  }

  it("an RpcFault travels as itself", async () => {
    await expectFault(client.call("busy" as "echo"), FaultCode.BUSY, /busy with build 7-1/);
    await alive();
  });
});

describe("integers, nil and dates on the wire", () => {
  it("refuses an <int> beyond 32 bits in a request with -32700", async () => {
    for (const v of ["2147483648", "-2147483649", "99999999999999999999"]) {
      const fault = await faultOf(await raw(call("echo", param(`<int>${v}</int>`))));
      expect(fault.faultCode).toBe(FaultCode.PARSE_ERROR);
      expect(fault.faultString).toMatch(/32 bits/);
    }
    await alive();
  });

  it("passes an <i8> through as its decimal string, and -32602 where a number is needed", async () => {
    expect(await faultOrValue(raw(call("echo", param("<i8>1099511627776</i8>"))))).toEqual(["1099511627776"]);
    const fault = await faultOf(await raw(call("status", param("<i8>5</i8>"))));
    expect(fault.faultCode).toBe(FaultCode.INVALID_PARAMS);
    await alive();
  });

  it("refuses to send an integer beyond 32 bits from the client (sizes travel as strings)", async () => {
    await expect(client.call("echo", 2 ** 40)).rejects.toBeInstanceOf(RpcEncodeError);
    expect(() => serializeCall("echo", [{ size: 2 ** 31 }])).toThrow(/size: 2147483648 does not fit an XML-RPC int/);
  });

  it("reads <nil/> as null", async () => {
    expect(await faultOrValue(raw(call("echo", param("<nil/>") + param("<array><data><value><nil/></value></data></array>"))))).toEqual([null, [null]]);
    expect((await faultOrValue(raw(call("status", param("<nil/>"))))) as { state: string }).toMatchObject({ state: "IDLE" });
    await alive();
  });

  it("sends a log tail with control characters (ANSI colours, NUL) with those replaced, not as a fault", async () => {
    const status = (await client.call("colouredStatus" as "status")) as { logTail: string };
    expect(status.logTail).toBe("\uFFFD[1mbold\uFFFD[0m\uFFFD\uFFFD\uFFFD done\r\n");
    // And a control character arriving as a character reference goes back out the same way.
    expect(await faultOrValue(raw(call("echo", param("<string>a&#27;b</string>"))))).toEqual(["a\uFFFDb"]);
    await alive();
  });

  it("turns a dateTime into an ISO string", async () => {
    expect(await faultOrValue(raw(call("echo", param("<dateTime.iso8601>2026-01-02T03:04:05Z</dateTime.iso8601>"))))).toEqual(["2026-01-02T03:04:05.000Z"]);
  });

  it("a struct member named __proto__ does not change any prototype", async () => {
    const body = call(
      "echo",
      param("<struct><member><name>__proto__</name><value><struct><member><name>polluted</name><value>yes</value></member></struct></value></member><member><name>ok</name><value>1</value></member></struct>"),
    );
    const value = (await faultOrValue(raw(body))) as Array<Record<string, unknown>>;
    expect(value).toEqual([{ ok: "1" }]);
    expect(Object.getPrototypeOf(value[0])).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await alive();
  });
});

describe("hostile structure", () => {
  const nestArrays = (n: number) => "<array><data><value>".repeat(n) + "<int>1</int>" + "</value></data></array>".repeat(n);
  const nestStructs = (n: number) => "<struct><member><name>k</name><value>".repeat(n) + "x" + "</value></member></struct>".repeat(n);

  it("refuses arrays nested 1000 levels deep with -32700", async () => {
    const fault = await faultOf(await raw(call("echo", param(nestArrays(1000)))));
    expect(fault.faultCode).toBe(FaultCode.PARSE_ERROR);
    expect(fault.faultString).toMatch(/nest deeper than 64 levels/);
    await alive();
  });

  it("refuses structs nested 1000 levels deep with -32700", async () => {
    const fault = await faultOf(await raw(call("echo", param(nestStructs(1000)))));
    expect(fault.faultCode).toBe(FaultCode.PARSE_ERROR);
    await alive();
  });

  it("refuses 100000 nested unknown elements with -32700", async () => {
    const fault = await faultOf(await raw(call("echo", param("<a>".repeat(100_000)))));
    expect(fault.faultCode).toBe(FaultCode.PARSE_ERROR);
    await alive();
  });

  it("accepts 64 levels and refuses 65", async () => {
    expect(await faultOrValue(raw(call("count", param(nestArrays(64)))))).toBe(1);
    expect(((await faultOrValue(raw(call("count", param(nestArrays(65)))))) as { faultCode: number }).faultCode).toBe(FaultCode.PARSE_ERROR);
  });

  it("refuses more than 100000 elements with -32700", async () => {
    const body = call("count", param("<array><data>" + "<value/>".repeat(120_000) + "</data></array>"));
    expect(body.length).toBeLessThan(MAX_RPC_BODY_BYTES);
    const fault = await faultOf(await raw(body));
    expect(fault.faultCode).toBe(FaultCode.PARSE_ERROR);
    expect(fault.faultString).toMatch(/more than 100000 XML elements/);
    await alive();
  });

  it("refuses a billion-laughs body at once with -32700", async () => {
    const entities = ['<!ENTITY lol "lol">'];
    for (let i = 1; i <= 9; i++) entities.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? "" : i - 1};`.repeat(10)}">`);
    const body = `<?xml version="1.0"?><!DOCTYPE lolz [${entities.join("")}]>` + call("echo", param("<string>&lol9;</string>")).replace('<?xml version="1.0"?>', "");
    // Refused for its DOCTYPE, before any entity is expanded.
    const answer = await raw(body);
    const fault = await faultOf(answer);
    expect(fault.faultCode).toBe(FaultCode.PARSE_ERROR);
    expect(fault.faultString).toMatch(/DOCTYPE/);
    expect(answer.body.length).toBeLessThan(1000);
    await alive();
  });

  it("refuses an external entity (XXE) without reading the file", async () => {
    const body = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + call("echo", param("<string>&xxe;</string>")).replace('<?xml version="1.0"?>', "");
    const answer = await raw(body);
    expect((await faultOf(answer)).faultCode).toBe(FaultCode.PARSE_ERROR);
    expect(answer.body).not.toContain("root:");
  });

  it("does not expand undeclared entities either", async () => {
    expect(await faultOrValue(raw(call("echo", param("<string>&lol9;&amp;&#65;</string>"))))).toEqual(["&lol9;&A"]);
  });
});

describe("the client's transport errors", () => {
  it("times out against a handler that never answers", async () => {
    const impatient = new RpcClient({ url: base, token: TOKEN, timeoutMs: 800 });
    const started = Date.now();
    const err = await impatient.call("never" as "echo").catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    impatient.close();
    expect(err).toBeInstanceOf(RpcTransportError);
    expect((err as RpcTransportError).kind).toBe("timeout");
    expect((err as RpcTransportError).message).toBe(`The builder at ${base} did not answer within 0.8 s.`);
    expect(elapsed).toBeGreaterThanOrEqual(790);
    await alive();
  });

  it("says 'unreachable' for a closed port", async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const dead = new RpcClient({ url: `http://127.0.0.1:${closedPort}`, token: TOKEN });
    const err = await dead.call("echo").catch((e: unknown) => e);
    dead.close();
    expect(err).toBeInstanceOf(RpcTransportError);
    expect((err as RpcTransportError).kind).toBe("unreachable");
    expect((err as RpcTransportError).message).toMatch(/^The builder at http:\/\/127\.0\.0\.1:\d+ cannot be reached \(ECONNREFUSED\); .*\.$/);
  });

  it("says 'http' for a wrong path", async () => {
    const lost = new RpcClient({ url: `${base}/elsewhere`, token: TOKEN });
    const err = await lost.call("echo").catch((e: unknown) => e);
    lost.close();
    expect((err as RpcTransportError).kind).toBe("http");
    expect((err as RpcTransportError).status).toBe(404);
  });

  it("says 'malformed' for an answer that is not XML-RPC, and for a fault without a code", async () => {
    const answers = [
      "hello",
      '<?xml version="1.0"?><methodResponse><fault></fault></methodResponse>',
      '<?xml version="1.0"?><methodResponse><fault><value><struct><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>',
      '<?xml version="1.0"?><methodResponse><params><param><value><int>99999999999</int></value></param></params></methodResponse>',
    ];
    let next = 0;
    const liar = http.createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/xml" });
      res.end(answers[next++]);
    });
    await new Promise<void>((r) => liar.listen(0, "127.0.0.1", r));
    const c = new RpcClient({ url: `http://127.0.0.1:${(liar.address() as AddressInfo).port}`, token: TOKEN });
    try {
      for (let i = 0; i < answers.length; i++) {
        const err = await c.call("echo").catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RpcTransportError);
        expect((err as RpcTransportError).kind).toBe("malformed");
      }
    } finally {
      c.close();
      await new Promise((r) => liar.close(r));
    }
  });

  it("retries once on a fresh connection when a kept-alive one was closed under it", async () => {
    // A builder that drops every connection at its second request, as one whose keep-alive
    // timeout expires just as the next call goes out.
    const perSocket = new WeakMap<object, number>();
    let connections = 0;
    const flaky = http.createServer((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n > 1) {
        req.socket.destroy();
        return;
      }
      req.resume();
      req.on("end", () => {
        const xml = serializeResponse(["fine"]);
        res.writeHead(200, { "Content-Type": "text/xml", "Content-Length": Buffer.byteLength(xml) });
        res.end(xml);
      });
    });
    flaky.on("connection", () => (connections += 1));
    await new Promise<void>((r) => flaky.listen(0, "127.0.0.1", r));
    const c = new RpcClient({ url: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`, token: TOKEN });
    try {
      for (let i = 0; i < 3; i++) expect(await c.call("echo")).toEqual(["fine"]);
      expect(connections).toBe(3);
    } finally {
      c.close();
      flaky.closeAllConnections();
      await new Promise((r) => flaky.close(r));
    }
  });

  it("says 'malformed' for results of the wrong shape, and drops nil optional members", async () => {
    const sha = "ab".repeat(32);
    const answers: unknown[] = [
      { state: "DANCING", version: 1 },
      { state: "IDLE", version: "1" },
      { state: "WAITING", version: 2, files: [{ name: "../../etc/cron.d/x", sha256: sha, size: "1", kind: "image" }] },
      { state: "WAITING", version: 2, files: [{ name: "a.iso", sha256: sha, size: 5, kind: "image" }] },
      { state: "WAITING", version: 2, logSize: "-1" },
      ["not", "a", "struct"],
      { state: "IDLE", version: 4, cookie: null, files: [{ name: "live-image-amd64.packages", sha256: sha, size: "12", kind: "manifest" }], extra: "kept" },
    ];
    let next = 0;
    const liar = http.createServer((req, res) => {
      req.resume();
      const xml = serializeResponse(answers[next++]);
      res.writeHead(200, { "Content-Type": "text/xml", "Content-Length": Buffer.byteLength(xml) });
      res.end(xml);
    });
    await new Promise<void>((r) => liar.listen(0, "127.0.0.1", r));
    const c = new RpcClient({ url: `http://127.0.0.1:${(liar.address() as AddressInfo).port}`, token: TOKEN });
    try {
      const problems: string[] = [];
      for (let i = 0; i < answers.length - 1; i++) {
        const err = await c.call("status").catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RpcTransportError);
        expect((err as RpcTransportError).kind).toBe("malformed");
        problems.push((err as Error).message.replace(/^.*does not allow: /, ""));
      }
      expect(problems).toEqual([
        'state should be one of IDLE, BUILDING, ABORTING, WAITING, not "DANCING".',
        'version should be a whole number, not "1".',
        'files[0].name should be a plain file name, not "../../etc/cron.d/x".',
        "files[0].size should be a decimal string, not an integer.",
        'logSize should be a decimal string, not "-1".',
        "the result should be a struct, not an array.",
      ]);
      expect(await c.call("status")).toEqual({
        state: "IDLE",
        version: 4,
        files: [{ name: "live-image-amd64.packages", sha256: sha, size: "12", kind: "manifest" }],
        extra: "kept",
      });
    } finally {
      c.close();
      await new Promise((r) => liar.close(r));
    }
  });

  it("refuses an oversized answer", async () => {
    const big = http.createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/xml" });
      res.end("<methodResponse>" + "x".repeat(2 * 1024 * 1024));
    });
    await new Promise<void>((r) => big.listen(0, "127.0.0.1", r));
    const c = new RpcClient({ url: `http://127.0.0.1:${(big.address() as AddressInfo).port}`, token: TOKEN, maxResponseBytes: 1024 * 1024 });
    const err = await c.call("echo").catch((e: unknown) => e);
    c.close();
    big.closeAllConnections();
    await new Promise((r) => big.close(r));
    expect((err as RpcTransportError).kind).toBe("malformed");
    expect((err as RpcTransportError).message).toMatch(/larger than 1048576 bytes/);
  });

  it("refuses bad constructor options with sentences", () => {
    expect(() => new RpcClient({ url: "ftp://x", token: "t" })).toThrow(/must start with http:\/\/ or https:\/\//);
    expect(() => new RpcClient({ url: "not a url", token: "t" })).toThrow(/is not a URL/);
    expect(() => new RpcClient({ url: "http://u:p@127.0.0.1:1", token: "t" })).toThrow(/user name or password/);
    expect(() => new RpcClient({ url: "http://127.0.0.1:1", token: "a\r\nX-Evil: 1" })).toThrow(/control characters/);
  });
});

describe("a caller that hangs up", () => {
  it("aborts the method's signal, so a long poll can stop waiting", async () => {
    const before = (await client.call("hangUps" as "echo")) as unknown as number;
    const impatient = new RpcClient({ url: base, token: TOKEN, timeoutMs: 300 });
    const err = await impatient.call("untilHangUp" as "echo").catch((e: unknown) => e);
    impatient.close();
    expect((err as RpcTransportError).kind).toBe("timeout");
    const after = await waitUntil("the server to count the hang-up", async () => {
      const n = (await client.call("hangUps" as "echo")) as unknown as number;
      return n !== before && n;
    });
    expect(after).toBe(before + 1);
    await alive();
    expect(stderr).not.toContain("rpc method failed\",\"method\":\"untilHangUp");
  });
});

describe("calls at once", () => {
  it("answers 503 past 16 calls in flight, and takes calls again once they end", async () => {
    const held: http.ClientRequest[] = [];
    const open = () =>
      new Promise<number>((resolve) => {
        const req = http.request(
          { host: "127.0.0.1", port, path: "/rpc", method: "POST", agent: false, headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "text/xml" } },
          (res) => {
            res.resume();
            resolve(res.statusCode!);
          },
        );
        req.on("error", () => {});
        held.push(req);
        req.end(call("untilHangUp"));
      });
    const waitingLine = '"msg":"handler waiting for a hang-up"';
    const waitingBefore = stderr.split(waitingLine).length - 1;
    const hangUpsBefore = (await client.call("hangUps" as "echo")) as unknown as number;
    for (let i = 0; i < 16; i++) void open();
    // The 17th knocks once the 16 have reached their handler (each logs a line).
    await waitUntil("16 calls in their handler", () => stderr.split(waitingLine).length - 1 - waitingBefore >= 16);
    expect(await open()).toBe(503);
    for (const req of held) req.destroy();
    // Calls are taken again once the server has seen the 16 hang up.
    const hangUps = await waitUntil("the server to see the 16 hang-ups", () =>
      client.call("hangUps" as "echo").then(
        (n) => (n as unknown as number) - hangUpsBefore >= 16 && (n as unknown as number),
        () => false,
      ),
    );
    expect(hangUps).toBe(hangUpsBefore + 16);
    expect(await client.call("echo", "again")).toEqual(["again"]);
    await alive();
  });
});

describe("after all of the above", () => {
  it("the server process is still the same one and still answers", async () => {
    await alive();
    expect(child.exitCode).toBeNull();
    expect(stderr).not.toMatch(/uncaught|unhandled/i);
  });
});

// Pure parts of the protocol wrapper: parameter checks, the token comparison, the value
// adapters. The process-level behaviour is in protocol.test.ts.
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import {
  bareDeserializer,
  bearerMatches,
  deserializeCall,
  deserializeResponse,
  FaultCode,
  fromWire,
  MAX_STATUS_WAIT_SECONDS,
  noParams,
  parseBuildParams,
  parseCookieParam,
  parseStatusParams,
  RpcDecodeError,
  RpcEncodeError,
  RpcFault,
  serializeCall,
  serializeFault,
  serializeResponse,
  toWire,
  xmlSafeString,
  checkResult,
  ResultShapeError,
} from "@lexbuilder/shared-models/protocol";

function refusal(fn: () => unknown): RpcFault {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RpcFault);
    expect((err as RpcFault).faultCode).toBe(FaultCode.INVALID_PARAMS);
    // One sentence: starts with a capital, ends with a full stop, no line breaks.
    expect((err as RpcFault).faultString).toMatch(/^[A-Z][^\n]*\.$/);
    return err as RpcFault;
  }
  throw new Error("expected a refusal");
}

describe("parseBuildParams", () => {
  const good = { project: "debian-live", configUrl: "https://git.example/cfg.git", architecture: "amd64" };

  it("returns the cookie and exactly the given arguments", () => {
    expect(parseBuildParams(["12-3", good])).toEqual(["12-3", good]);
    const full = { ...good, configRef: "release/1.0", suite: "trixie", env: { MIRROR: "http://m/debian", _X1: "" }, timeoutSeconds: 60 };
    expect(parseBuildParams(["12-3", full])).toEqual(["12-3", full]);
    expect(parseBuildParams(["1-1", { ...good, timeoutSeconds: 172_800 }])[1].timeoutSeconds).toBe(172_800);
  });

  it("treats nil optional members as absent", () => {
    const [, args] = parseBuildParams(["1-1", { ...good, configRef: null, suite: null, env: null, timeoutSeconds: null }]);
    expect(args).toEqual(good);
    expect(Object.keys(args)).toEqual(["project", "configUrl", "architecture"]);
  });

  it("names what is wrong", () => {
    expect(refusal(() => parseBuildParams([])).faultString).toBe(
      "The build call expects 2 arguments (the cookie and a struct of build arguments), but got 0 arguments.",
    );
    expect(refusal(() => parseBuildParams(["1-1", { ...good, project: null }])).faultString).toMatch(/needs the project name/);
    expect(refusal(() => parseBuildParams(["1-1", { ...good, Project: "x" }])).faultString).toMatch(/does not know the argument "Project"/);
    expect(refusal(() => parseBuildParams(["01-1", good])).faultString).toMatch(/cookie "01-1"/);
    expect(refusal(() => parseBuildParams(["1-1", { ...good, env: { PATH: "/x" } }])).faultString).toBe("PATH is set by the builder itself or is not allowed; choose another name.");
    expect(refusal(() => parseBuildParams(["1-1", { ...good, env: { GIT_SSH_COMMAND: "x" } }])).faultString).toMatch(/GIT_SSH_COMMAND/);
    expect(refusal(() => parseBuildParams(["1-1", { ...good, env: { "1X": "x" } }])).faultString).toMatch(/name "1X"/);
    expect(refusal(() => parseBuildParams(["1-1", { ...good, env: { A: "x\u0000y" } }])).faultString).toMatch(/NUL/);
    expect(refusal(() => parseBuildParams(["1-1", { ...good, configUrl: "https://x/a b" }])).faultString).toMatch(/spaces or control/);
    expect(refusal(() => parseBuildParams(["1-1", { ...good, configRef: "" }])).faultString).toBe("Give a branch, tag or commit to build (for example main).");
    expect(refusal(() => parseBuildParams(["1-1", { ...good, suite: "tri xie" }])).faultString).toBe("The suite may use lower-case letters, digits, dots and dashes (for example trixie or bookworm).");
    expect(refusal(() => parseBuildParams(["1-1", { ...good, architecture: "AMD64" }])).faultString).toMatch(/architecture "AMD64"/);
    expect(refusal(() => parseBuildParams(["1-1", { ...good, timeoutSeconds: 1e9 }])).faultString).toMatch(/between 60 and 172800/);
  });

  it("refuses every reserved variable name and a flood of variables", () => {
    for (const name of ["PROJECT", "ARCH", "SUITE", "NOW", "SOURCE_DATE_EPOCH", "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "HOME", "IFS", "BASH_ENV", "LEXBUILDER_X"]) {
      refusal(() => parseBuildParams(["1-1", { ...good, env: { [name]: "x" } }]));
    }
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`V${i}`, "x"]));
    expect(refusal(() => parseBuildParams(["1-1", { ...good, env: many }])).faultString).toBe("At most 100 environment variables are allowed; 101 were given.");
  });

  it("refuses an env object whose own key is __proto__", () => {
    const env = JSON.parse('{"__proto__": "x"}') as Record<string, string>;
    refusal(() => parseBuildParams(["1-1", { ...good, env }]));
  });
});

describe("parseStatusParams", () => {
  it("defaults and clamps the wait", () => {
    expect(parseStatusParams([])).toEqual({ waitSeconds: 0 });
    expect(parseStatusParams([null])).toEqual({ waitSeconds: 0 });
    expect(parseStatusParams([null, 10])).toEqual({ waitSeconds: 0 });
    expect(parseStatusParams([0])).toEqual({ knownVersion: 0, waitSeconds: MAX_STATUS_WAIT_SECONDS });
    expect(parseStatusParams([7, 5])).toEqual({ knownVersion: 7, waitSeconds: 5 });
    expect(parseStatusParams([7, 0.5])).toEqual({ knownVersion: 7, waitSeconds: 0.5 });
    expect(parseStatusParams([7, 3600])).toEqual({ knownVersion: 7, waitSeconds: MAX_STATUS_WAIT_SECONDS });
    expect(parseStatusParams([7, null])).toEqual({ knownVersion: 7, waitSeconds: MAX_STATUS_WAIT_SECONDS });
  });

  it("refuses what is not a version or a wait", () => {
    for (const params of [["1"], [1.5], [-1], [true], [[1]], [1, "5"], [1, -1], [1, Infinity], [1, 2, 3], [null, "x"]]) {
      refusal(() => parseStatusParams(params));
    }
  });
});

describe("parseCookieParam and noParams", () => {
  it("accepts one cookie", () => {
    expect(parseCookieParam(["99-12"], "clean")).toBe("99-12");
    expect(parseCookieParam(["123456789012345678-9999"])).toBe("123456789012345678-9999");
  });

  it("refuses anything else, naming the call", () => {
    expect(refusal(() => parseCookieParam([], "clean")).faultString).toBe("The clean call expects 1 argument (the build cookie), but got 0 arguments.");
    expect(refusal(() => parseCookieParam([1], "abort")).faultString).toBe("The abort call expects the build cookie as a string, not an integer.");
    for (const bad of ["1", "1-", "-1", "1-0", "1-1 ", "1-1\n", "1-10000", "a-1", "1234567890123456789-1"]) refusal(() => parseCookieParam([bad]));
    expect(refusal(() => parseCookieParam(["x"])).faultString).toMatch(/^This call got the cookie "x"/);
  });

  it("noParams refuses any argument", () => {
    expect(noParams([], "info")).toBeUndefined();
    expect(refusal(() => noParams([null], "info")).faultString).toBe("The info call expects no arguments, but got 1 argument.");
  });
});

describe("bearerMatches", () => {
  const token = "s3cret-token_ABC";
  it("accepts exactly the right bearer token", () => {
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`Bearer  ${token} `, token)).toBe(true);
  });
  it("refuses everything else", () => {
    for (const header of [undefined, "", "Bearer", "Bearer ", `Bearer ${token}x`, `Bearer ${token.slice(1)}`, token, `Basic ${token}`, `Bearer ${token} extra`, `Bearer\t${token}`]) {
      expect(bearerMatches(header, token)).toBe(false);
    }
  });
  it("never matches an empty expected token", () => {
    expect(bearerMatches("Bearer ", "")).toBe(false);
    expect(bearerMatches("Bearer x", "")).toBe(false);
  });
});

describe("value adapters", () => {
  it("toWire refuses what XML-RPC cannot carry, naming where", () => {
    expect(() => toWire({ a: [1, { b: 2 ** 32 }] })).toThrow(new RpcEncodeError("Cannot send the value at a[1].b: 4294967296 does not fit an XML-RPC int (32 bits); send it as a decimal string."));
    expect(() => toWire(NaN)).toThrow(RpcEncodeError);
    expect(() => toWire({ f: () => 1 })).toThrow(/a function has no XML-RPC form/);
    expect(() => toWire(10n)).toThrow(/a bigint has no XML-RPC form/);
    expect(() => toWire(new Date(NaN))).toThrow(/invalid date/);
    let deep: unknown = 1;
    for (let i = 0; i < 65; i++) deep = [deep];
    expect(() => toWire(deep)).toThrow(/deeper than 64 levels/);
  });

  it("toWire keeps integral doubles within 32 bits, drops undefined members, dates become ISO strings", () => {
    expect(toWire({ a: 2147483647, b: -2147483648, c: 1.25, d: undefined, e: new Date("2026-01-02T03:04:05Z") })).toEqual({
      a: 2147483647,
      b: -2147483648,
      c: 1.25,
      e: "2026-01-02T03:04:05.000Z",
    });
  });

  it("replaces characters XML cannot carry, and refuses them in member names", () => {
    expect(xmlSafeString("ok \t\n\r é 😀")).toBe("ok \t\n\r é 😀");
    expect(xmlSafeString("\u001b[0m\u0000\b\ufffe\ud800")).toBe("\uFFFD[0m\uFFFD\uFFFD\uFFFD\uFFFD");
    expect(toWire({ logTail: ["\u0007"] })).toEqual({ logTail: ["\uFFFD"] });
    expect(() => toWire({ "bad\u0001name": 1 })).toThrow(/member name .* characters XML cannot carry/);
  });

  it("fromWire rebuilds plain objects", () => {
    const evil = Object.create({ inherited: 1 }) as Record<string, unknown>;
    evil.own = new Date("2026-01-02T03:04:05Z");
    const out = fromWire([evil]) as Array<Record<string, unknown>>;
    expect(out).toEqual([{ own: "2026-01-02T03:04:05.000Z" }]);
    expect(Object.getPrototypeOf(out[0])).toBe(Object.prototype);
    expect(out[0]!.inherited).toBeUndefined();
  });

  it("NUL arriving in a string, a member name or a fault becomes U+FFFD (PostgreSQL cannot store it)", async () => {
    const wrap = (inner: string) => Buffer.from(`<?xml version="1.0"?><methodResponse><params><param><value>${inner}</value></param></params></methodResponse>`);
    expect(await deserializeResponse(wrap("<string>a\u0000b</string>"))).toEqual({ fault: false, value: "a\uFFFDb" });
    expect(await deserializeResponse(wrap("<struct><member><name>k\u0000</name><value><string>v</string></value></member></struct>"))).toEqual({
      fault: false,
      value: { "k\uFFFD": "v" },
    });
    const fault = Buffer.from(
      `<?xml version="1.0"?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member><member><name>faultString</name><value><string>x\u0000</string></value></member></struct></value></fault></methodResponse>`,
    );
    expect(await deserializeResponse(fault)).toEqual({ fault: true, faultCode: 4, faultString: "x\uFFFD" });
    expect(await deserializeCall(Buffer.from(`<?xml version="1.0"?><methodCall><methodName>echo</methodName><params><param><value><string>\u0000</string></value></param></params></methodCall>`))).toEqual({
      method: "echo",
      params: ["\uFFFD"],
    });
  });

  it("a serialized call, response and fault read back", async () => {
    const params = ["x", 1, 2.5, true, null, { a: ["b"] }];
    expect(await deserializeCall(Buffer.from(serializeCall("echo", params)))).toEqual({ method: "echo", params });
    expect(await deserializeResponse(Buffer.from(serializeResponse({ ok: [1, "2"] })))).toEqual({ fault: false, value: { ok: [1, "2"] } });
    expect(await deserializeResponse(Buffer.from(serializeFault(4, "Wrong state.")))).toEqual({ fault: true, faultCode: 4, faultString: "Wrong state." });
  });

  it("the deserializer made without its stream has the fields the package's constructor sets", () => {
    const Deserializer = createRequire(import.meta.url)("xmlrpc/lib/deserializer.js") as new (encoding: string) => object;
    const { parser, ...made } = new Deserializer("utf8") as Record<string, unknown>;
    expect(parser).toBeDefined();
    expect({ ...bareDeserializer() }).toEqual(made);
    expect(Object.getPrototypeOf(bareDeserializer())).toBe(Deserializer.prototype);
  });

  it("reads an answer larger than one parser slice whole, surrogate pairs across the cut included", async () => {
    // One of the two puts the cut between the halves of a pair.
    for (const lead of [60_000, 60_001]) {
      const long = "é".repeat(lead) + "\u{1F600}".repeat(10_000);
      expect(await deserializeResponse(Buffer.from(serializeResponse({ logTail: long, n: 3 })))).toEqual({ fault: false, value: { logTail: long, n: 3 } });
    }
  });

  it("decoding errors are RpcDecodeError sentences", async () => {
    const err = await deserializeCall(Buffer.from("<methodCall><methodName>x</methodName><params><param><value><boolean>2</boolean>")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcDecodeError);
    expect((err as Error).message).toMatch(/^The message is not well-formed XML-RPC \(.*\)\.$/);
  });
});

describe("checkResult", () => {
  const info = {
    protocolVersion: "1",
    builderVersion: "0.1.0",
    hostname: "b1",
    architectures: ["amd64"],
    builderTypes: ["live-build"],
    liveBuildVersion: "1:20230502",
    ready: false,
    notReadyReason: "lb is missing",
    freeDiskBytes: "1099511627776",
  };

  it("passes results of the right shape", () => {
    expect(checkResult("info", info)).toEqual(info);
    expect(checkResult("info", { ...info, notReadyReason: null })).toEqual({ ...info, notReadyReason: undefined });
    expect(checkResult("info", { ...info, isolation: "container" })).toEqual({ ...info, isolation: "container" });
    expect(checkResult("info", { ...info, isolation: "none" })).toEqual({ ...info, isolation: "none" });
    expect(() => checkResult("info", { ...info, isolation: "vm" })).toThrow(ResultShapeError);
    expect(checkResult("build", { state: "BUILDING", cookie: "1-1" })).toEqual({ state: "BUILDING", cookie: "1-1" });
    expect(checkResult("abort", { state: "WAITING" })).toEqual({ state: "WAITING" });
    expect(checkResult("clean", { state: "IDLE" })).toEqual({ state: "IDLE" });
    expect(checkResult("echo", [1, "x"])).toEqual([1, "x"]);
    expect(checkResult("somethingElse", 42)).toBe(42);
  });

  it("names the first member of the wrong shape", () => {
    const problem = (method: string, value: unknown) => {
      try {
        checkResult(method, value);
      } catch (err) {
        expect(err).toBeInstanceOf(ResultShapeError);
        return (err as ResultShapeError).problem;
      }
      throw new Error("expected a ResultShapeError");
    };
    expect(problem("info", { ...info, freeDiskBytes: 5 })).toBe("freeDiskBytes should be a decimal string, not an integer");
    expect(problem("info", { ...info, architectures: ["amd64", 64] })).toBe("architectures[1] should be a string, not an integer");
    expect(problem("info", { ...info, ready: "yes" })).toBe('ready should be a boolean, not "yes"');
    expect(problem("build", { state: "IDLE", cookie: "1-1" })).toBe('state should be one of BUILDING, not "IDLE"');
    expect(problem("clean", { state: "WAITING" })).toBe('state should be one of IDLE, not "WAITING"');
    expect(problem("status", { state: "IDLE", version: -1 })).toBe("version should be a whole number, not an integer");
    expect(problem("status", { state: "IDLE", version: 1, files: [{ name: ".hidden", sha256: "a".repeat(64), size: "1", kind: "log" }] })).toBe(
      'files[0].name should be a plain file name, not ".hidden"',
    );
    expect(problem("status", { state: "IDLE", version: 1, files: [{ name: "x", sha256: "A".repeat(64), size: "1", kind: "log" }] })).toMatch(/^files\[0\]\.sha256 should be a sha256/);
    expect(problem("status", { state: "IDLE", version: 1, result: "PACKAGEFAIL" })).toMatch(/^result should be one of OK, /);
  });
});

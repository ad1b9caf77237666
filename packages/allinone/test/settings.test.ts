// npm start's settings and its log lines: what it accepts, what it refuses with a sentence.
import { describe, expect, it } from "vitest";
import { readSettings, urlOf } from "../src/settings.js";
import { prettyLine } from "../src/pretty-log.js";

describe("npm start's settings", () => {
  it("has defaults, and takes the variables and --reset-admin-password", () => {
    const d = readSettings([], {});
    expect(d.home.endsWith("/.lexbuilder")).toBe(true);
    expect([d.webListen, d.slaveListen, d.metricsListen, d.pgPort, d.databaseUrl, d.pretty, d.resetAdminPassword]).toEqual([
      "127.0.0.1:8080",
      "127.0.0.1:8221",
      "127.0.0.1:9821",
      null,
      null,
      true,
      false,
    ]);
    const s = readSettings(["--reset-admin-password"], { LEXBUILDER_HOME: "/tmp/x", LEXBUILDER_PG_PORT: "5499", LEXBUILDER_PRETTY: "0", DATABASE_URL: "postgres://a@b/c" });
    expect([s.home, s.pgPort, s.pretty, s.resetAdminPassword, s.databaseUrl]).toEqual(["/tmp/x", 5499, false, true, "postgres://a@b/c"]);
  });

  it("refuses an unknown option, a bad port and a bad listen address with one sentence", () => {
    expect(() => readSettings(["--bogus"], {})).toThrow('unknown option "--bogus"; the only option is --reset-admin-password.');
    expect(() => readSettings([], { LEXBUILDER_PG_PORT: "70000" })).toThrow(/^LEXBUILDER_PG_PORT must be a port number/);
    expect(() => readSettings([], { LEXBUILDER_WEBAPP_LISTEN: "nowhere" })).toThrow('LEXBUILDER_WEBAPP_LISTEN must look like host:port, not "nowhere".');
  });

  it("turns listen addresses into URLs that reach them from here", () => {
    expect(urlOf("0.0.0.0:8080")).toBe("http://127.0.0.1:8080");
    expect(urlOf(":8080")).toBe("http://127.0.0.1:8080");
    expect(urlOf("[::]:8221")).toBe("http://[::1]:8221");
    expect(urlOf("192.0.2.1:1")).toBe("http://192.0.2.1:1");
  });

  it("shows a pino line readably and leaves other lines alone", () => {
    const line = JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 2, 3, 4, 5), pid: 1, hostname: "h", name: "n", msg: "hello", builder: "local", err: { message: "boom" } });
    expect(prettyLine(line)).toBe("03:04:05 INFO  hello builder=local err=boom");
    expect(prettyLine("plain text")).toBe("plain text");
    expect(prettyLine("{not json")).toBe("{not json");
  });
});

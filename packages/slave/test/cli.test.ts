// The command line: --help, `token` (created 0600, stable), configuration errors (one
// sentence, exit 2), and TLS when a certificate and key are configured.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import https from "node:https";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { startSlave, tempDir } from "./helpers.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const BIN = join(root, "packages", "slave", "bin", "lexbuilder-slave.js");

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    encoding: "utf8",
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("lexbuilder-slave", () => {
  it("--help lists the commands and every variable", () => {
    const r = run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: lexbuilder-slave/);
    for (const name of ["LISTEN", "STATE_DIR", "TOKEN_FILE", "LB", "ALLOWED_SCHEMES", "BUILD_TIMEOUT", "MIN_FREE_DISK", "CACHE_MAX_AGE", "ARCHITECTURES", "TLS_CERT", "ABORT_DEADLINE"]) {
      expect(r.stdout).toContain(`LEXBUILDER_SLAVE_${name}`);
    }
    // npx (node_modules/.bin) runs the same file.
    const viaNpx = execFileSync(join(root, "node_modules", ".bin", "lexbuilder-slave"), ["--help"], { encoding: "utf8" });
    expect(viaNpx).toBe(r.stdout);
  });

  it("token creates the token once (mode 0600) and prints it", () => {
    const file = join(tempDir("cli"), "etc", "lexbuilder", "slave.token");
    const first = run(["token"], { LEXBUILDER_SLAVE_TOKEN_FILE: file });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8").trim()).toBe(first.stdout.trim());
    const second = run(["token"], { LEXBUILDER_SLAVE_TOKEN_FILE: file });
    expect(second.stdout).toBe(first.stdout);
  });

  it("refuses a wrong setting or command with one sentence and exit 2", () => {
    const cases: Array<[Record<string, string>, string[], RegExp]> = [
      [{ LEXBUILDER_SLAVE_LISTEN: "everywhere" }, [], /^lexbuilder-slave: LEXBUILDER_SLAVE_LISTEN must look like host:port/],
      [{ LEXBUILDER_SLAVE_ALLOWED_SCHEMES: "https,ext" }, [], /^lexbuilder-slave: LEXBUILDER_SLAVE_ALLOWED_SCHEMES may only name .*not "ext"\./],
      [{ LEXBUILDER_SLAVE_BUILD_TIMEOUT: "soon" }, [], /^lexbuilder-slave: LEXBUILDER_SLAVE_BUILD_TIMEOUT must be a whole number/],
      [{ LEXBUILDER_SLAVE_MIN_FREE_DISK: "lots" }, [], /^lexbuilder-slave: LEXBUILDER_SLAVE_MIN_FREE_DISK must be a size in bytes/],
      [{ LEXBUILDER_SLAVE_STATE_DIR: "relative/dir" }, [], /must be an absolute path/],
      [{ LEXBUILDER_SLAVE_TLS_CERT: "/etc/hostname" }, [], /must be set together/],
      [{ LEXBUILDER_SLAVE_ARCHITECTURES: "amd64,AMD 64" }, [], /Debian architecture names/],
      [{ LOG_LEVEL: "loud" }, [], /^lexbuilder-slave: LOG_LEVEL must be one of/],
      [{}, ["explode"], /^lexbuilder-slave: Unknown command "explode"/],
    ];
    for (const [env, args, message] of cases) {
      const r = run(args, env);
      expect(r.code, JSON.stringify(env)).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\s+at /);
    }
  });

  it("serves HTTPS when a certificate and key are configured", async () => {
    const dir = tempDir("tls");
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    const slave = await startSlave({ env: { LEXBUILDER_SLAVE_TLS_CERT: cert, LEXBUILDER_SLAVE_TLS_KEY: key } });
    try {
      const url = slave.url.replace("http:", "https:");
      const call = (auth: string | null) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = https.request(`${url}/rpc`, {
            method: "POST",
            ca: readFileSync(cert),
            headers: { "Content-Type": "text/xml", ...(auth ? { Authorization: auth } : {}) },
          });
          req.on("response", (res) => {
            let body = "";
            res.on("data", (c: Buffer) => (body += c.toString()));
            res.on("end", () => resolve({ status: res.statusCode!, body }));
          });
          req.on("error", reject);
          req.end('<?xml version="1.0"?><methodCall><methodName>echo</methodName><params><param><value><string>over tls</string></value></param></params></methodCall>');
        });
      const ok = await call(`Bearer ${slave.token}`);
      expect(ok.status).toBe(200);
      expect(ok.body).toContain("over tls");
      expect((await call(null)).status).toBe(401);
      // Plain HTTP on the TLS port gets no answer.
      await expect(fetch(`${slave.url}/healthz`)).rejects.toThrow();
    } finally {
      await slave.stop();
    }
  });
});

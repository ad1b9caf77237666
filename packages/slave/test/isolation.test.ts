// Build containers: a hostile config (test/fixtures/hostile-config) tries to reach the host
// from inside lb config, and every attempt fails or leaves nothing on the host, while a normal
// build through the same slave still succeeds. Also: info() and readiness, and what a crashed
// slave's containers leave behind. Needs root, bwrap, nft and the cgroup v1 devices controller.
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_LB, fakeConf, get, makeConfigRepo, startSlave, tempDir, waitForState, type ConfigRepo, type Slave } from "./helpers.js";

const FIXTURE = join(import.meta.dirname, "fixtures", "hostile-config");

/** The fixture directory as a branch: path → content. */
function fixtureFiles(dir: string, prefix = ""): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) Object.assign(files, fixtureFiles(path, `${prefix}${entry.name}/`));
    else files[`${prefix}${entry.name}`] = readFileSync(path, "utf8");
  }
  return files;
}

/** Host processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "latin1").includes(text)) found.push(Number(name));
    } catch {
      // gone
    }
  }
  return found;
}

function attempts(log: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of log.matchAll(/^ATTEMPT ([a-z-]+): (succeeded|failed)$/gm)) out[m[1]!] = m[2]!;
  return out;
}

const hostIp = execFileSync("sh", ["-c", "ip -4 route get 1.1.1.1 | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p'"], { encoding: "utf8" }).trim();
const rootDisk = execFileSync("findmnt", ["-n", "-o", "MAJ:MIN", "/"], { encoding: "utf8" }).trim();
const rootDiskName = (() => {
  try {
    return /^DEVNAME=(.*)$/m.exec(readFileSync(`/sys/dev/block/${rootDisk}/uevent`, "utf8"))?.[1] ?? "vda";
  } catch {
    return "vda";
  }
})();
/** The mirror's host, when this machine reaches it (then the container must too). */
const mirrorHost = (() => {
  try {
    const sources = execFileSync("sh", ["-c", "cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null"], { encoding: "utf8" });
    const host = /https?:\/\/([A-Za-z0-9.-]+)/.exec(sources.replace(/^#.*$/gm, ""))?.[1];
    if (!host) return "";
    execFileSync("bash", ["-c", `timeout 5 bash -c 'exec 3<>/dev/tcp/${host}/80'`]);
    return host;
  } catch {
    return "";
  }
})();

let repo: ConfigRepo;
let slave: Slave;
let listener: Server;
let listenerPort = 0;
let connections = 0;

beforeAll(async () => {
  repo = makeConfigRepo({
    hostile: fixtureFiles(FIXTURE),
    normal: fakeConf(["sleep=1"]),
  });
  // A service on every host address (PostgreSQL's place): nothing from a build may connect.
  listener = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, "0.0.0.0", resolve));
  listenerPort = (listener.address() as { port: number }).port;
  slave = await startSlave({ env: { LEXBUILDER_SLAVE_ISOLATION: "container" } });
});

afterAll(async () => {
  await slave?.stop();
  listener?.close();
});

describe("a build container", () => {
  it("info() says container and the slave is ready", async () => {
    const info = await slave.client.call("info");
    expect(info.isolation).toBe("container");
    expect(info.notReadyReason).toBeUndefined();
    expect(info.ready).toBe(true);
  });

  it("keeps every attempt of a hostile config inside, and a normal build still succeeds", async () => {
    const mark = randomBytes(6).toString("hex");
    const suite = "bookworm";
    const otherCache = join(slave.stateDir, "lb-cache", "other", suite, "amd64");
    mkdirSync(otherCache, { recursive: true });
    writeFileSync(join(otherCache, "installed-by-other"), "other project's\n");
    const port = new URL(slave.url).port;
    await slave.client.call("build", "1-1", {
      project: "hostile",
      configUrl: repo.url,
      configRef: "hostile",
      architecture: "amd64",
      suite,
      env: {
        LB: FAKE_LB,
        HOSTILE_MARK: mark,
        HOSTILE_TOKEN_FILE: slave.tokenFile,
        HOSTILE_STATE_DIR: slave.stateDir,
        HOSTILE_OTHER_CACHE: otherCache,
        HOSTILE_HOST_PORT: String(listenerPort),
        HOSTILE_SLAVE_PORT: port,
        HOSTILE_HOST_IP: hostIp,
        HOSTILE_MIRROR_HOST: mirrorHost,
        HOSTILE_DISK: rootDisk,
        HOSTILE_DISK_NAME: rootDiskName,
      },
    });
    const s = await waitForState(slave.client, "WAITING", 60_000);
    const log = (await get(slave, "/builds/1-1/log")).body.toString();
    const tried = attempts(log);
    // The config ran to the end (and the build with it): the attempts are the config's only harm.
    expect(s.result, log).toBe("OK");

    // Failed outright.
    for (const name of [
      "read-token",
      "read-state-dir",
      "read-etc-lexbuilder",
      "host-loopback-port",
      "slave-rpc-port",
      "host-address-port",
      "mknod-disk",
      "mount-disk",
      "read-disk",
      "devtmpfs-read-disk",
      "widen-devices-cgroup",
    ]) {
      expect(tried[name], `${name}\n${log}`).toBe("failed");
    }
    expect(connections).toBe(0);
    expect(log).not.toContain(slave.token);

    // Succeeded inside the container and vanished with it.
    expect(tried["write-etc"]).toBe("succeeded");
    expect(existsSync(`/etc/lexbuilder-hostile-${mark}`)).toBe(false);
    expect(existsSync(`/root/lexbuilder-hostile-${mark}`)).toBe(false);
    expect(existsSync(`/usr/lexbuilder-hostile-${mark}`)).toBe(false);
    expect(readdirSync(otherCache)).toEqual(["installed-by-other"]);
    expect(tried["escape-started"]).toBe("succeeded");
    expect(processesMentioning(`lexbuilder-hostile-${mark}`)).toEqual([]);

    // What a build needs still works: its own cache (kept for its project, suite and arch) and
    // the mirror, when this machine reaches it.
    expect(tried["write-own-cache"]).toBe("succeeded");
    expect(readFileSync(join(slave.stateDir, "lb-cache", "hostile", suite, "amd64", `own-${mark}`), "utf8")).toBe("mine\n");
    if (mirrorHost) expect(tried.mirror, log).toBe("succeeded");

    // Nothing of the container is left: no veth of it, no cgroup, no mount under the state dir.
    expect(await slave.client.call("clean", "1-1")).toEqual({ state: "IDLE" });
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(slave.stateDir);
    expect(existsSync(slaveCgroupOf(slave.stateDir))).toBe(false);

    // The same slave builds a normal config.
    await slave.client.call("build", "2-1", { project: "normal", configUrl: repo.url, configRef: "normal", architecture: "amd64", suite });
    const normal = await waitForState(slave.client, "WAITING", 60_000);
    expect(normal.result).toBe("OK");
    expect(normal.files!.map((f) => f.name)).toContain("live-image-amd64.tar.tar.gz");
    expect(await slave.client.call("clean", "2-1")).toEqual({ state: "IDLE" });
  }, 120_000);
});

describe("isolation settings", () => {
  it("none is reported by info(), and a wrong value stops the slave with one sentence", async () => {
    const none = await startSlave({ env: { LEXBUILDER_SLAVE_ISOLATION: "none" } });
    try {
      expect((await none.client.call("info")).isolation).toBe("none");
    } finally {
      await none.stop();
    }
    const bad = await startSlave({ env: { LEXBUILDER_SLAVE_ISOLATION: "vm" } }).catch((err: Error) => err);
    expect(bad).toBeInstanceOf(Error);
    expect((bad as Error).message).toContain('LEXBUILDER_SLAVE_ISOLATION must be container or none, not "vm".');
  });

  it("a host that cannot make containers leaves the slave not ready, saying why", async () => {
    const empty = tempDir("nobwrap");
    const s = await startSlave({ env: { LEXBUILDER_SLAVE_ISOLATION: "container", LEXBUILDER_SLAVE_BWRAP: join(empty, "bwrap") } });
    try {
      const info = await s.client.call("info");
      expect(info.ready).toBe(false);
      expect(info.notReadyReason).toMatch(/Build containers cannot be made .*bwrap.* was not found/);
    } finally {
      await s.stop();
    }
  });

  it("a slave starting up removes the containers a crashed run left, with what runs in them", async () => {
    const stateDir = tempDir("crashed");
    const leftover = join(slaveCgroupOf(stateDir), "deadbeef0001");
    mkdirSync(join(leftover, "c"), { recursive: true });
    const sleeper = spawn("sleep", ["600"], { stdio: "ignore" });
    writeFileSync(join(leftover, "c", "cgroup.procs"), String(sleeper.pid));
    const died = new Promise((resolve) => sleeper.on("exit", resolve));
    const s = await startSlave({ stateDir, env: { LEXBUILDER_SLAVE_ISOLATION: "container" } });
    try {
      expect(await died).toBeDefined();
      expect(existsSync(leftover)).toBe(false);
      expect((await s.client.call("info")).ready).toBe(true);
    } finally {
      await s.stop();
    }
  });
});

/** The devices cgroup of the slave of `stateDir` (its name hashes the path). */
function slaveCgroupOf(stateDir: string): string {
  return join("/sys/fs/cgroup/devices", `lexbuilder-slave-${createHash("sha256").update(stateDir).digest("hex").slice(0, 12)}`);
}

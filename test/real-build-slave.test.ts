// The real thing: live-build builds a minimal image (FIELD-NOTES.md's small options) from a
// config branch this test creates, through the slave daemon's RPC. The mirror and suite come
// from this machine's apt sources and /etc/os-release. Skipped, saying why, without root,
// lb, debootstrap or a Debian mirror in the apt sources. Takes about 4-5 minutes on an idle
// 2-core machine; LEXBUILDER_REAL_BUILD_MINUTES (30) bounds it.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveExecutable, hostCodename } from "../packages/slave/src/readiness.js";
import { COMMIT_EPOCH, get, makeConfigRepo, mountsBelow, startSlave, type Slave } from "../packages/slave/test/helpers.js";

interface AptSource {
  uri: string;
  suite: string;
}

/** `deb` entries of the host's apt sources, one-line and deb822 formats. */
function hostAptSources(): AptSource[] {
  const out: AptSource[] = [];
  const files: string[] = [];
  if (existsSync("/etc/apt/sources.list")) files.push("/etc/apt/sources.list");
  const dir = "/etc/apt/sources.list.d";
  if (existsSync(dir)) for (const f of readdirSync(dir).sort()) files.push(join(dir, f));
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    if (file.endsWith(".list")) {
      for (const line of text.split("\n")) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m) out.push({ uri: m[1]!, suite: m[2]! });
      }
    } else if (file.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "mi").exec(stanza)?.[1]?.trim() ?? "";
        if (!/(^|\s)deb(\s|$)/.test(field("Types")) || /^no$/i.test(field("Enabled"))) continue;
        for (const uri of field("URIs").split(/\s+/).filter(Boolean)) {
          for (const suite of field("Suites").split(/\s+/).filter(Boolean)) out.push({ uri, suite });
        }
      }
    }
  }
  return out;
}

const suite = hostCodename();
const sources = hostAptSources();
const mirror = sources.find((s) => s.suite === suite)?.uri;
const securityMirror = sources.find((s) => s.suite === `${suite}-security`)?.uri;
const arch = (() => {
  try {
    return execFileSync("dpkg", ["--print-architecture"], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
})();

/** Minutes the build may take: 30 by default; a loaded machine may need more (the test's env). */
const minutes = Number(process.env.LEXBUILDER_REAL_BUILD_MINUTES ?? "30") || 30;

const skipReason =
  process.getuid?.() !== 0
    ? "it must run as root (live-build needs root)"
    : !resolveExecutable("lb")
      ? "live-build (lb) is not installed"
      : !resolveExecutable("debootstrap", "/usr/sbin:/usr/bin:/sbin:/bin")
        ? "debootstrap is not installed"
        : !suite
          ? "/etc/os-release names no VERSION_CODENAME"
          : !mirror
            ? `no apt source for ${suite} in /etc/apt/sources.list(.d)`
            : !arch
              ? "dpkg is missing"
              : null;
if (skipReason) process.stdout.write(`real-build-slave: skipped because ${skipReason}.\n`);

/** auto/config with FIELD-NOTES.md's small real options; mirror and suite are the host's. */
function autoConfig(): string {
  const security = securityMirror
    ? `--security true --mirror-chroot-security "${securityMirror}" --mirror-binary-security "${securityMirror}" --parent-mirror-chroot-security "${securityMirror}" --parent-mirror-binary-security "${securityMirror}"`
    : "--security false";
  return `#!/bin/sh
# Written by test/real-build-slave.test.ts from this machine's apt sources.
set -e
lb config noauto \\
	--distribution "\${SUITE}" \\
	--parent-distribution "\${SUITE}" \\
	--architecture "\${ARCH}" \\
	--mirror-bootstrap "${mirror}" --mirror-chroot "${mirror}" --mirror-binary "${mirror}" \\
	--parent-mirror-bootstrap "${mirror}" --parent-mirror-chroot "${mirror}" --parent-mirror-binary "${mirror}" \\
	${security} \\
	--updates false \\
	--binary-image tar \\
	--compression gzip \\
	--chroot-filesystem plain \\
	--debootstrap-options "--variant=minbase" \\
	--apt-recommends false \\
	--apt-indices false \\
	--firmware-chroot false \\
	--firmware-binary false \\
	"$@"
`;
}

async function sha256Of(slave: Slave, sha: string): Promise<{ sha256: string; size: number }> {
  const res = await fetch(`${slave.url}/files/${sha}`, { headers: { Authorization: `Bearer ${slave.token}` } });
  expect(res.status).toBe(200);
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest("hex"), size };
}

describe("a real live-build image through the slave", () => {
  let slave: Slave | null = null;
  afterAll(async () => {
    if (!slave) return;
    // A failed run leaves no 1.7 GB chroot behind: abort, wait, clean (which unmounts first).
    try {
      let s = await slave.client.call("status");
      if (s.state === "BUILDING") await slave.client.call("abort", s.cookie!);
      while (s.state === "BUILDING" || s.state === "ABORTING") s = await slave.client.call("status", s.version, 30);
      if (s.state === "WAITING") await slave.client.call("clean", s.cookie!);
    } finally {
      await slave.stop();
    }
  }, 5 * 60_000);

  it.skipIf(skipReason !== null)(
    "builds a minimal tarball image; files, manifest and sha256s check out",
    async () => {
      const repo = makeConfigRepo({
        real: {
          "auto/config": autoConfig(),
          "config/package-lists/extra.list.chroot": "less\n",
        },
      });
      slave = await startSlave({
        env: {
          LEXBUILDER_SLAVE_LB: "lb",
          LEXBUILDER_SLAVE_DEBOOTSTRAP: "debootstrap",
          LEXBUILDER_SLAVE_MIN_FREE_DISK: "4G",
          LEXBUILDER_SLAVE_ARCHITECTURES: "",
        },
      });
      const info = await slave.client.call("info");
      expect(info.ready, info.notReadyReason).toBe(true);
      expect(info.architectures).toContain(arch);
      expect(info.liveBuildVersion).toMatch(/^[0-9]/);

      await slave.client.call("build", "900-1", {
        project: "real-minimal",
        configUrl: repo.url,
        configRef: "real",
        architecture: arch,
        suite: suite!,
        timeoutSeconds: minutes * 60,
      });
      let s = await slave.client.call("status");
      const t0 = Date.now();
      while (s.state !== "WAITING") {
        if (Date.now() - t0 > (minutes - 1) * 60_000) {
          throw new Error(`the build did not finish in ${minutes - 1} minutes; log tail:\n${s.logTail}`);
        }
        s = await slave.client.call("status", s.version, 30);
      }
      const seconds = Math.round((Date.now() - t0) / 1000);
      process.stdout.write(`real-build-slave: ${s.result} in ${seconds} s\n`);
      expect(s.result, `${s.message}\n${s.logTail}`).toBe("OK");
      expect(s.configRevision).toBe(repo.commits.real);

      const files = Object.fromEntries(s.files!.map((f) => [f.name, f]));
      const image = files[`live-image-${arch}.tar.tar.gz`];
      const manifest = files[`live-image-${arch}.packages`];
      expect(image?.kind).toBe("image");
      expect(manifest?.kind).toBe("manifest");
      expect(files["build.log"]?.kind).toBe("log");
      expect(Number(image!.size)).toBeGreaterThan(50 * 1024 * 1024);

      // Every file's bytes hash to what status() says.
      for (const f of s.files!) {
        const got = await sha256Of(slave, f.sha256);
        expect(got.sha256, f.name).toBe(f.sha256);
        expect(String(got.size), f.name).toBe(f.size);
      }

      const lines = (await get(slave, `/files/${manifest!.sha256}`)).body.toString().split("\n").filter(Boolean);
      expect(lines.length).toBeGreaterThan(50);
      for (const line of lines) expect(line).toMatch(/^[a-z0-9][a-z0-9+.-]*(:[a-z0-9]+)?\t\S+$/);
      const packages = new Set(lines.map((l) => l.split("\t")[0]!.replace(/:.*/, "")));
      for (const p of ["base-files", "dpkg", "apt", "less"]) expect(packages.has(p), p).toBe(true);
      process.stdout.write(`real-build-slave: ${lines.length} packages, image ${image!.size} bytes\n`);

      const log = (await get(slave, "/builds/900-1/log")).body.toString();
      expect(log).toContain("RUN: lb clean --purge");
      expect(log).toContain("RUN: lb config");
      expect(log).toContain("RUN: lb build");
      expect(log).toContain(`SOURCE_DATE_EPOCH=${COMMIT_EPOCH}`);

      // clean: live-build's mounts are gone and the 1.7 GB workspace with them.
      const workspace = join(slave.stateDir, "builds", "900-1");
      expect(await slave.client.call("clean", "900-1")).toEqual({ state: "IDLE" });
      expect(mountsBelow(slave.stateDir)).toEqual([]);
      expect(existsSync(workspace)).toBe(false);
    },
    minutes * 60_000,
  );
});

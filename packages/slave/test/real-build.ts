// A real live-build through the slave: the minimal config branch (FIELD-NOTES.md's small
// options) with the mirror and suite of this machine's apt sources, why it cannot run here (no
// root, lb, debootstrap or mirror), and every check of a real result (tarball, manifest lines,
// sha256s, RUN lines, clean). Used by test/bench/slave-overhead.bench.test.ts.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import type { StatusResult } from "@lexbuilder/shared-models/protocol";
import { hostCodename, resolveExecutable } from "../src/readiness.js";
import { COMMIT_EPOCH, get, makeConfigRepo, mountsBelow, type ConfigRepo, type Slave } from "./helpers.js";

interface AptSource {
  uri: string;
  suite: string;
}

/** `deb` entries of the host's apt sources, one-line and deb822 formats. */
export function hostAptSources(): AptSource[] {
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

export const suite = hostCodename();
const sources = hostAptSources();
const mirror = sources.find((s) => s.suite === suite)?.uri;
const securityMirror = sources.find((s) => s.suite === `${suite}-security`)?.uri;
export const arch = (() => {
  try {
    return execFileSync("dpkg", ["--print-architecture"], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
})();

/** Minutes one real build may take: 30 by default; a loaded machine may need more. */
export const minutes = Number(process.env.LEXBUILDER_REAL_BUILD_MINUTES ?? "30") || 30;

/** Why a real build cannot run on this machine, or null. */
export const skipReason: string | null =
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

/** auto/config with FIELD-NOTES.md's small real options; mirror and suite are the host's. */
function autoConfig(): string {
  const security = securityMirror
    ? `--security true --mirror-chroot-security "${securityMirror}" --mirror-binary-security "${securityMirror}" --parent-mirror-chroot-security "${securityMirror}" --parent-mirror-binary-security "${securityMirror}"`
    : "--security false";
  return `#!/bin/sh
# Written by packages/slave/test/real-build.ts from this machine's apt sources.
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

/** The config repository: branch "real" holds the minimal config plus the package `less`. */
export function realConfigRepo(): ConfigRepo {
  return makeConfigRepo({
    real: {
      "auto/config": autoConfig(),
      "config/package-lists/extra.list.chroot": "less\n",
    },
  });
}

/** The slave's environment for real builds (startSlave's env option). */
export const REAL_SLAVE_ENV: Record<string, string> = {
  LEXBUILDER_SLAVE_LB: "lb",
  LEXBUILDER_SLAVE_DEBOOTSTRAP: "debootstrap",
  LEXBUILDER_SLAVE_MIN_FREE_DISK: "4G",
  LEXBUILDER_SLAVE_ARCHITECTURES: "",
};

/** The slave is ready for a real build of this machine's architecture. */
export async function checkRealSlaveInfo(slave: Slave): Promise<void> {
  const info = await slave.client.call("info");
  expect(info.ready, info.notReadyReason).toBe(true);
  expect(info.architectures).toContain(arch);
  expect(info.liveBuildVersion).toMatch(/^[0-9]/);
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

/**
 * Every check of a finished real build `cookie` (status `s`, WAITING): OK at the branch's
 * commit, a tarball over 50 MiB, a manifest of name<TAB>version lines with the base packages
 * and `less`, every file's bytes hashing to its sha256, the RUN lines and SOURCE_DATE_EPOCH in
 * the log; then clean leaves no mount and no workspace. Returns the manifest's package count
 * and the image size.
 */
export async function checkRealBuild(slave: Slave, s: StatusResult, repo: ConfigRepo, cookie: string): Promise<{ packages: number; imageBytes: number }> {
  expect(s.state).toBe("WAITING");
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

  const log = (await get(slave, `/builds/${cookie}/log`)).body.toString();
  expect(log).toContain("RUN: lb clean --purge");
  expect(log).toContain("RUN: lb config");
  expect(log).toContain("RUN: lb build");
  expect(log).toContain(`SOURCE_DATE_EPOCH=${COMMIT_EPOCH}`);

  // clean: live-build's mounts are gone and the 1.7 GB workspace with them.
  const workspace = join(slave.stateDir, "builds", cookie);
  expect(await slave.client.call("clean", cookie)).toEqual({ state: "IDLE" });
  expect(mountsBelow(slave.stateDir)).toEqual([]);
  expect(existsSync(workspace)).toBe(false);
  return { packages: lines.length, imageBytes: Number(image!.size) };
}

/** After a failed run: abort what runs, wait, clean (which unmounts first), stop the daemon. */
export async function stopRealSlave(slave: Slave): Promise<void> {
  try {
    let s = await slave.client.call("status");
    if (s.state === "BUILDING") await slave.client.call("abort", s.cookie!);
    while (s.state === "BUILDING" || s.state === "ABORTING") s = await slave.client.call("status", s.version, 30);
    if (s.state === "WAITING") await slave.client.call("clean", s.cookie!);
  } finally {
    await slave.stop();
  }
}

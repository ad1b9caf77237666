// Start-up of the isolation mode: clean up what a crash left, prepare the host, and prove that
// a container can be made, so that readiness can say in one sentence why it cannot.
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawnInGroup } from "./processes.js";
import { BuildContainer, DEVICES_CGROUP, removeLeftoverContainers, slaveCgroup } from "./container.js";
import { prepareHostNetwork } from "./network.js";
import { BUILD_PATH, resolveExecutable } from "./readiness.js";

export type IsolationMode = "container" | "none";

export interface Isolation {
  mode: IsolationMode;
  /** Why builds cannot run in containers on this host; null when they can (or mode is none). */
  problem: string | null;
  /** This slave's devices cgroup. */
  cgroupParent: string;
  /** Host paths a build never sees. */
  hidden: string[];
  /** bubblewrap's name or path. */
  bwrap: string;
}

const TOOLS: Array<[string, string]> = [
  ["unshare", "util-linux"],
  ["nsenter", "util-linux"],
  ["ip", "iproute2"],
  ["nft", "nftables"],
];

/**
 * The paths to hide: the token, the state dir (other builds, other caches), the config, and
 * root's and users' homes. A path under another one is left out: its parent's whiteout hides
 * it already, and a whiteout cannot hold another.
 */
export function hiddenPaths(stateDir: string, tokenFile: string): string[] {
  const paths = [...new Set(["/etc/lexbuilder", tokenFile, stateDir, "/root", "/home"].map((p) => resolve(p)))];
  return paths.filter((p) => !paths.some((other) => other !== p && (p.startsWith(`${other}/`) || other === "/")));
}

function missingFeature(bwrap: string): string | null {
  if (!resolveExecutable(bwrap, BUILD_PATH)) return `"${bwrap}" was not found; install it with \`apt-get install bubblewrap\` or set LEXBUILDER_SLAVE_BWRAP.`;
  for (const [tool, pkg] of TOOLS) {
    if (!resolveExecutable(tool, BUILD_PATH)) return `"${tool}" was not found; install it with \`apt-get install ${pkg}\`.`;
  }
  try {
    if (!/\toverlay$/m.test(readFileSync("/proc/filesystems", "utf8"))) {
      return "The kernel has no overlayfs (modprobe overlay), which build containers are made of.";
    }
  } catch {
    return "/proc/filesystems cannot be read, so overlayfs support is unknown.";
  }
  try {
    readFileSync(join(DEVICES_CGROUP, "devices.list"), "utf8");
  } catch {
    return `The cgroup v1 devices controller is not mounted at ${DEVICES_CGROUP} (boot with systemd.unified_cgroup_hierarchy=0, or mount it), so build containers could not be kept from the host's disks.`;
  }
  return null;
}

/** Run `true` in a throwaway container: the proof that builds can run in one. */
async function probe(isolation: Isolation, stateDir: string): Promise<string | null> {
  const dir = join(stateDir, "container-probe");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let container: BuildContainer | null = null;
  try {
    container = await BuildContainer.make({
      workDir: dir,
      hidden: isolation.hidden,
      cgroupParent: isolation.cgroupParent,
      bwrap: isolation.bwrap,
      env: { PATH: BUILD_PATH },
    });
    const wrapped = container.wrap("true", []);
    let output = "";
    const exit = await spawnInGroup(wrapped.command, wrapped.args, {
      cwd: dir,
      env: { PATH: BUILD_PATH },
      onOutput: (c) => (output += c.toString()),
    }).exited;
    if (exit.code !== 0) {
      return `A test container could not run a command (${output.trim().split("\n").pop() || `exit ${exit.code ?? exit.signal}`}).`;
    }
    return null;
  } catch (err) {
    return `A test container could not be made: ${(err as Error).message}.`;
  } finally {
    await container?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function setUpIsolation(mode: IsolationMode, stateDir: string, tokenFile: string, bwrap = "bwrap"): Promise<Isolation> {
  const isolation: Isolation = { mode, problem: null, cgroupParent: slaveCgroup(stateDir), hidden: hiddenPaths(stateDir, tokenFile), bwrap };
  if (mode === "none") return isolation;
  isolation.problem = missingFeature(bwrap);
  if (isolation.problem) return isolation;
  await removeLeftoverContainers(isolation.cgroupParent);
  isolation.problem = (await prepareHostNetwork()) ?? (await probe(isolation, stateDir));
  return isolation;
}

// Honest readiness: can this machine build right now? Root, the live-build front end,
// debootstrap and free disk are checked on every info() and build(); the answers are cheap.
import { execFile } from "node:child_process";
import { accessSync, constants, readFileSync, statfsSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import { promisify } from "node:util";
import { formatBytes } from "@lexbuilder/shared-models/bytes";

const execFileP = promisify(execFile);

/** PATH of every build command (root's usual one, whatever the daemon was started with). */
export const BUILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The executable `name` resolves to (a path, or a name looked up in PATH), or null. */
export function resolveExecutable(name: string, path = BUILD_PATH): string | null {
  const candidates = name.includes("/") ? [name] : path.split(delimiter).filter(isAbsolute).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return null;
}

/** Bytes available to root on the file system holding `dir`. */
export function freeDiskBytes(dir: string): number {
  const st = statfsSync(dir);
  return st.bfree * st.bsize;
}

export interface ReadinessInput {
  lb: string;
  debootstrap: string;
  stateDir: string;
  minFreeDiskBytes: number;
  /** Why build containers cannot be made here (isolation=container only). */
  isolationProblem?: string | null;
}

export interface Readiness {
  ready: boolean;
  /** One sentence per problem, joined; absent when ready. */
  reason?: string;
  freeDiskBytes: number;
}

export function checkReadiness(input: ReadinessInput): Readiness {
  const problems: string[] = [];
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    problems.push("The slave is not running as root, which live-build needs; start it as root (sudo).");
  }
  if (!resolveExecutable(input.lb)) {
    problems.push(`The live-build front end "${input.lb}" was not found; install it as root with \`apt-get install live-build debootstrap\` or set LEXBUILDER_SLAVE_LB.`);
  }
  if (!resolveExecutable(input.debootstrap)) {
    problems.push(`"${input.debootstrap}" was not found; install it as root with \`apt-get install debootstrap\` or set LEXBUILDER_SLAVE_DEBOOTSTRAP.`);
  }
  if (input.isolationProblem) problems.push(`Build containers cannot be made (LEXBUILDER_SLAVE_ISOLATION=container): ${input.isolationProblem}`);
  let free = 0;
  try {
    free = freeDiskBytes(input.stateDir);
    if (free < input.minFreeDiskBytes) {
      problems.push(
        `Only ${formatBytes(free)} of disk is free under ${input.stateDir}, below the minimum of ${formatBytes(input.minFreeDiskBytes)}; free some space.`,
      );
    }
  } catch (err) {
    problems.push(`The state directory ${input.stateDir} cannot be examined (${(err as Error).message}).`);
  }
  return problems.length ? { ready: false, reason: problems.join(" "), freeDiskBytes: free } : { ready: true, freeDiskBytes: free };
}

/** The live-build version (`lb --version`), or "" when it cannot be run. */
export async function liveBuildVersion(lb: string): Promise<string> {
  const exe = resolveExecutable(lb);
  if (!exe) return "";
  try {
    const { stdout } = await execFileP(exe, ["--version"], { timeout: 10_000 });
    return stdout.trim().split("\n")[0] ?? "";
  } catch {
    return "";
  }
}

/** dpkg's native architecture plus its foreign ones; ["amd64"]-like. */
export async function dpkgArchitectures(): Promise<string[]> {
  try {
    const native = (await execFileP("dpkg", ["--print-architecture"], { timeout: 10_000 })).stdout.trim();
    const foreign = (await execFileP("dpkg", ["--print-foreign-architectures"], { timeout: 10_000 })).stdout
      .split(/\s+/)
      .filter(Boolean);
    return [native, ...foreign.filter((a) => a !== native)].filter(Boolean);
  } catch {
    return [];
  }
}

/** The host's Debian codename (VERSION_CODENAME in /etc/os-release), or undefined. */
export function hostCodename(): string | undefined {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    const m = /^VERSION_CODENAME="?([A-Za-z0-9._-]+)"?$/m.exec(text);
    return m ? m[1] : undefined;
  } catch {
    return undefined;
  }
}

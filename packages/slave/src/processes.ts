// Processes of a build: spawn each command in its own process group, find every process that
// belongs to the build (the group, the descendants, and escapees that left the group but carry
// the build's marker in their environment), kill them all, and unmount what they left mounted.
import { spawn } from "node:child_process";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { promisify } from "node:util";
import { environHas, readProcFile } from "./procfs.js";

const execFileP = promisify(execFile);

/** Environment variable set on every build process; its value identifies the build. */
export const MARKER_VARIABLE = "LEXBUILDER_SLAVE_BUILD";

export interface Exit {
  /** Exit code, or null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the command could not be started at all (e.g. ENOENT). */
  spawnError?: NodeJS.ErrnoException;
}

export interface Running {
  pid: number | undefined;
  /** Resolves when the process has exited (its own status, from waitpid). */
  exited: Promise<Exit>;
  /**
   * Resolves when both output pipes are closed; a pipe still held open by a leftover
   * grandchild after `graceMs` is abandoned.
   */
  drained(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  cwd: string;
  env: Record<string, string>;
  /** stdout and stderr, as they arrive. */
  onOutput(chunk: Buffer): void;
}

/**
 * Start `command` detached: a new session and process group whose id is its pid. The exit
 * status is the child's own (read from waitpid by Node), never through a pipe to another
 * program.
 */
export function spawnInGroup(command: string, args: string[], options: SpawnOptions): Running {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let open = 2;
  let onDrained: (() => void) | null = null;
  const drainedPromise = new Promise<void>((resolve) => (onDrained = resolve));
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk: Buffer) => options.onOutput(chunk));
    stream.on("close", () => {
      open -= 1;
      if (open === 0) onDrained!();
    });
    stream.on("error", () => {});
  }
  const exited = new Promise<Exit>((resolve) => {
    child.on("error", (err: NodeJS.ErrnoException) => {
      // Spawn failed: no 'exit' follows.
      resolve({ code: null, signal: null, spawnError: err });
      onDrained!();
    });
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });
  const drained = (graceMs = 2000) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        resolve();
      }, graceMs);
      void drainedPromise.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  return { pid: child.pid, exited, drained };
}

interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  state: string;
  starttime: string;
}

function readStat(pid: number): ProcInfo | null {
  const bytes = readProcFile(`/proc/${pid}/stat`);
  if (!bytes) return null;
  const stat = bytes.toString("latin1");
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (rest.length < 20) return null;
  return { pid, state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), starttime: rest[19]! };
}

function hasMarker(pid: number, entry: Buffer): boolean {
  const environ = readProcFile(`/proc/${pid}/environ`);
  return environ !== null && environHas(environ, entry);
}

/** Whether any process (a zombie included) is in process group `pgid`. */
function groupHasMembers(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    // EPERM: members exist that we may not signal.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function allPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (/^[0-9]+$/.test(name)) pids.push(Number(name));
  }
  return pids;
}

export interface TreeSpec {
  /** Process group ids of the build's commands (their leaders' pids). */
  groups: number[];
  /** The value of MARKER_VARIABLE in the build's processes (none: groups only). */
  marker?: string;
}

/**
 * Every live process of the build: members of its groups, their descendants, and anything
 * carrying its marker. Zombies are dead already and are left out. Never includes us.
 */
export function findBuildProcesses(spec: TreeSpec): number[] {
  // Without a marker, only the groups' members and their descendants count, and a descendant
  // whose parents are gone has been re-parented away: empty groups mean nothing to find. This
  // spares the walk of all of /proc after every command that left nothing behind.
  if (spec.marker === undefined && !spec.groups.some(groupHasMembers)) return [];
  const infos = new Map<number, ProcInfo>();
  for (const pid of allPids()) {
    const info = readStat(pid);
    if (info) infos.set(pid, info);
  }
  const groups = new Set(spec.groups);
  const found = new Set<number>();
  const entry = spec.marker === undefined ? null : Buffer.from(`${MARKER_VARIABLE}=${spec.marker}`, "latin1");
  for (const info of infos.values()) {
    if (info.pid === process.pid) continue;
    if (groups.has(info.pgrp) || (entry !== null && hasMarker(info.pid, entry))) found.add(info.pid);
  }
  // Descendants of anything found (they may have changed group and cleared the environment).
  let grew = true;
  while (grew) {
    grew = false;
    for (const info of infos.values()) {
      if (!found.has(info.pid) && found.has(info.ppid) && info.pid !== process.pid) {
        found.add(info.pid);
        grew = true;
      }
    }
  }
  return [...found].filter((pid) => infos.get(pid)!.state !== "Z");
}

function signalAll(pids: number[], groups: number[], signal: NodeJS.Signals): void {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, signal);
    } catch {
      // The group is gone.
    }
  }
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface KillResult {
  /** Processes still alive at the deadline (e.g. stuck in uninterruptible sleep). */
  survivors: number[];
  /** How many distinct processes were signalled. */
  signalled: number;
}

/**
 * Kill the whole build: SIGTERM to every process found, a grace period, then SIGKILL again and
 * again (re-scanning, so processes forked meanwhile are caught) until none is left or the
 * deadline passes.
 */
export async function killBuild(spec: TreeSpec, deadlineMs: number, graceMs = Math.min(3000, deadlineMs / 3)): Promise<KillResult> {
  const start = Date.now();
  const seen = new Set<number>();
  let pids = findBuildProcesses(spec);
  if (pids.length === 0) return { survivors: [], signalled: 0 };
  pids.forEach((pid) => seen.add(pid));
  signalAll(pids, spec.groups, "SIGTERM");
  while (Date.now() - start < graceMs) {
    await sleep(50);
    pids = findBuildProcesses(spec);
    if (pids.length === 0) return { survivors: [], signalled: seen.size };
    // Newcomers get their SIGTERM too.
    const fresh = pids.filter((pid) => !seen.has(pid));
    fresh.forEach((pid) => seen.add(pid));
    if (fresh.length) signalAll(fresh, [], "SIGTERM");
  }
  for (;;) {
    pids = findBuildProcesses(spec);
    pids.forEach((pid) => seen.add(pid));
    if (pids.length === 0) return { survivors: [], signalled: seen.size };
    if (Date.now() - start >= deadlineMs) return { survivors: pids, signalled: seen.size };
    signalAll(pids, spec.groups, "SIGKILL");
    await sleep(50);
  }
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  let root: string;
  try {
    root = realpathSync(dir);
  } catch {
    return [];
  }
  const text = readFileSync("/proc/self/mountinfo", "utf8");
  const points: string[] = [];
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (!field) continue;
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    const point = field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (point === root || point.startsWith(root.endsWith("/") ? root : root + "/")) points.push(point);
  }
  return points.sort((a, b) => b.split("/").length - a.split("/").length || b.length - a.length);
}

export interface UnmountResult {
  unmounted: string[];
  /** Mount points still there after a lazy unmount (should not happen). */
  remaining: string[];
}

/** Unmount everything under `dir`, deepest first; `umount -l` when a plain umount fails. */
export async function unmountUnder(dir: string): Promise<UnmountResult> {
  const unmounted: string[] = [];
  // Repeat: a mount point may be stacked several times (lb can mount proc twice).
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) break;
    for (const point of points) {
      try {
        await execFileP("umount", [point]);
        unmounted.push(point);
      } catch {
        try {
          await execFileP("umount", ["-l", point]);
          unmounted.push(point);
        } catch {
          // Left for the next round, and reported if it stays.
        }
      }
    }
  }
  return { unmounted, remaining: mountsUnder(dir) };
}

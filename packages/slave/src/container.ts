// A build's container: made after the clone, entered by every lb command, destroyed at the end.
//
// The holder process (`unshare --mount --net`) owns a private mount namespace with a tmpfs on
// /run holding an overlay whose lower layer is the host's / (read-only to the build: writes go
// to the tmpfs and are thrown away) and whose upper layer hides the slave's secrets as
// whiteouts, which root inside cannot unmount away. It also owns the build's network namespace.
// Each command enters both with nsenter and runs under bwrap in fresh PID, IPC, UTS and cgroup
// namespaces, inside a devices cgroup that allows only a few character devices. When the holder
// and the commands are gone, the namespaces, every mount in them and the veth die with them:
// nothing needs unmounting, even after a crash of the slave.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { attachVeth } from "./network.js";

/** Where cgroup v1's devices controller is mounted (Debian with the legacy hierarchy). */
export const DEVICES_CGROUP = "/sys/fs/cgroup/devices";

/** The character devices a build may use: null, zero, full, random, urandom, tty, console, ptmx, ptys. */
const ALLOWED_DEVICES = ["c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"];

/**
 * Capabilities root inside does not get: live-build needs CAP_SYS_ADMIN and CAP_MKNOD, not
 * kernel modules, raw I/O, reboot, the clock, the kernel log, BPF, or open_by_handle_at (with
 * which a handle on the bound workspace reaches the whole host file system).
 */
const DROPPED_CAPABILITIES = [
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_BOOT",
  "CAP_SYS_TIME",
  "CAP_DAC_READ_SEARCH",
  "CAP_MAC_ADMIN",
  "CAP_MAC_OVERRIDE",
  "CAP_SYSLOG",
  "CAP_BPF",
  "CAP_PERFMON",
  "CAP_SYS_PACCT",
  "CAP_AUDIT_CONTROL",
  "CAP_AUDIT_READ",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
];

// Runs as the holder. Arguments: the paths to hide. Talks to the slave by lines: "ready" once
// the overlay is mounted, then reads the network to configure, answers "net", and then waits
// for its stdin to close (the slave is done with it, or died).
const HOLDER_SCRIPT = `set -e
mount -t tmpfs -o mode=0755 lexbuilder-build /run
mkdir /run/upper /run/work /run/root
for p in "$@"; do
  mkdir -p "/run/upper$(dirname "$p")"
  mknod "/run/upper$p" c 0 0
done
mount -t overlay -o lowerdir=/,upperdir=/run/upper,workdir=/run/work lexbuilder-build /run/root
echo ready
read -r inner address gateway
ip link set lo up
ip link set "$inner" name eth0
ip addr add "$address" dev eth0
ip link set eth0 up
ip route add default via "$gateway"
echo net
while read -r _; do :; done
`;

export interface ContainerOptions {
  /** Host directory seen as /build inside (the clone, where lb runs). */
  workDir: string;
  /** Host paths the build must not see. */
  hidden: string[];
  /** This slave's devices cgroup (see slaveCgroup). */
  cgroupParent: string;
  /** bubblewrap's name or path. */
  bwrap: string;
  /** Environment of the holder (the build's marker, so a restarted slave finds it). */
  env: Record<string, string>;
  timeoutMs?: number;
}

/** This slave's cgroup directory: slaves on one host (one per state dir) never touch each other's. */
export function slaveCgroup(stateDir: string): string {
  const id = createHash("sha256").update(stateDir).digest("hex").slice(0, 12);
  return join(DEVICES_CGROUP, `lexbuilder-slave-${id}`);
}

/** Lines from a stream, one at a time. */
function lineReader(child: ChildProcess): () => Promise<string> {
  let buffer = "";
  const waiting: Array<(line: string) => void> = [];
  const lines: string[] = [];
  let ended = false;
  const flush = () => {
    while (waiting.length && (lines.length || ended)) waiting.shift()!(lines.shift() ?? "");
  };
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    let i: number;
    while ((i = buffer.indexOf("\n")) >= 0) {
      lines.push(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
    }
    flush();
  });
  child.stdout!.on("close", () => {
    ended = true;
    flush();
  });
  return () =>
    new Promise((resolve) => {
      waiting.push(resolve);
      flush();
    });
}

export class BuildContainer {
  private constructor(
    private readonly o: ContainerOptions,
    private readonly holder: ChildProcess,
    private readonly cgroup: string,
    private readonly exited: Promise<void>,
  ) {}

  /** Make the container; rejects with a sentence-like message when the host cannot. */
  static async make(o: ContainerOptions): Promise<BuildContainer> {
    const cgroup = join(o.cgroupParent, randomBytes(6).toString("hex"));
    makeDevicesCgroup(cgroup);
    const holder = spawn("unshare", ["--mount", "--net", "--propagation", "private", "--", "sh", "-c", HOLDER_SCRIPT, "sh", ...o.hidden], {
      env: o.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    holder.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    holder.stdin!.on("error", () => {});
    const exited = new Promise<void>((resolve) => {
      holder.on("exit", () => resolve());
      holder.on("error", () => resolve());
    });
    const container = new BuildContainer(o, holder, cgroup, exited);
    const readLine = lineReader(holder);
    const timeoutMs = o.timeoutMs ?? 30_000;
    const expect = async (want: string) => {
      let timer: NodeJS.Timeout | undefined;
      const line = await Promise.race([
        readLine(),
        new Promise<string>((resolve) => (timer = setTimeout(() => resolve(""), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (line !== want) {
        const why = stderr.trim().split("\n").pop() || "it stopped without saying why";
        throw new Error(`the build container could not be made (${why})`);
      }
    };
    try {
      await expect("ready");
      const veth = await attachVeth(holder.pid!);
      holder.stdin!.write(`${veth.inner} ${veth.address} ${veth.gateway}\n`);
      await expect("net");
    } catch (err) {
      await container.destroy();
      throw err;
    }
    return container;
  }

  /** The command line that runs `command args` inside, with /build as its working directory. */
  wrap(command: string, args: string[]): { command: string; args: string[] } {
    const bwrap = [
      "--dev-bind", "/run/root", "/",
      "--dev", "/dev",
      "--proc", "/proc",
      "--tmpfs", "/tmp",
      "--tmpfs", "/run",
      "--dir", "/root",
      "--dev-bind", this.o.workDir, "/build",
      "--chdir", "/build",
      "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
      "--hostname", "lexbuilder-build",
      "--die-with-parent",
      "--cap-add", "ALL",
      ...DROPPED_CAPABILITIES.flatMap((cap) => ["--cap-drop", cap]),
    ];
    return {
      command: "sh",
      // Join the devices cgroup first, so nothing of the command ever runs outside it.
      args: [
        "-c",
        'echo $$ > "$0" && exec "$@"',
        join(this.cgroup, "c", "cgroup.procs"),
        "nsenter", "--target", String(this.holder.pid), "--mount", "--net", "--",
        this.o.bwrap, ...bwrap, "--", command, ...args,
      ],
    };
  }

  /** Let the holder go (SIGKILL if it lingers), then remove the cgroup. */
  async destroy(): Promise<void> {
    this.holder.stdin!.end();
    const timer = setTimeout(() => {
      try {
        process.kill(-this.holder.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }, 3000);
    await this.exited;
    clearTimeout(timer);
    await removeDevicesCgroup(this.cgroup);
  }
}

function makeDevicesCgroup(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "devices.deny"), "a");
  for (const rule of ALLOWED_DEVICES) writeFileSync(join(dir, "devices.allow"), rule);
  // The commands run in a child: a cgroup namespace rooted there cannot widen its own list,
  // because a cgroup never gets more than its parent, which is out of its sight.
  mkdirSync(join(dir, "c"));
}

function cgroupProcs(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kill whatever is left in the cgroup and remove it (a cgroup must be empty to go). */
async function removeDevicesCgroup(dir: string): Promise<void> {
  for (let round = 0; round < 60; round++) {
    const child = join(dir, "c");
    for (const pid of [...cgroupProcs(child), ...cgroupProcs(dir)]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    try {
      if (existsSync(child)) rmdirSync(child);
      rmdirSync(dir);
      // The slave's own directory goes too once empty: nothing of it stays between builds.
      try {
        rmdirSync(dirname(dir));
      } catch {
        // another container of this slave (its probe) is there
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** What a crashed slave left: its cgroups (and anything still in them). Namespaces die alone. */
export async function removeLeftoverContainers(cgroupParent: string): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(cgroupParent, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return 0;
  }
  for (const name of names) {
    await removeDevicesCgroup(join(cgroupParent, name));
    removed += 1;
  }
  return removed;
}

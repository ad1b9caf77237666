// The network of build containers: each build gets a veth pair whose inner end lives in the
// container's own network namespace (so it dies with it), on a /30 of BUILD_SUBNET. The host
// masquerades that traffic out of its default route and drops whatever a container sends to
// the host itself (its loopback services, the slave's RPC port) or to another container.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { randomInt } from "node:crypto";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

/** Addresses of build containers; /30 per build: host side .1, container side .2. */
export const BUILD_SUBNET = "10.213.0.0/16";
/** Host-side veth names start with this (the firewall matches on it). */
export const HOST_VETH_PREFIX = "lbh";

// One transaction: the table is replaced as a whole, so slaves on one host may all run it.
const RULES = `table ip lexbuilder
delete table ip lexbuilder
table ip lexbuilder {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "${HOST_VETH_PREFIX}*" ct state established,related accept
    iifname "${HOST_VETH_PREFIX}*" drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${HOST_VETH_PREFIX}*" oifname "${HOST_VETH_PREFIX}*" drop
    iifname "${HOST_VETH_PREFIX}*" ip daddr { 127.0.0.0/8, 169.254.0.0/16 } drop
    oifname "${HOST_VETH_PREFIX}*" ct state established,related accept
    oifname "${HOST_VETH_PREFIX}*" drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${BUILD_SUBNET} oifname != "${HOST_VETH_PREFIX}*" masquerade
  }
}
`;

/** Turn on forwarding and install the firewall table; a sentence when that fails. */
export async function prepareHostNetwork(): Promise<string | null> {
  try {
    if (readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim() !== "1") {
      writeFileSync("/proc/sys/net/ipv4/ip_forward", "1\n");
    }
  } catch (err) {
    return `IPv4 forwarding (net.ipv4.ip_forward) cannot be turned on (${(err as Error).message}), so build containers could not reach the mirror.`;
  }
  try {
    await runWithInput("nft", ["-f", "-"], RULES);
  } catch (err) {
    return `The firewall rules for build containers could not be installed with nft (${firstLine((err as Error).message)}); install nftables.`;
  }
  return null;
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

/** Run a command with `input` on its stdin; rejects with its stderr on failure. */
export function runWithInput(command: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(stderr.trim() || err.message));
      else resolve(stdout);
    });
    child.stdin!.end(input);
  });
}

export interface Veth {
  /** Host side, e.g. lbh1234. */
  host: string;
  /** Container side before it is renamed eth0 inside. */
  inner: string;
  /** Container address with prefix, and its gateway (the host side). */
  address: string;
  gateway: string;
}

function addressOf(index: number, host: number): string {
  const n = index * 4 + host;
  return `10.213.${n >> 8}.${n & 255}`;
}

/**
 * Make a veth pair and move its inner end into the network namespace of `pid`. The kernel
 * refuses a name that exists, which allocates indexes among slaves on one host without a lock.
 */
export async function attachVeth(pid: number): Promise<Veth> {
  let lastError = "";
  for (let attempt = 0; attempt < 8; attempt++) {
    const index = randomInt(1, 16383);
    const veth: Veth = {
      host: `${HOST_VETH_PREFIX}${index}`,
      inner: `lbc${index}`,
      address: `${addressOf(index, 2)}/30`,
      gateway: addressOf(index, 1),
    };
    try {
      await execFileP("ip", ["link", "add", veth.host, "type", "veth", "peer", "name", veth.inner], { timeout: 10_000 });
    } catch (err) {
      lastError = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
      continue;
    }
    try {
      await runWithInput(
        "ip",
        ["-batch", "-"],
        `link set ${veth.inner} netns ${pid}\naddr add ${veth.gateway}/30 dev ${veth.host}\nlink set ${veth.host} up\n`,
      );
      return veth;
    } catch (err) {
      await execFileP("ip", ["link", "del", veth.host]).catch(() => {});
      throw new Error(`the container's network could not be set up (${firstLine((err as Error).message)})`);
    }
  }
  throw new Error(`no free network interface name for the container (${lastError})`);
}

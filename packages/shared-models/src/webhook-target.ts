// Where a webhook may point. By default never at the master's own network (loopback, private,
// link-local ranges): a project owner could otherwise make the master probe or post to internal
// services. The check runs when a hook is saved and again on every send, in the connection's own
// DNS lookup, so a name that later resolves inward is refused too.
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP } from "node:net";
import { isNonPublicAddress } from "./rules/notifications.js";
import { accept, refuse, type Checked } from "./rules/checked.js";

export interface TargetPolicy {
  /** LEXBUILDER_WEBHOOK_ALLOW_PRIVATE=true: any address. */
  allowPrivate: boolean;
  /** LEXBUILDER_WEBHOOK_ALLOWED_HOSTS: host names (or addresses) allowed whatever they resolve to. */
  allowedHosts: string[];
}

export function targetPolicyFromEnv(env: NodeJS.ProcessEnv): Checked<TargetPolicy> {
  const raw = (env.LEXBUILDER_WEBHOOK_ALLOW_PRIVATE ?? "").trim().toLowerCase();
  if (!["", "true", "false", "1", "0", "yes", "no"].includes(raw)) {
    return refuse("LEXBUILDER_WEBHOOK_ALLOW_PRIVATE must be true or false.");
  }
  const hosts = (env.LEXBUILDER_WEBHOOK_ALLOWED_HOSTS ?? "")
    .split(/[\s,]+/)
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  for (const h of hosts) {
    if (!/^[a-z0-9.:[\]-]+$/.test(h)) return refuse(`LEXBUILDER_WEBHOOK_ALLOWED_HOSTS: ${JSON.stringify(h.slice(0, 60))} is not a host name.`);
  }
  return accept({ allowPrivate: ["true", "1", "yes"].includes(raw), allowedHosts: hosts });
}

function bareHost(hostname: string): string {
  return hostname.toLowerCase().replace(/^\[|\]$/g, "");
}

function exempt(policy: TargetPolicy, hostname: string): boolean {
  return policy.allowPrivate || policy.allowedHosts.includes(bareHost(hostname));
}

const refusal = (host: string, ip: string) =>
  `${host} is ${ip === host ? "an address" : `at ${ip}`} on a loopback, private or link-local network, which webhooks may not reach; an administrator can allow it with LEXBUILDER_WEBHOOK_ALLOW_PRIVATE=true or LEXBUILDER_WEBHOOK_ALLOWED_HOSTS.`;

type Lookup = (host: string, opts: { all: true }, cb: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/** Resolves the URL's host and refuses it when any of its addresses is not public (unless allowed). */
export async function checkWebhookTarget(url: URL, policy: TargetPolicy, lookup: Lookup = dnsLookup as Lookup): Promise<Checked<URL>> {
  const host = bareHost(url.hostname);
  if (exempt(policy, host)) return accept(url);
  if (host === "localhost" || host.endsWith(".localhost")) return refuse(refusal(host, "127.0.0.1"));
  if (isIP(host)) return isNonPublicAddress(host) ? refuse(refusal(host, host)) : accept(url);
  const addresses = await new Promise<LookupAddress[] | null>((resolve) => lookup(host, { all: true }, (err, a) => resolve(err ? null : a)));
  if (!addresses || addresses.length === 0) return refuse(`The host ${host} could not be found; check the webhook URL.`);
  const inward = addresses.find((a) => isNonPublicAddress(a.address));
  return inward ? refuse(refusal(host, inward.address)) : accept(url);
}

/**
 * A `lookup` for http.request that fails the connection when the name resolves to a non-public
 * address: the check and the connection use the same answer, so DNS cannot change in between.
 */
export function guardedLookup(policy: TargetPolicy, lookup: typeof dnsLookup = dnsLookup) {
  return (hostname: string, options: object, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, "");
      const list = addresses as LookupAddress[];
      if (!exempt(policy, hostname)) {
        const inward = list.find((a) => isNonPublicAddress(a.address));
        if (inward) {
          const e: NodeJS.ErrnoException = new Error(refusal(hostname, inward.address));
          e.code = "ELEXBUILDERPRIVATE";
          return callback(e, "");
        }
      }
      if ((options as { all?: boolean }).all) return callback(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/** For literal-IP URLs http.request skips the lookup: check those here before connecting. */
export function literalTargetRefusal(url: URL, policy: TargetPolicy): string | null {
  const host = bareHost(url.hostname);
  if (exempt(policy, host)) return null;
  if (isIP(host) && isNonPublicAddress(host)) return refusal(host, host);
  return null;
}

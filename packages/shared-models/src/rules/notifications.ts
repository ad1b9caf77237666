// What a webhook, an e-mail address and a mail subscription may be. The same sentences reach
// the console's forms, the API and the admin CLI.
import { isIP } from "node:net";
import { accept, CONTROL_CHARS, quoted, refuse, text, trimmed, type Checked } from "./checked.js";

export const WEBHOOK_EVENTS = [
  "build.queued",
  "build.started",
  "build.succeeded",
  "build.failed",
  "build.cancelled",
  "release.published",
  "builder.disabled",
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
/** Farm-wide only: a project's hook never hears of builders. */
export const FARM_ONLY_EVENTS: readonly WebhookEvent[] = ["builder.disabled"];

export const WEBHOOK_FORMATS = ["json", "slack"] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

export const SUBSCRIPTION_MODES = ["all", "changes", "releases", "none"] as const;
export type SubscriptionMode = (typeof SUBSCRIPTION_MODES)[number];

export const MIN_WEBHOOK_SECRET_LENGTH = 16;
const MAX_WEBHOOK_SECRET_LENGTH = 256;
const MAX_WEBHOOK_URL_LENGTH = 2000;
const MAX_EMAIL_LENGTH = 254;

/** An http(s) URL with a host, no credentials in it (the secret signs; it is not sent). */
export function checkWebhookUrl(v: unknown): Checked<URL> {
  const s = trimmed(v);
  if (s === "") return refuse("Give the URL the events are posted to, e.g. https://ci.example.org/hooks/lexbuilder.");
  if (s.length > MAX_WEBHOOK_URL_LENGTH) return refuse(`The webhook URL may be at most ${MAX_WEBHOOK_URL_LENGTH} characters long.`);
  if (CONTROL_CHARS.test(s) || /\s/.test(s)) return refuse("The webhook URL may not contain spaces or control characters.");
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return refuse("The webhook URL is not a valid URL; give one such as https://ci.example.org/hooks/lexbuilder.");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return refuse(`Webhooks are posted over http:// or https:// only, not ${url.protocol}//.`);
  if (url.hostname === "") return refuse("The webhook URL needs a host name.");
  if (url.username || url.password) return refuse("Leave user names and passwords out of the webhook URL; the receiver checks the signature made with the secret instead.");
  return accept(url);
}

export function checkWebhookSecret(v: unknown): Checked<string> {
  const s = text(v) ?? "";
  if (s.length < MIN_WEBHOOK_SECRET_LENGTH) return refuse(`The secret must be at least ${MIN_WEBHOOK_SECRET_LENGTH} characters long; the receiver uses it to check each delivery's signature.`);
  if (s.length > MAX_WEBHOOK_SECRET_LENGTH) return refuse(`The secret may be at most ${MAX_WEBHOOK_SECRET_LENGTH} characters long.`);
  if (CONTROL_CHARS.test(s)) return refuse("The secret may not contain control characters.");
  return accept(s);
}

/** A list (array, or comma/space separated text) of known events, at least one; `farm` allows farm-only ones. */
export function checkWebhookEvents(v: unknown, opts: { farm: boolean }): Checked<WebhookEvent[]> {
  const items = Array.isArray(v) ? v : typeof v === "string" ? v.split(/[\s,]+/) : v === undefined || v === null ? [] : [v];
  const out: WebhookEvent[] = [];
  for (const item of items) {
    const s = trimmed(item);
    if (s === "") continue;
    if (!(WEBHOOK_EVENTS as readonly string[]).includes(s)) return refuse(`Unknown event ${quoted(s)}; choose from ${WEBHOOK_EVENTS.join(", ")}.`);
    if (!opts.farm && FARM_ONLY_EVENTS.includes(s as WebhookEvent)) return refuse(`${s} is sent by farm-wide webhooks only; an administrator can add one on the builders page.`);
    if (!out.includes(s as WebhookEvent)) out.push(s as WebhookEvent);
  }
  if (out.length === 0) return refuse("Choose at least one event for the webhook.");
  return accept(out);
}

export function checkWebhookFormat(v: unknown): Checked<WebhookFormat> {
  const s = trimmed(v) || "json";
  if (!(WEBHOOK_FORMATS as readonly string[]).includes(s)) return refuse(`The payload format is json (the default) or slack (a {"text": …} body for Slack and Mattermost).`);
  return accept(s as WebhookFormat);
}

/** An address mail can be sent to; "" means none (no mail for that user). */
export function checkEmail(v: unknown): Checked<string | null> {
  const s = trimmed(v);
  if (s === "") return accept(null);
  if (s.length > MAX_EMAIL_LENGTH) return refuse(`An e-mail address may be at most ${MAX_EMAIL_LENGTH} characters long.`);
  // Deliberately plain: one @, a dot in the domain, nothing a mail header could be split on.
  if (!/^[^@\s<>()",;:\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/.test(s)) {
    return refuse(`${quoted(s)} is not an e-mail address; give one such as jane@example.org.`);
  }
  return accept(s);
}

export function checkSubscriptionMode(v: unknown): Checked<SubscriptionMode> {
  const s = trimmed(v);
  if (!(SUBSCRIPTION_MODES as readonly string[]).includes(s)) {
    return refuse("Choose a subscription: all (every result), changes (failures and fixes), releases, or none.");
  }
  return accept(s as SubscriptionMode);
}

/**
 * Whether an IP address is one a webhook may not reach by default: loopback, private,
 * link-local, unique-local, carrier-grade NAT, unspecified, multicast or reserved — the
 * master's own network and its neighbours'.
 */
export function isNonPublicAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) return nonPublicV4(ip);
  if (v === 6) {
    const s = ip.toLowerCase();
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
    if (mapped) return nonPublicV4(mapped[1]!);
    if (s === "::" || s === "::1") return true;
    const first = parseInt(s.split(":")[0] || "0", 16);
    if ((first & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local
    if ((first & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
    if ((first & 0xff00) === 0xff00) return true; // multicast
    if (s.startsWith("64:ff9b:") || s.startsWith("2001:db8:")) return true;
    return false;
  }
  return true; // not an address at all: never a target
}

function nonPublicV4(ip: string): boolean {
  const [a, b] = ip.split(".").map(Number) as [number, number, number, number];
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224
  );
}

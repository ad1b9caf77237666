// The git URL of a project's live-build configuration: checked by the project form and API,
// the admin CLI, the build call's parameters and, against its own allowed schemes, the slave.
import { accept, CONTROL_CHARS, refuse, trimmed, type Checked } from "./checked.js";

/** Every transport lexbuilder can hand to git; ext::, fd:: and other remote helpers never. */
export const KNOWN_CONFIG_URL_SCHEMES: readonly string[] = ["https", "http", "git", "ssh", "file"];
/** What a deployment allows unless it says otherwise (file:// is for tests and demos). */
export const DEFAULT_CONFIG_URL_SCHEMES: readonly string[] = ["https", "http", "git", "ssh"];
export const MAX_CONFIG_URL_LENGTH = 2000;

const TRANSPORT_FORM = /^[A-Za-z][A-Za-z0-9+.-]*::/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
// git's scp-like ssh syntax, [user@]host:path; neither user nor host may look like an option.
const SCP_LIKE = /^(?:[A-Za-z0-9._][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9.-]*:[^\s:][^\s]*$/;

/** Starts with '-', or with its percent-encoding: git or ssh could read it as an option. */
function optionLike(part: string): boolean {
  return part.startsWith("-") || part.toLowerCase().startsWith("%2d");
}

/**
 * A URL git may clone: a scheme from `allowedSchemes` (an absolute path counts as file, scp-like
 * `user@host:path` as ssh), never an option, never a `transport::address` remote helper, no
 * spaces or control characters, no host or user that starts with a dash (CVE-2017-1000117).
 */
export function checkConfigUrl(v: unknown, allowedSchemes: readonly string[] = DEFAULT_CONFIG_URL_SCHEMES): Checked<string> {
  const s = trimmed(v);
  const allowed = allowedSchemes.map((x) => x.toLowerCase());
  const list = allowed.join(", ");
  if (s === "") return refuse("Give the URL of the git repository that holds the live-build configuration.");
  if (s.length > MAX_CONFIG_URL_LENGTH) return refuse(`The configuration URL may be at most ${MAX_CONFIG_URL_LENGTH} characters long.`);
  if (CONTROL_CHARS.test(s) || /\s/.test(s)) return refuse("The configuration URL may not contain spaces or control characters.");
  if (s.startsWith("-")) return refuse("The configuration URL may not start with a dash; give a URL such as https://example.org/config.git.");
  if (TRANSPORT_FORM.test(s)) return refuse(`Remote-helper transports such as ext:: and fd:: are not allowed; use a URL with one of: ${list}.`);
  const mustStart = `The configuration URL must start with one of ${allowed.map((x) => x + "://").join(", ")}.`;

  const scheme = SCHEME.exec(s)?.[1]?.toLowerCase();
  if (!scheme) {
    if (s.startsWith("/")) return allowed.includes("file") ? accept(s) : refuse(mustStart);
    if (allowed.includes("ssh") && SCP_LIKE.test(s)) return accept(s);
    return refuse(mustStart);
  }
  if (!allowed.includes(scheme)) return refuse(`The scheme ${scheme}:// is not allowed for configuration URLs; use one of: ${list}.`);
  // git reads a file:// URL as a local path (whatever stands before it fails the clone).
  if (scheme === "file") {
    const rest = s.slice("file://".length);
    const path = rest.includes("/") ? rest.slice(rest.indexOf("/")) : "";
    return path.length > 1 ? accept(s) : refuse("A file:// configuration URL needs a path to a repository.");
  }
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return refuse("The configuration URL is not a valid URL; check it for typing mistakes.");
  }
  if (url.hostname === "") return refuse("The configuration URL needs a host name, as in https://example.org/config.git.");
  if (optionLike(url.hostname) || optionLike(url.username)) return refuse("The host and user name of the configuration URL may not start with a dash.");
  return accept(s);
}

/** A list of allowed schemes from a setting such as LEXBUILDER_SLAVE_ALLOWED_SCHEMES. */
export function checkSchemeList(schemes: readonly string[], setting: string): Checked<string[]> {
  const out = schemes.map((s) => s.trim().toLowerCase());
  const unknown = out.find((s) => !KNOWN_CONFIG_URL_SCHEMES.includes(s));
  if (unknown !== undefined) return refuse(`${setting} may only name ${KNOWN_CONFIG_URL_SCHEMES.join(", ")}, not "${unknown}".`);
  if (out.length === 0) return refuse(`${setting} must name at least one scheme, for example https.`);
  return accept(out);
}

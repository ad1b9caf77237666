// A builder as an admin registers it: the slave's base URL and the token it printed.
import { accept, CONTROL_CHARS, refuse, text, trimmed, type Checked } from "./checked.js";

const MAX_BUILDER_URL_LENGTH = 500;
const MAX_TOKEN_LENGTH = 1000;
const MAX_REASON_LENGTH = 500;

/** http(s)://host[:port][/path], without credentials, query or fragment; trailing slashes dropped. */
export function checkBuilderUrl(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give the builder's URL, as in http://builder1.example.org:8221.");
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return refuse("The builder URL is not a valid URL; write it as http://host:8221.");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return refuse("The builder URL must start with http:// or https://.");
  if (url.hostname === "") return refuse("The builder URL needs a host name.");
  if (url.username || url.password) return refuse("Put the builder's token in the token field, not in the URL.");
  if (url.search || url.hash) return refuse("The builder URL may not have a query or fragment; give only scheme, host and port.");
  if (s.length > MAX_BUILDER_URL_LENGTH) return refuse(`The builder URL may be at most ${MAX_BUILDER_URL_LENGTH} characters long.`);
  return accept(s.replace(/\/+$/, ""));
}

export function checkBuilderToken(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Paste the builder's token (lexbuilder-slave token prints it on the builder).");
  if (s.length > MAX_TOKEN_LENGTH || CONTROL_CHARS.test(s) || /\s/.test(s)) {
    return refuse("The token may not contain spaces or control characters; paste exactly what lexbuilder-slave token printed.");
  }
  return accept(s);
}

/** Why a builder is disabled (shown in the console). */
export function checkDisableReason(v: unknown): Checked<string> {
  const s = (text(v) ?? "").trim();
  if (s === "" || s.length > MAX_REASON_LENGTH || CONTROL_CHARS.test(s)) return refuse(`Give a reason of 1 to ${MAX_REASON_LENGTH} characters, on one line.`);
  return accept(s);
}

// Pure validators for what people type: project, builder and user forms, API bodies, milestone
// names and config refs. Each returns the cleaned value or, per field, a sentence that says
// what is wrong and what to do. They accept form strings as well as JSON values.
import cron from "node-cron";
import { ROLES, type Role } from "./states.js";
import { ScheduleError, validateSchedule } from "./schedule.js";
import type { ProjectInput } from "./db/projects.js";
import { ENV_NAME_PATTERN, MAX_ENV_VALUE_LENGTH, MAX_ENV_VARIABLES, RESERVED_ENV_NAMES, RESERVED_ENV_PREFIXES } from "./protocol/validate.js";

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: Record<string, string> };

/** Architectures lexbuilder knows how to name (Debian's release architectures and riscv64). */
export const KNOWN_ARCHITECTURES = ["amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "riscv64", "s390x"] as const;
export const DEFAULT_CONFIG_URL_SCHEMES: readonly string[] = ["https", "http", "git", "ssh"];

export const PROJECT_SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const BUILDER_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{0,62}$/;
export const USER_NAME_PATTERN = /^[a-z][a-z0-9_.-]{1,31}$/;
const SUITE_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{0,63}$/;
const DAILY_TIME_PATTERN = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
export const MIN_PASSWORD_LENGTH = 10;
const MAX_PASSWORD_LENGTH = 1024;
const MAX_TITLE = 200;
const MAX_DESCRIPTION = 10_000;
const MAX_URL = 2000;
const MAX_REF = 250;
const MAX_MILESTONE = 100;
const MAX_KEEP = 100_000;
const MAX_TOKEN = 1000;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

type Raw = Record<string, unknown>;

/** Form values arrive as strings; JSON ones as numbers, booleans, null. */
function str(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}
function present(raw: Raw, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(raw, key) && raw[key] !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Single fields. Each returns {value} or {error}.

type Field<T> = { value: T; error?: undefined } | { value?: undefined; error: string };

export function checkProjectName(v: unknown): Field<string> {
  const s = str(v)?.trim() ?? "";
  if (s === "") return { error: "Give the project a name." };
  if (s.length > 63) return { error: "The name may be at most 63 characters long." };
  if (!PROJECT_SLUG_PATTERN.test(s)) return { error: "The name may use lower-case letters, digits and dashes, and must start with a letter or digit." };
  return { value: s };
}

/**
 * A git URL lexbuilder may hand to `git clone`: a scheme from `allowedSchemes` (or, with ssh
 * allowed, scp-like `user@host:path`), never an option (leading '-'), never a remote-helper
 * transport (`ext::`, `fd::`, any `name::`), no whitespace or control characters.
 */
export function checkConfigUrl(v: unknown, allowedSchemes: readonly string[] = DEFAULT_CONFIG_URL_SCHEMES): Field<string> {
  const s = str(v)?.trim() ?? "";
  const allowed = allowedSchemes.map((x) => x.toLowerCase());
  const list = allowed.join(", ");
  if (s === "") return { error: "Give the URL of the git repository that holds the live-build configuration." };
  if (s.length > MAX_URL) return { error: `The configuration URL may be at most ${MAX_URL} characters long.` };
  if (CONTROL.test(s) || /\s/.test(s)) return { error: "The configuration URL may not contain spaces or control characters." };
  if (s.startsWith("-")) return { error: "The configuration URL may not start with a dash; give a URL such as https://example.org/config.git." };
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(s)) {
    return { error: `Remote-helper transports such as ext:: and fd:: are not allowed; use a URL with one of: ${list}.` };
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(s)?.[1]?.toLowerCase();
  if (!scheme) {
    // scp-like syntax is ssh.
    if (allowed.includes("ssh") && /^[A-Za-z0-9._][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:[^\s:][^\s]*$/.test(s)) return { value: s };
    return { error: `The configuration URL must start with one of ${allowed.map((x) => x + "://").join(", ")}.` };
  }
  if (!allowed.includes(scheme)) return { error: `The scheme ${scheme}:// is not allowed for configuration URLs; use one of: ${list}.` };
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return { error: "The configuration URL is not a valid URL; check it for typing mistakes." };
  }
  if (scheme !== "file" && url.hostname === "") return { error: "The configuration URL needs a host name, as in https://example.org/config.git." };
  // A host or user that looks like an option could reach ssh as one (CVE-2017-1000117).
  if (url.hostname.startsWith("-") || url.username.startsWith("-") || url.username.toLowerCase().startsWith("%2d")) {
    return { error: "The host and user name of the configuration URL may not start with a dash." };
  }
  if (scheme === "file" && url.pathname.length <= 1) return { error: "A file:// configuration URL needs a path to a repository." };
  return { value: s };
}

/** A branch, tag or commit id, by git's ref-name rules (git check-ref-format), and no leading dash. */
export function checkConfigRef(v: unknown): Field<string> {
  const s = str(v)?.trim() ?? "";
  const rules = "A branch, tag or commit may use letters, digits and / . _ -, must not start with a dash or dot, and must not contain '..', '@{', '//' or any of ~ ^ : ? * [ \\.";
  if (s === "") return { error: "Give a branch, tag or commit to build (for example main)." };
  if (s.length > MAX_REF) return { error: `A branch, tag or commit name may be at most ${MAX_REF} characters long.` };
  if (s.startsWith("-")) return { error: "A branch, tag or commit name may not start with a dash." };
  if (CONTROL.test(s) || /\s/.test(s) || /[~^:?*[\\]/.test(s)) return { error: rules };
  if (s === "@" || s.includes("..") || s.includes("@{") || s.includes("//")) return { error: rules };
  if (s.startsWith("/") || s.endsWith("/") || s.endsWith(".") || s.endsWith(".lock")) {
    return { error: "A branch, tag or commit name may not begin or end with '/', or end with '.' or '.lock'." };
  }
  if (s.split("/").some((part) => part.startsWith(".") || part.endsWith(".lock"))) {
    return { error: "No part of a branch or tag name may start with '.' or end with '.lock'." };
  }
  return { value: s };
}

export function checkArchitecture(v: unknown): Field<string> {
  const s = str(v)?.trim() ?? "";
  if (s === "") return { error: `Choose an architecture: ${KNOWN_ARCHITECTURES.join(", ")}.` };
  if (!(KNOWN_ARCHITECTURES as readonly string[]).includes(s)) {
    return { error: `${JSON.stringify(s.slice(0, 40))} is not an architecture lexbuilder knows; choose one of ${KNOWN_ARCHITECTURES.join(", ")}.` };
  }
  return { value: s };
}

export function checkSuite(v: unknown): Field<string> {
  const s = str(v)?.trim() ?? "";
  if (s === "") return { error: "Give the Debian suite to build (for example trixie)." };
  if (!SUITE_NAME_PATTERN.test(s)) return { error: "The suite may use lower-case letters, digits, dots and dashes (for example trixie or bookworm)." };
  return { value: s };
}

/**
 * Extra environment variables: `NAME=value` lines (blank lines and # comments skipped) or an
 * object. Names are upper-case identifiers the builder does not set itself.
 */
export function parseExtraEnv(v: unknown): Field<Record<string, string>> {
  const pairs: [string, unknown, string][] = [];
  if (v === undefined || v === null || v === "") return { value: {} };
  if (typeof v === "string") {
    const lines = v.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === "" || line.startsWith("#")) continue;
      const eq = line.indexOf("=");
      if (eq <= 0) return { error: `Line ${i + 1} of the environment is not NAME=value; write one variable per line, as in MIRROR=http://deb.debian.org/debian.` };
      pairs.push([line.slice(0, eq).trim(), line.slice(eq + 1), `line ${i + 1}`]);
    }
  } else if (typeof v === "object" && !Array.isArray(v)) {
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) pairs.push([k, val, k]);
  } else {
    return { error: "The environment must be NAME=value lines." };
  }
  if (pairs.length > MAX_ENV_VARIABLES) return { error: `At most ${MAX_ENV_VARIABLES} environment variables are allowed.` };
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) {
    if (!ENV_NAME_PATTERN.test(name) || name.length > 128) {
      return { error: `${JSON.stringify(name.slice(0, 40))} is not a valid variable name; use upper-case letters, digits and _, not starting with a digit.` };
    }
    if (RESERVED_ENV_NAMES.has(name) || RESERVED_ENV_PREFIXES.some((p) => name.startsWith(p))) {
      return { error: `${name} is set by the builder itself or is not allowed; choose another name.` };
    }
    if (Object.prototype.hasOwnProperty.call(out, name)) return { error: `${name} is given twice; keep one.` };
    if (typeof value !== "string") return { error: `The value of ${name} must be text.` };
    if (value.length > MAX_ENV_VALUE_LENGTH) return { error: `The value of ${name} may be at most ${MAX_ENV_VALUE_LENGTH} characters long.` };
    if (/[\u0000\r\n]/.test(value)) return { error: `The value of ${name} may not contain line breaks or NUL characters.` };
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return { value: out };
}

function checkInt(v: unknown, label: string, min: number, max: number): Field<number> {
  const s = typeof v === "number" ? String(v) : (str(v)?.trim() ?? "");
  if (!/^-?[0-9]+$/.test(s)) return { error: `${label} must be a whole number between ${min} and ${max}.` };
  const n = Number(s);
  if (n < min || n > max) return { error: `${label} must be a whole number between ${min} and ${max}.` };
  return { value: n };
}

/** Empty means "keep forever" (null). */
function checkKeep(v: unknown, label: string): Field<number | null> {
  const s = typeof v === "number" ? String(v) : (str(v)?.trim() ?? "");
  if (s === "") return { value: null };
  if (!/^[0-9]+$/.test(s) || Number(s) < 1 || Number(s) > MAX_KEEP) {
    return { error: `${label} must be a whole number of at least 1, or empty to keep everything.` };
  }
  return { value: Number(s) };
}

function checkBool(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  const s = str(v)?.trim().toLowerCase() ?? "";
  return s === "on" || s === "true" || s === "1" || s === "yes";
}

export function checkDailyTime(v: unknown): Field<string | null> {
  const s = str(v)?.trim() ?? "";
  if (s === "") return { value: null };
  const m = /^([0-9]{1,2}):([0-9]{2})(?::00)?$/.exec(s);
  const hhmm = m ? `${m[1]!.padStart(2, "0")}:${m[2]}` : s;
  if (!DAILY_TIME_PATTERN.test(hhmm)) return { error: "The daily time must be HH:MM on a 24-hour clock, for example 02:30." };
  return { value: hhmm };
}

export function checkCron(v: unknown): Field<string | null> {
  const s = (str(v) ?? "").trim().replace(/\s+/g, " ");
  if (s === "") return { value: null };
  if (s.length > 100) return { error: "The cron expression may be at most 100 characters long." };
  if (s.split(" ").length !== 5) {
    return { error: "The cron expression needs exactly five fields: minute hour day-of-month month day-of-week (for example 30 2 * * 1-5)." };
  }
  if (!cron.validate(s)) return { error: "The cron expression is not valid; check each of its five fields (for example 30 2 * * 1-5)." };
  // The master's scheduler understands plain five-field cron only (no L, W or #): accept only
  // what it can run, so a saved schedule never silently fails to fire.
  try {
    validateSchedule({ kind: "cron", expression: s }, "UTC");
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    return { error: `The cron expression cannot be scheduled: ${err.message}` };
  }
  return { value: s };
}

export function checkTimeZone(v: unknown): Field<string> {
  const s = str(v)?.trim() ?? "";
  if (s === "") return { value: "UTC" };
  if (s.length > 64 || CONTROL.test(s)) return { error: "The time zone must be an IANA name such as Europe/Berlin or UTC." };
  try {
    new Intl.DateTimeFormat("en", { timeZone: s });
  } catch {
    return { error: `${JSON.stringify(s)} is not a time zone; use an IANA name such as Europe/Berlin or UTC.` };
  }
  return { value: s };
}

export function checkMilestone(v: unknown): Field<string> {
  const s = str(v)?.trim() ?? "";
  if (s === "") return { error: "Give the milestone a name (for example 1.0 or beta-2)." };
  if (s.length > MAX_MILESTONE) return { error: `A milestone name may be at most ${MAX_MILESTONE} characters long.` };
  if (CONTROL.test(s)) return { error: "A milestone name may not contain control characters." };
  return { value: s };
}

// ---------------------------------------------------------------------------------------------
// Whole inputs.

function collect<T>(errors: Record<string, string>, value: T): Validated<T> {
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, value };
}

export interface ProjectValidationOptions {
  /** Only check (and return) the fields present: for updates. */
  partial?: boolean;
  /** Allowed config URL schemes (default https, http, git, ssh). */
  allowedSchemes?: readonly string[];
}

/**
 * A project form or API body → ProjectInput. Field names are ProjectInput's (a form posts the
 * same names). extraEnv may be NAME=value lines or an object; empty keepLast/keepDays,
 * scheduleDailyAt or scheduleCron mean none. A daily time and a cron expression exclude each
 * other.
 */
export function validateProjectInput(raw: Raw, options: ProjectValidationOptions & { partial: true }): Validated<Partial<ProjectInput>>;
export function validateProjectInput(raw: Raw, options?: ProjectValidationOptions): Validated<ProjectInput>;
export function validateProjectInput(raw: Raw, options: ProjectValidationOptions = {}): Validated<Partial<ProjectInput>> {
  const partial = options.partial === true;
  const errors: Record<string, string> = {};
  const out: Partial<ProjectInput> = {};
  const want = (key: string) => !partial || present(raw, key);
  const take = <K extends keyof ProjectInput>(key: K, f: Field<ProjectInput[K]>) => {
    if (f.error !== undefined) errors[key] = f.error;
    else out[key] = f.value;
  };

  if (want("name")) take("name", checkProjectName(raw.name));
  if (want("title")) {
    const t = str(raw.title)?.trim() ?? "";
    if (t.length > MAX_TITLE) errors.title = `The title may be at most ${MAX_TITLE} characters long.`;
    else if (CONTROL.test(t)) errors.title = "The title may not contain control characters.";
    else out.title = t;
  }
  if (want("description")) {
    const d = (str(raw.description) ?? "").replace(/\r\n/g, "\n");
    if (d.length > MAX_DESCRIPTION) errors.description = `The description may be at most ${MAX_DESCRIPTION} characters long.`;
    else if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(d)) errors.description = "The description may not contain control characters.";
    else out.description = d;
  }
  if (want("configUrl")) take("configUrl", checkConfigUrl(raw.configUrl, options.allowedSchemes));
  if (want("configRef")) {
    if (!partial && (str(raw.configRef)?.trim() ?? "") === "") out.configRef = "main";
    else take("configRef", checkConfigRef(raw.configRef));
  }
  if (want("architecture")) take("architecture", checkArchitecture(raw.architecture));
  if (want("suite")) {
    if (!partial && (str(raw.suite)?.trim() ?? "") === "") out.suite = "trixie";
    else take("suite", checkSuite(raw.suite));
  }
  if (want("extraEnv")) take("extraEnv", parseExtraEnv(raw.extraEnv));
  if (want("priority")) {
    if (!partial && (str(raw.priority)?.trim() ?? "") === "") out.priority = 0;
    else take("priority", checkInt(raw.priority, "The priority", -1000, 1000));
  }
  if (want("private")) out.private = checkBool(raw.private);
  if (present(raw, "active")) out.active = checkBool(raw.active);
  if (want("scheduleDailyAt")) take("scheduleDailyAt", checkDailyTime(raw.scheduleDailyAt));
  if (want("scheduleCron")) take("scheduleCron", checkCron(raw.scheduleCron));
  if (out.scheduleDailyAt && out.scheduleCron) {
    errors.scheduleCron = "Give either a daily time or a cron expression, not both.";
  }
  if (want("scheduleTz")) take("scheduleTz", checkTimeZone(raw.scheduleTz));
  if (want("keepLast")) take("keepLast", checkKeep(raw.keepLast, "Keep last"));
  if (want("keepDays")) take("keepDays", checkKeep(raw.keepDays, "Keep days"));
  return collect(errors, out);
}

export interface BuilderInput {
  name: string;
  url: string;
  token: string;
}

/** A builder form: name, the slave's http(s) URL with a host, and its token. */
export function validateBuilderInput(raw: Raw): Validated<BuilderInput> {
  const errors: Record<string, string> = {};
  const name = str(raw.name)?.trim() ?? "";
  if (name === "") errors.name = "Give the builder a name.";
  else if (!BUILDER_NAME_PATTERN.test(name)) {
    errors.name = "The builder name may use lower-case letters, digits, dots and dashes, and must start with a letter or digit.";
  }
  const urlText = str(raw.url)?.trim() ?? "";
  if (urlText === "") errors.url = "Give the builder's URL, as in http://builder1.example.org:8221.";
  else {
    let url: URL | null = null;
    try {
      url = new URL(urlText);
    } catch {
      errors.url = "The builder URL is not a valid URL; write it as http://host:8221.";
    }
    if (url) {
      if (url.protocol !== "http:" && url.protocol !== "https:") errors.url = "The builder URL must start with http:// or https://.";
      else if (url.hostname === "") errors.url = "The builder URL needs a host name.";
      else if (url.username || url.password) errors.url = "Put the builder's token in the token field, not in the URL.";
      else if (url.search || url.hash) errors.url = "The builder URL may not have a query or fragment; give only scheme, host and port.";
      else if (urlText.length > 500) errors.url = "The builder URL may be at most 500 characters long.";
    }
  }
  const token = str(raw.token)?.trim() ?? "";
  if (token === "") errors.token = "Paste the builder's token (lexbuilder-slave token prints it on the builder).";
  else if (token.length > MAX_TOKEN || CONTROL.test(token) || /\s/.test(token)) {
    errors.token = "The token may not contain spaces or control characters; paste exactly what lexbuilder-slave token printed.";
  }
  return collect(errors, { name, url: urlText.replace(/\/+$/, ""), token });
}

export interface UserInput {
  name: string;
  role: Role;
  password: string | null;
}

/**
 * A user form. The password is required unless `passwordOptional` (e.g. an admin editing a
 * role); an empty optional password means "unchanged" (null).
 */
export function validateUserInput(raw: Raw, options: { passwordOptional?: boolean } = {}): Validated<UserInput> {
  const errors: Record<string, string> = {};
  const name = str(raw.name)?.trim() ?? "";
  if (name === "") errors.name = "Give the user a name.";
  else if (!USER_NAME_PATTERN.test(name)) {
    errors.name = "The user name must be 2 to 32 characters: lower-case letters, digits and _ . -, starting with a letter.";
  }
  const role = str(raw.role)?.trim() ?? "";
  if (!(ROLES as readonly string[]).includes(role)) errors.role = `Choose a role: ${ROLES.join(", ")}.`;
  const password = str(raw.password) ?? "";
  let pw: string | null = password;
  if (password === "" && options.passwordOptional) pw = null;
  else if (password.length < MIN_PASSWORD_LENGTH) errors.password = `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`;
  else if (password.length > MAX_PASSWORD_LENGTH) errors.password = `The password may be at most ${MAX_PASSWORD_LENGTH} characters long.`;
  return collect(errors, { name, role: role as Role, password: pw });
}

/** A password on its own (change-password form). */
export function validatePassword(v: unknown): Validated<string> {
  const p = str(v) ?? "";
  if (p.length < MIN_PASSWORD_LENGTH) return { ok: false, errors: { password: `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.` } };
  if (p.length > MAX_PASSWORD_LENGTH) return { ok: false, errors: { password: `The password may be at most ${MAX_PASSWORD_LENGTH} characters long.` } };
  return { ok: true, value: p };
}

export function validateMilestone(v: unknown): Validated<string> {
  const f = checkMilestone(v);
  return f.error !== undefined ? { ok: false, errors: { milestone: f.error } } : { ok: true, value: f.value };
}

export function validateConfigRef(v: unknown): Validated<string> {
  const f = checkConfigRef(v);
  return f.error !== undefined ? { ok: false, errors: { configRef: f.error } } : { ok: true, value: f.value };
}

/**
 * A build request body ({milestone?, configRef?}): empty fields mean "none" / "the project's
 * default ref".
 */
export function validateBuildRequest(raw: Raw): Validated<{ milestone: string | null; configRef: string | null }> {
  const errors: Record<string, string> = {};
  let milestone: string | null = null;
  let configRef: string | null = null;
  if ((str(raw.milestone)?.trim() ?? "") !== "") {
    const f = checkMilestone(raw.milestone);
    if (f.error !== undefined) errors.milestone = f.error;
    else milestone = f.value;
  }
  if ((str(raw.configRef)?.trim() ?? "") !== "") {
    const f = checkConfigRef(raw.configRef);
    if (f.error !== undefined) errors.configRef = f.error;
    else configRef = f.value;
  }
  return collect(errors, { milestone, configRef });
}

// Strict checks of XML-RPC method parameters. Every refusal is an RpcFault(-32602) whose
// faultString is a sentence saying what was wrong and what is expected.
import { COOKIE_PATTERN, FaultCode, MAX_STATUS_WAIT_SECONDS, RpcFault, type BuildArgs } from "./types.js";

/** Thrown by method code for bad arguments; the server answers it with fault -32602. */
export class ValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ValidationError";
  }
}

function invalid(sentence: string): RpcFault {
  return new RpcFault(FaultCode.INVALID_PARAMS, sentence);
}

/** Smallest and largest build timeout a caller may ask for, seconds. */
export const MIN_BUILD_TIMEOUT_SECONDS = 60;
export const MAX_BUILD_TIMEOUT_SECONDS = 172_800;
export const MAX_CONFIG_URL_LENGTH = 2000;
export const MAX_CONFIG_REF_LENGTH = 250;
export const MAX_ENV_VARIABLES = 100;
export const MAX_ENV_VALUE_LENGTH = 4096;

export const PROJECT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
/** Debian architecture names: amd64, arm64, i386, ppc64el, s390x, armhf, riscv64 … */
export const ARCHITECTURE_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const SUITE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]*$/;

/** Variables the slave sets itself or that would change how the build runs. */
export const RESERVED_ENV_NAMES: ReadonlySet<string> = new Set([
  "PROJECT", "ARCH", "SUITE", "NOW", "SOURCE_DATE_EPOCH",
  "PATH", "HOME", "SHELL", "USER", "LOGNAME", "PWD", "OLDPWD", "IFS", "ENV", "BASH_ENV", "CDPATH",
  "PS4", "SHELLOPTS", "BASHOPTS", "GLOBIGNORE", "PROMPT_COMMAND", "TMPDIR",
  "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "NODE_OPTIONS", "PYTHONPATH", "PERL5LIB", "PERL5OPT",
  "DEBIAN_FRONTEND",
]);
/** Prefixes reserved the same way (dynamic loader, git, our own settings). */
export const RESERVED_ENV_PREFIXES: readonly string[] = ["LD_", "GIT_", "LEXBUILDER_", "BASH_FUNC_"];

const BUILD_ARG_KEYS = ["project", "configUrl", "configRef", "architecture", "suite", "env", "timeoutSeconds"] as const;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function kindOf(value: unknown): string {
  if (value === null) return "nil";
  if (Array.isArray(value)) return "an array";
  if (Buffer.isBuffer(value)) return "base64 data";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
      return Number.isInteger(value) ? "an integer" : "a number";
    case "boolean":
      return "a boolean";
    case "object":
      return "a struct";
    default:
      return typeof value;
  }
}

function isStruct(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

function quote(value: string, max = 60): string {
  const shown = value.length > max ? value.slice(0, max) + "…" : value;
  return JSON.stringify(shown);
}

/** "The build call", or "This call" when the method is not named. */
function callName(method: string): string {
  return method ? `The ${method} call` : "This call";
}

function expectCount(method: string, params: unknown[], min: number, max: number, what: string): void {
  if (!Array.isArray(params)) throw invalid(`${callName(method)} expects a list of arguments.`);
  if (params.length < min || params.length > max) {
    throw invalid(`${callName(method)} expects ${what}, but got ${params.length} argument${params.length === 1 ? "" : "s"}.`);
  }
}

function checkCookie(method: string, value: unknown): string {
  if (typeof value !== "string") throw invalid(`${callName(method)} expects the build cookie as a string, not ${kindOf(value)}.`);
  if (!COOKIE_PATTERN.test(value)) {
    throw invalid(`${callName(method)} got the cookie ${quote(value)}; a cookie looks like "<build id>-<attempt>", for example "42-1".`);
  }
  return value;
}

function checkName(field: string, value: unknown, pattern: RegExp, example: string): string {
  if (typeof value !== "string") throw invalid(`The build call needs ${field} as a string, not ${kindOf(value)}.`);
  if (!pattern.test(value)) {
    throw invalid(`The build call got the ${field} ${quote(value)}; it must be letters, digits and . _ - (for example "${example}").`);
  }
  return value;
}

function checkConfigUrl(value: unknown): string {
  if (typeof value !== "string") throw invalid(`The build call needs configUrl as a string, not ${kindOf(value)}.`);
  if (value.length === 0) throw invalid("The build call needs a configUrl, but it is empty.");
  if (value.length > MAX_CONFIG_URL_LENGTH) throw invalid(`The build call got a configUrl of ${value.length} characters; at most ${MAX_CONFIG_URL_LENGTH} are allowed.`);
  if (CONTROL_CHARS.test(value) || /\s/.test(value)) throw invalid("The build call got a configUrl containing spaces or control characters; give a plain URL.");
  if (value.startsWith("-")) throw invalid(`The build call got the configUrl ${quote(value)}, which looks like a command-line option; give a URL.`);
  return value;
}

function checkConfigRef(value: unknown): string {
  if (typeof value !== "string") throw invalid(`The build call needs configRef as a string, not ${kindOf(value)}.`);
  if (value.length === 0) throw invalid("The build call got an empty configRef; leave it out to build the default branch.");
  if (value.length > MAX_CONFIG_REF_LENGTH) throw invalid(`The build call got a configRef of ${value.length} characters; at most ${MAX_CONFIG_REF_LENGTH} are allowed.`);
  if (value.startsWith("-")) throw invalid(`The build call got the configRef ${quote(value)}, which looks like a command-line option; give a branch, tag or commit.`);
  if (CONTROL_CHARS.test(value) || /\s/.test(value)) throw invalid("The build call got a configRef containing spaces or control characters; give a branch, tag or commit.");
  return value;
}

function checkEnv(value: unknown): Record<string, string> {
  if (!isStruct(value)) throw invalid(`The build call needs env as a struct of names to strings, not ${kindOf(value)}.`);
  const names = Object.keys(value);
  if (names.length > MAX_ENV_VARIABLES) throw invalid(`The build call got ${names.length} environment variables; at most ${MAX_ENV_VARIABLES} are allowed.`);
  const out: Record<string, string> = {};
  for (const name of names) {
    if (!ENV_NAME_PATTERN.test(name) || name.length > 128) {
      throw invalid(`The build call got the environment variable name ${quote(name)}; names are upper-case letters, digits and _, not starting with a digit.`);
    }
    if (RESERVED_ENV_NAMES.has(name) || RESERVED_ENV_PREFIXES.some((p) => name.startsWith(p))) {
      throw invalid(`The build call got the environment variable ${name}, which the builder sets itself or does not allow; choose another name.`);
    }
    const v = value[name];
    if (typeof v !== "string") throw invalid(`The build call needs the environment variable ${name} as a string, not ${kindOf(v)}.`);
    if (v.length > MAX_ENV_VALUE_LENGTH) throw invalid(`The build call got ${v.length} characters for ${name}; at most ${MAX_ENV_VALUE_LENGTH} are allowed.`);
    if (v.includes("\u0000")) throw invalid(`The build call got a NUL character in ${name}, which an environment variable cannot hold.`);
    Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function checkTimeout(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw invalid(`The build call needs timeoutSeconds as a whole number of seconds, not ${kindOf(value)}.`);
  }
  if (value < MIN_BUILD_TIMEOUT_SECONDS || value > MAX_BUILD_TIMEOUT_SECONDS) {
    throw invalid(`The build call got timeoutSeconds ${value}; it must be between ${MIN_BUILD_TIMEOUT_SECONDS} and ${MAX_BUILD_TIMEOUT_SECONDS}.`);
  }
  return value;
}

/** build(cookie, {project, configUrl, configRef?, architecture, suite?, env?, timeoutSeconds?}). Optional members may be absent or nil. */
export function parseBuildParams(params: unknown[]): [cookie: string, args: BuildArgs] {
  expectCount("build", params, 2, 2, "2 arguments (the cookie and a struct of build arguments)");
  const cookie = checkCookie("build", params[0]);
  const raw = params[1];
  if (!isStruct(raw)) throw invalid(`The build call expects its second argument to be a struct of build arguments, not ${kindOf(raw)}.`);
  const unknown = Object.keys(raw).filter((k) => !(BUILD_ARG_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw invalid(`The build call does not know the argument${unknown.length === 1 ? "" : "s"} ${unknown.slice(0, 5).map((k) => quote(k, 40)).join(", ")}; it takes ${BUILD_ARG_KEYS.join(", ")}.`);
  }
  const given = (key: string) => Object.hasOwn(raw, key) && raw[key] !== null;
  if (!given("project")) throw invalid("The build call needs the project name (project).");
  if (!given("configUrl")) throw invalid("The build call needs the configuration's git URL (configUrl).");
  if (!given("architecture")) throw invalid("The build call needs the architecture to build for (architecture).");
  const args: BuildArgs = {
    project: checkName("project", raw.project, PROJECT_NAME_PATTERN, "debian-live"),
    configUrl: checkConfigUrl(raw.configUrl),
    architecture: checkName("architecture", raw.architecture, ARCHITECTURE_PATTERN, "amd64"),
  };
  if (given("configRef")) args.configRef = checkConfigRef(raw.configRef);
  if (given("suite")) args.suite = checkName("suite", raw.suite, SUITE_PATTERN, "trixie");
  if (given("env")) args.env = checkEnv(raw.env);
  if (given("timeoutSeconds")) args.timeoutSeconds = checkTimeout(raw.timeoutSeconds);
  return [cookie, args];
}

/** abort(cookie) and clean(cookie). */
export function parseCookieParam(params: unknown[], method = ""): string {
  expectCount(method, params, 1, 1, "1 argument (the build cookie)");
  return checkCookie(method, params[0]);
}

export interface StatusParams {
  /** The version the caller already knows; absent: answer at once. */
  knownVersion?: number;
  /** How long to wait for a newer version, seconds (0 … MAX_STATUS_WAIT_SECONDS). */
  waitSeconds: number;
}

/**
 * status(), status(knownVersion), status(knownVersion, waitSeconds). With a knownVersion and no
 * waitSeconds the wait is MAX_STATUS_WAIT_SECONDS; longer waits are clamped to it; without a
 * knownVersion the wait is 0. A nil knownVersion counts as absent.
 */
export function parseStatusParams(params: unknown[]): StatusParams {
  expectCount("status", params, 0, 2, "at most 2 arguments (the known version and the seconds to wait)");
  const [known, wait] = params;
  if (known === undefined || known === null) {
    if (wait !== undefined && wait !== null) checkWait(wait);
    return { waitSeconds: 0 };
  }
  if (typeof known !== "number" || !Number.isInteger(known) || known < 0) {
    throw invalid(`The status call expects the known version as a whole number of at least 0, not ${typeof known === "number" ? known : kindOf(known)}.`);
  }
  const waitSeconds = wait === undefined || wait === null ? MAX_STATUS_WAIT_SECONDS : checkWait(wait);
  return { knownVersion: known, waitSeconds };
}

function checkWait(wait: unknown): number {
  if (typeof wait !== "number" || !Number.isFinite(wait) || wait < 0) {
    throw invalid(`The status call expects the seconds to wait as a number of at least 0, not ${typeof wait === "number" ? wait : kindOf(wait)}.`);
  }
  return Math.min(wait, MAX_STATUS_WAIT_SECONDS);
}

/** info() and other methods without arguments. */
export function noParams(params: unknown[], method = ""): void {
  expectCount(method, params, 0, 0, "no arguments");
}

// ---------------------------------------------------------------------------------------------
// Results: what the client accepts from a builder. A builder is another machine; the master
// must not act on a result of the wrong shape (a state it does not know, a file named
// "../x"). Extra members are allowed (a newer builder may add some); nil optional members
// are dropped. Each check returns the cleaned result or throws ResultShapeError.

/** A result that does not have the shape the protocol gives it. */
export class ResultShapeError extends Error {
  constructor(readonly method: string, readonly problem: string) {
    super(`The answer to ${method} does not have the protocol's shape: ${problem}.`);
    this.name = "ResultShapeError";
  }
}

/** Result file names: one path component, no leading dot (DESIGN: live-image-<arch>.* and build.log). */
export const RESULT_FILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/;
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const SLAVE_STATES = ["IDLE", "BUILDING", "ABORTING", "WAITING"];
const BUILD_RESULTS = ["OK", "BUILDFAIL", "CONFIGFAIL", "BUILDERFAIL", "ABORTED"];
const FILE_KINDS = ["image", "manifest", "files", "contents", "log", "other"];

type Shape = (value: unknown, path: string, method: string) => unknown;

const bad = (method: string, path: string, what: string, value: unknown): never => {
  const given = typeof value === "string" ? JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value) : kindOf(value);
  throw new ResultShapeError(method, `${path || "the result"} should be ${what}, not ${given}`);
};
const str: Shape = (v, p, m) => (typeof v === "string" ? v : bad(m, p, "a string", v));
const bool: Shape = (v, p, m) => (typeof v === "boolean" ? v : bad(m, p, "a boolean", v));
const decimal: Shape = (v, p, m) => (typeof v === "string" && DECIMAL.test(v) ? v : bad(m, p, "a decimal string", v));
const version: Shape = (v, p, m) => (typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : bad(m, p, "a whole number", v));
const oneOf = (allowed: readonly string[]): Shape => (v, p, m) =>
  typeof v === "string" && allowed.includes(v) ? v : bad(m, p, `one of ${allowed.join(", ")}`, v);
const matching = (re: RegExp, what: string): Shape => (v, p, m) => (typeof v === "string" && re.test(v) ? v : bad(m, p, what, v));
const listOf = (item: Shape): Shape => (v, p, m) => (Array.isArray(v) ? v.map((x, i) => item(x, `${p}[${i}]`, m)) : bad(m, p, "an array", v));
function struct(required: Record<string, Shape>, optional: Record<string, Shape> = {}): Shape {
  return (v, p, m) => {
    if (!isStruct(v)) return bad(m, p, "a struct", v);
    const out: Record<string, unknown> = { ...v };
    for (const [k, shape] of Object.entries(required)) out[k] = shape(v[k], p ? `${p}.${k}` : k, m);
    for (const [k, shape] of Object.entries(optional)) {
      if (v[k] === undefined || v[k] === null) delete out[k];
      else out[k] = shape(v[k], p ? `${p}.${k}` : k, m);
    }
    return out;
  };
}
const resultFile = struct({
  name: matching(RESULT_FILE_NAME_PATTERN, "a plain file name"),
  sha256: matching(/^[0-9a-f]{64}$/, "a sha256 (64 lower-case hex digits)"),
  size: decimal,
  kind: oneOf(FILE_KINDS),
});

const RESULT_SHAPES: Record<string, Shape> = {
  echo: listOf((v) => v),
  info: struct(
    {
      protocolVersion: str,
      builderVersion: str,
      hostname: str,
      architectures: listOf(str),
      builderTypes: listOf(str),
      liveBuildVersion: str,
      ready: bool,
      freeDiskBytes: decimal,
    },
    { notReadyReason: str, isolation: oneOf(["container", "none"]) },
  ),
  status: struct(
    { state: oneOf(SLAVE_STATES), version },
    {
      cookie: str,
      result: oneOf(BUILD_RESULTS),
      message: str,
      logSize: decimal,
      logTail: str,
      configRevision: str,
      files: listOf(resultFile),
      startedAt: str,
      finishedAt: str,
    },
  ),
  build: struct({ state: oneOf(["BUILDING"]), cookie: str }),
  abort: struct({ state: oneOf(["ABORTING", "WAITING", "IDLE"]) }),
  clean: struct({ state: oneOf(["IDLE"]) }),
};

/** Checks (and cleans) the result of `method`; methods outside the protocol pass unchanged. */
export function checkResult(method: string, value: unknown): unknown {
  const shape = Object.hasOwn(RESULT_SHAPES, method) ? RESULT_SHAPES[method]! : null;
  return shape ? shape(value, "", method) : value;
}

// Strict checks of XML-RPC method parameters. Every refusal is an RpcFault(-32602) whose
// faultString is a sentence saying what was wrong and what is expected.
import {
  checkArchitectureName,
  checkBuildTimeout,
  checkConfigRef,
  checkConfigUrl,
  checkEnvironment,
  checkProjectName,
  checkSuite,
  FILE_KINDS,
  KNOWN_CONFIG_URL_SCHEMES,
  RESULT_FILE_NAME_PATTERN,
  type Checked,
} from "../rules/index.js";
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

export {
  ARCHITECTURE_NAME_PATTERN as ARCHITECTURE_PATTERN,
  ENV_NAME_PATTERN,
  MAX_BUILD_TIMEOUT_SECONDS,
  MAX_CONFIG_REF_LENGTH,
  MAX_CONFIG_URL_LENGTH,
  MAX_ENV_VALUE_LENGTH,
  MAX_ENV_VARIABLES,
  MIN_BUILD_TIMEOUT_SECONDS,
  PROJECT_NAME_PATTERN,
  RESERVED_ENV_NAMES,
  RESERVED_ENV_PREFIXES,
  RESULT_FILE_NAME_PATTERN,
  SUITE_NAME_PATTERN as SUITE_PATTERN,
} from "../rules/index.js";

const BUILD_ARG_KEYS = ["project", "configUrl", "configRef", "architecture", "suite", "env", "timeoutSeconds"] as const;

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

/**
 * A build argument by its rule: the rule's own sentence is the fault, so the slave refuses a
 * value with the words the form or the API would use. Only a value of the wrong XML-RPC type is
 * refused here, before the rule sees it.
 */
function byRule<T>(field: string, value: unknown, type: "string" | "struct", rule: (v: unknown) => Checked<T>): T {
  const typeOk = type === "string" ? typeof value === "string" : isStruct(value);
  if (!typeOk) throw invalid(`The build call needs ${field} as ${type === "string" ? "a string" : "a struct of names to strings"}, not ${kindOf(value)}.`);
  const checked = rule(value);
  if (checked.error !== undefined) throw invalid(checked.error);
  return checked.value;
}

function checkTimeout(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw invalid(`The build call needs timeoutSeconds as a whole number of seconds, not ${kindOf(value)}.`);
  }
  const checked = checkBuildTimeout(value);
  if (checked.error !== undefined) throw invalid(checked.error);
  return checked.value;
}

/**
 * build(cookie, {project, configUrl, configRef?, architecture, suite?, env?, timeoutSeconds?}).
 * Optional members may be absent or nil. A builder passes the config URL schemes it allows, so
 * its refusal names them; by default any scheme git knows passes.
 */
export function parseBuildParams(params: unknown[], allowedSchemes: readonly string[] = KNOWN_CONFIG_URL_SCHEMES): [cookie: string, args: BuildArgs] {
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
    project: byRule("project", raw.project, "string", checkProjectName),
    configUrl: byRule("configUrl", raw.configUrl, "string", (v) => checkConfigUrl(v, allowedSchemes)),
    architecture: byRule("architecture", raw.architecture, "string", checkArchitectureName),
  };
  if (given("configRef")) args.configRef = byRule("configRef", raw.configRef, "string", checkConfigRef);
  if (given("suite")) args.suite = byRule("suite", raw.suite, "string", checkSuite);
  if (given("env")) args.env = byRule("env", raw.env, "struct", checkEnvironment);
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

const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const SLAVE_STATES = ["IDLE", "BUILDING", "ABORTING", "WAITING"];
const BUILD_RESULTS = ["OK", "BUILDFAIL", "CONFIGFAIL", "BUILDERFAIL", "ABORTED"];

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

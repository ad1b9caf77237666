// Extra environment variables of a project, passed to lb on the builder: the project form's
// NAME=value lines, the API's object and the build call's struct obey the same rules.
import { accept, quoted, refuse, type Checked } from "./checked.js";

export const MAX_ENV_VARIABLES = 100;
export const MAX_ENV_VALUE_LENGTH = 4096;
const MAX_ENV_NAME_LENGTH = 128;
export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]*$/;

/** Variables the slave sets itself or that would change how the build runs. */
export const RESERVED_ENV_NAMES: ReadonlySet<string> = new Set([
  "PROJECT", "ARCH", "SUITE", "NOW", "SOURCE_DATE_EPOCH",
  "PATH", "HOME", "SHELL", "USER", "LOGNAME", "PWD", "OLDPWD", "IFS", "ENV", "BASH_ENV", "CDPATH",
  "PS4", "SHELLOPTS", "BASHOPTS", "GLOBIGNORE", "PROMPT_COMMAND", "TMPDIR",
  "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "NODE_OPTIONS", "PYTHONPATH", "PERL5LIB", "PERL5OPT",
  "DEBIAN_FRONTEND",
]);
/** Prefixes reserved the same way (dynamic loader, git, our own settings, bash functions). */
export const RESERVED_ENV_PREFIXES: readonly string[] = ["LD_", "GIT_", "LEXBUILDER_", "BASH_FUNC_"];

export function isReservedEnvName(name: string): boolean {
  return RESERVED_ENV_NAMES.has(name) || RESERVED_ENV_PREFIXES.some((p) => name.startsWith(p));
}

/** name → value pairs, checked in order; the first problem is the answer. */
function checkPairs(pairs: [name: string, value: unknown][]): Checked<Record<string, string>> {
  if (pairs.length > MAX_ENV_VARIABLES) return refuse(`At most ${MAX_ENV_VARIABLES} environment variables are allowed; ${pairs.length} were given.`);
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) {
    if (!ENV_NAME_PATTERN.test(name) || name.length > MAX_ENV_NAME_LENGTH) {
      return refuse(`The variable name ${quoted(name)} is not valid; use upper-case letters, digits and _, not starting with a digit.`);
    }
    if (isReservedEnvName(name)) return refuse(`${name} is set by the builder itself or is not allowed; choose another name.`);
    if (Object.hasOwn(out, name)) return refuse(`${name} is given twice; keep one.`);
    if (typeof value !== "string") return refuse(`The value of ${name} must be text.`);
    if (value.length > MAX_ENV_VALUE_LENGTH) return refuse(`The value of ${name} may be at most ${MAX_ENV_VALUE_LENGTH} characters long.`);
    if (/[\u0000\r\n]/.test(value)) return refuse(`The value of ${name} may not contain line breaks or NUL characters.`);
    // defineProperty: a key named __proto__ must become a variable, not the object's prototype.
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return accept(out);
}

/** An object of names to strings (the API's JSON, the build call's struct). */
export function checkEnvironment(v: unknown): Checked<Record<string, string>> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || Buffer.isBuffer(v)) {
    return refuse("The environment must be NAME=value pairs: an object of names to text.");
  }
  return checkPairs(Object.entries(v as Record<string, unknown>));
}

/**
 * The project form's environment: NAME=value lines (blank lines and # comments skipped), or an
 * object. Empty means none.
 */
export function parseExtraEnv(v: unknown): Checked<Record<string, string>> {
  if (v === undefined || v === null || v === "") return accept({});
  if (typeof v !== "string") {
    if (typeof v === "object" && !Array.isArray(v)) return checkEnvironment(v);
    return refuse("The environment must be NAME=value lines.");
  }
  const pairs: [string, string][] = [];
  const lines = v.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) return refuse(`Line ${i + 1} of the environment is not NAME=value; write one variable per line, as in MIRROR=http://deb.debian.org/debian.`);
    pairs.push([line.slice(0, eq).trim(), line.slice(eq + 1)]);
  }
  return checkPairs(pairs);
}

// Whole inputs of the project, builder and user forms, API bodies, milestone names and config
// refs, built from the rules in rules/ (one sentence per field). They accept form strings as
// well as JSON values. The single-field checks are the rules themselves, re-exported under the
// names callers know.
import type { Role } from "./states.js";
import type { ProjectInput } from "./db/projects.js";
import {
  checkArchitecture,
  checkBuilderName,
  checkBuilderToken,
  checkBuilderUrl,
  checkConfigRef,
  checkConfigUrl,
  checkDescription,
  checkKeep,
  checkMilestone,
  checkPassword,
  checkPriority,
  checkProjectName,
  checkRole,
  checkSuite,
  checkTitle,
  checkUserName,
  parseExtraEnv,
  type Checked,
} from "./rules/index.js";
import { checkCron, checkDailyTime, checkTimeZone } from "./rules/schedule.js";
import { text } from "./rules/checked.js";

export {
  checkArchitecture,
  checkConfigRef,
  checkConfigUrl,
  checkCron,
  checkDailyTime,
  checkMilestone,
  checkProjectName,
  checkSuite,
  checkTimeZone,
  parseExtraEnv,
};
export {
  BUILDER_NAME_PATTERN,
  DEFAULT_CONFIG_URL_SCHEMES,
  KNOWN_ARCHITECTURES,
  MIN_PASSWORD_LENGTH,
  PROJECT_NAME_PATTERN as PROJECT_SLUG_PATTERN,
  USER_NAME_PATTERN,
} from "./rules/index.js";

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: Record<string, string> };

type Raw = Record<string, unknown>;

function present(raw: Raw, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(raw, key) && raw[key] !== undefined;
}

function checkBool(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  const s = text(v)?.trim().toLowerCase() ?? "";
  return s === "on" || s === "true" || s === "1" || s === "yes";
}

// ---------------------------------------------------------------------------------------------
// Whole inputs.

function collect<T>(errors: Record<string, string>, value: T): Validated<T> {
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, value };
}

/** Checked fields → the whole value, or every field's sentence. */
function fields<T extends object>(checked: { [K in keyof T]: Checked<T[K]> }): Validated<T> {
  const errors: Record<string, string> = {};
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(checked) as [string, Checked<unknown>][]) {
    if (f.error !== undefined) errors[key] = f.error;
    else out[key] = f.value;
  }
  return collect(errors, out as T);
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
  const take = <K extends keyof ProjectInput>(key: K, f: Checked<ProjectInput[K]>) => {
    if (f.error !== undefined) errors[key] = f.error;
    else out[key] = f.value;
  };

  if (want("name")) take("name", checkProjectName(raw.name));
  if (want("title")) take("title", checkTitle(raw.title));
  if (want("description")) take("description", checkDescription(raw.description));
  if (want("configUrl")) take("configUrl", checkConfigUrl(raw.configUrl, options.allowedSchemes));
  if (want("configRef")) {
    if (!partial && (text(raw.configRef)?.trim() ?? "") === "") out.configRef = "main";
    else take("configRef", checkConfigRef(raw.configRef));
  }
  if (want("architecture")) take("architecture", checkArchitecture(raw.architecture));
  if (want("suite")) {
    if (!partial && (text(raw.suite)?.trim() ?? "") === "") out.suite = "trixie";
    else take("suite", checkSuite(raw.suite));
  }
  if (want("extraEnv")) take("extraEnv", parseExtraEnv(raw.extraEnv));
  if (want("priority")) {
    if (!partial && (text(raw.priority)?.trim() ?? "") === "") out.priority = 0;
    else take("priority", checkPriority(raw.priority));
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
  return fields<BuilderInput>({ name: checkBuilderName(raw.name), url: checkBuilderUrl(raw.url), token: checkBuilderToken(raw.token) });
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
  const unchanged = options.passwordOptional && (text(raw.password) ?? "") === "";
  return fields<UserInput>({
    name: checkUserName(raw.name),
    role: checkRole(raw.role),
    password: unchanged ? { value: null } : checkPassword(raw.password),
  });
}

/** A password on its own (change-password form). */
export function validatePassword(v: unknown): Validated<string> {
  const f = checkPassword(v);
  return f.error !== undefined ? { ok: false, errors: { password: f.error } } : { ok: true, value: f.value };
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
  const given = (v: unknown) => (text(v)?.trim() ?? "") !== "";
  return fields<{ milestone: string | null; configRef: string | null }>({
    milestone: given(raw.milestone) ? checkMilestone(raw.milestone) : { value: null },
    configRef: given(raw.configRef) ? checkConfigRef(raw.configRef) : { value: null },
  });
}

// The project form as typed (a refused form comes back exactly as the user left it), and its
// translation into the input validateProjectInput checks.
import { projectText, type Project, type ProjectText } from "@lexbuilder/shared-models/db";
import { nextRunAfter } from "@lexbuilder/shared-models/schedule";
import { checkbox, field } from "./routes/util.js";

/** The form as typed, so a refused form comes back exactly as the user left it. */
export interface ProjectForm extends ProjectText {
  extraEnv: string;
  priority: string;
  private: boolean;
  active: boolean;
  scheduleKind: "none" | "daily" | "cron";
  scheduleDailyAt: string;
  scheduleCron: string;
  scheduleTz: string;
  keepLast: string;
  keepDays: string;
}

export function emptyProjectForm(tz: string): ProjectForm {
  return {
    name: "",
    title: "",
    description: "",
    configUrl: "",
    configRef: "main",
    architecture: "amd64",
    suite: "trixie",
    extraEnv: "",
    priority: "0",
    private: false,
    active: true,
    scheduleKind: "none",
    scheduleDailyAt: "",
    scheduleCron: "",
    scheduleTz: tz,
    keepLast: "",
    keepDays: "",
  };
}

export function projectToForm(p: Project): ProjectForm {
  return {
    ...projectText(p),
    extraEnv: Object.entries(p.extraEnv ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
    priority: String(p.priority),
    private: p.private,
    active: p.active,
    scheduleKind: p.scheduleCron ? "cron" : p.scheduleDailyAt ? "daily" : "none",
    scheduleDailyAt: p.scheduleDailyAt ?? "",
    scheduleCron: p.scheduleCron ?? "",
    scheduleTz: p.scheduleTz,
    keepLast: p.keepLast === null ? "" : String(p.keepLast),
    keepDays: p.keepDays === null ? "" : String(p.keepDays),
  };
}

/** No option sent (a form without the radio buttons): what was typed decides. */
function inferScheduleKind(body: unknown): ProjectForm["scheduleKind"] {
  const at = field(body, "scheduleDailyAt", 100);
  const cron = field(body, "scheduleCron", 200);
  return at && !cron ? "daily" : cron && !at ? "cron" : "none";
}

export function readProjectForm(body: unknown): ProjectForm {
  const kind = field(body, "scheduleKind", 10);
  return {
    name: field(body, "name", 200),
    title: field(body, "title", 1000),
    description: field(body, "description", 20_000),
    configUrl: field(body, "configUrl", 4000),
    configRef: field(body, "configRef", 1000),
    architecture: field(body, "architecture", 100),
    suite: field(body, "suite", 100),
    extraEnv: field(body, "extraEnv", 20_000),
    priority: field(body, "priority", 20),
    private: checkbox(body, "private"),
    active: checkbox(body, "active"),
    scheduleKind: kind === "daily" || kind === "cron" || kind === "none" ? kind : inferScheduleKind(body),
    scheduleDailyAt: field(body, "scheduleDailyAt", 100),
    scheduleCron: field(body, "scheduleCron", 200),
    scheduleTz: field(body, "scheduleTz", 100),
    keepLast: field(body, "keepLast", 20),
    keepDays: field(body, "keepDays", 20),
  };
}

/** Form → the raw input validateProjectInput checks (it parses the NAME=value lines itself). */
export function formToInput(form: ProjectForm): { raw: Record<string, unknown>; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const raw: Record<string, unknown> = {
    ...projectText(form),
    extraEnv: form.extraEnv,
    priority: form.priority,
    private: form.private,
    active: form.active,
    scheduleDailyAt: form.scheduleKind === "daily" ? form.scheduleDailyAt : "",
    scheduleCron: form.scheduleKind === "cron" ? form.scheduleCron : "",
    scheduleTz: form.scheduleTz,
    keepLast: form.keepLast,
    keepDays: form.keepDays,
  };
  if (form.scheduleKind === "daily" && !form.scheduleDailyAt) errors.scheduleDailyAt = "Give the time of day for the daily build, as HH:MM.";
  if (form.scheduleKind === "cron" && !form.scheduleCron) errors.scheduleCron = "Give a cron expression, for example 30 2 * * 1-5.";
  // A time typed under "No schedule" would otherwise be dropped without a word: ask which is meant.
  if (form.scheduleKind === "none" && form.scheduleDailyAt) {
    errors.scheduleDailyAt = "You typed a time but chose \u201cNo schedule\u201d: choose \u201cEvery day at\u201d to build daily, or clear the time.";
  }
  if (form.scheduleKind === "none" && form.scheduleCron) {
    errors.scheduleCron = "You typed a cron expression but chose \u201cNo schedule\u201d: choose \u201cCron expression\u201d to use it, or clear it.";
  }
  return { raw, errors };
}

export function nextRunOf(p: Project, now = new Date()): Date | null {
  try {
    if (!p.active) return null;
    if (p.scheduleCron) return nextRunAfter({ kind: "cron", expression: p.scheduleCron }, p.scheduleTz, now);
    if (p.scheduleDailyAt) return nextRunAfter({ kind: "daily", at: p.scheduleDailyAt }, p.scheduleTz, now);
  } catch {
    return null;
  }
  return null;
}


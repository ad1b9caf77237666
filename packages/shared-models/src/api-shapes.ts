// The JSON shapes of the public API, built in one place so the webapp's
// /api/v1 and `lexbuilder-admin show-build --json` print the same object.
import type { BuildDetail } from "./db/builds.js";
import type { Artifact } from "./db/artifacts.js";
import { projectText, type Project, type ProjectSummary, type ProjectText } from "./db/projects.js";
import type { BuildReason, BuildState, FailureKind } from "./states.js";
import type { BuildResult, FileKind } from "./protocol/types.js";

function iso(d: Date | null | undefined): string | null {
  return d ? d.toISOString() : null;
}

export interface ApiFile {
  id: number;
  name: string;
  kind: FileKind;
  size: number;
  sha256: string;
}

export interface ApiBuild {
  id: number;
  project: string;
  state: BuildState;
  failureKind: FailureKind | null;
  failureMessage: string | null;
  /** The slave's result class (OK, BUILDFAIL …) once it reported one. */
  result: BuildResult | null;
  reason: BuildReason;
  milestone: string | null;
  /** The requester's user name. */
  requestedBy: string | null;
  configRef: string;
  configRevision: string | null;
  architecture: string;
  /** The builder's name. */
  builder: string | null;
  attempt: number;
  priority: number;
  requestedAt: string;
  dispatchedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  logSize: number;
  retryOf: number | null;
  scheduledFor: string | null;
  files: ApiFile[];
}

export function toApiFile(a: Artifact): ApiFile {
  return { id: a.id, name: a.name, kind: a.kind, size: a.size, sha256: a.sha256 };
}

/** GET /api/v1/builds/:id (and show-build --json). */
export function toApiBuild(detail: BuildDetail, artifacts: Artifact[]): ApiBuild {
  return {
    id: detail.id,
    project: detail.projectName,
    state: detail.state,
    failureKind: detail.failureKind,
    failureMessage: detail.failureMessage,
    result: detail.slaveResult,
    reason: detail.reason,
    milestone: detail.milestone,
    requestedBy: detail.requestedByName,
    configRef: detail.configRef,
    configRevision: detail.configRevision,
    architecture: detail.architecture,
    builder: detail.builderName,
    attempt: detail.attempt,
    priority: detail.priority,
    requestedAt: detail.requestedAt.toISOString(),
    dispatchedAt: iso(detail.dispatchedAt),
    startedAt: iso(detail.startedAt),
    finishedAt: iso(detail.finishedAt),
    logSize: detail.logSize,
    retryOf: detail.retryOf,
    scheduledFor: iso(detail.scheduledFor),
    files: artifacts.filter((a) => a.buildId === detail.id).map(toApiFile),
  };
}

/** A build in a list (GET /api/v1/builds): the same fields without files. */
export function toApiBuildListItem(detail: BuildDetail): Omit<ApiBuild, "files"> & { fileCount: number } {
  const { files: _files, ...rest } = toApiBuild(detail, []);
  return { ...rest, fileCount: detail.artifactCount };
}

export interface ApiProject extends ProjectText {
  extraEnv: Record<string, string>;
  priority: number;
  active: boolean;
  private: boolean;
  schedule: { dailyAt: string | null; cron: string | null; timeZone: string; lastRun: string | null; nextRun: string | null };
  retention: { keepLast: number | null; keepDays: number | null };
  createdAt: string;
  updatedAt: string;
  lastBuild?: { id: number; state: BuildState; finishedAt: string | null } | null;
}

/** GET /api/v1/projects/:name (and, with a ProjectSummary, the list items). */
export function toApiProject(project: Project | ProjectSummary): ApiProject {
  const out: ApiProject = {
    ...projectText(project),
    extraEnv: project.extraEnv,
    priority: project.priority,
    active: project.active,
    private: project.private,
    schedule: {
      dailyAt: project.scheduleDailyAt,
      cron: project.scheduleCron,
      timeZone: project.scheduleTz,
      lastRun: iso(project.scheduleLastRun),
      nextRun: iso(project.scheduleNextRun),
    },
    retention: { keepLast: project.keepLast, keepDays: project.keepDays },
    createdAt: project.createdAt.toISOString(),
    updatedAt: project.updatedAt.toISOString(),
  };
  if ("lastBuildId" in project) {
    out.lastBuild =
      project.lastBuildId === null || project.lastBuildState === null
        ? null
        : { id: project.lastBuildId, state: project.lastBuildState, finishedAt: iso(project.lastBuildFinishedAt) };
  }
  return out;
}

// Build actions: request, cancel, retry. The console and the API both call these; each checks
// permission, writes the state change and its audit row in one transaction, and drops the caches.
import {
  BuildStateError,
  DuplicateBuildError,
  IdempotencyKeyUsedError,
  ProjectInactiveError,
  cancelBuild as cancelBuildRow,
  getBuild,
  requestBuild as requestBuildRow,
  retryBuild as retryBuildRow,
  type Build,
  type BuildDetail,
  type Project,
} from "@lexbuilder/shared-models/db";
import type { BuildState } from "@lexbuilder/shared-models/states";
import { validateBuildRequest } from "@lexbuilder/shared-models/validation";
import type { CurrentUser } from "../auth.js";
import { audit } from "../audit.js";
import type { AppContext } from "../context.js";
import { ActionError } from "./errors.js";
import { buildVisibleTo, projectVisibleTo, requireBuilderRole } from "./permissions.js";
import { writeAndAudit } from "./run.js";

export type Via = "web" | "api";

export interface BuildRequestInput {
  projectName: string;
  /** "" or absent: no milestone. */
  milestone?: string | null;
  /** "" or absent: the project's ref. */
  configRef?: string | null;
  /** The API's Idempotency-Key: the same key again answers with the first build. */
  idempotencyKey?: string;
  via: Via;
}

export interface BuildRequested {
  project: Project;
  build: Build | BuildDetail;
  /** True when an Idempotency-Key named an earlier identical request. */
  replayed: boolean;
}

/** Refusals the state machine gives become 409 with its sentence. */
function conflict(err: unknown): never {
  if (err instanceof BuildStateError || err instanceof DuplicateBuildError || err instanceof ProjectInactiveError) throw new ActionError(409, err.message);
  throw err;
}

export async function requestBuild(ctx: AppContext, user: CurrentUser, input: BuildRequestInput): Promise<BuildRequested> {
  const project = await projectVisibleTo(ctx.pool, user, input.projectName);
  requireBuilderRole(user, "request builds");
  const checked = validateBuildRequest({ milestone: input.milestone ?? undefined, configRef: input.configRef ?? undefined });
  if (!checked.ok) throw new ActionError(400, Object.values(checked.errors).join(" "));
  const milestone = checked.value.milestone || null;
  const configRef = checked.value.configRef || null;
  try {
    const build = await writeAndAudit(ctx, async (db) => {
      const b = await requestBuildRow(db, {
        projectId: project.id,
        reason: milestone ? "milestone" : input.via === "api" ? "api" : "manual",
        milestone,
        configRef,
        requestedBy: user.id,
        idempotencyKey: input.idempotencyKey,
      });
      await audit(db, user, "build.request", "build", b.id, { project: project.name, milestone, configRef: b.configRef, via: input.via });
      return b;
    });
    return { project, build, replayed: false };
  } catch (err) {
    if (err instanceof IdempotencyKeyUsedError) {
      // The same request again (its first answer was lost): the first build, not a second one.
      const first = await getBuild(ctx.pool, err.existingBuildId);
      const same = first !== null && first.projectId === project.id && (first.milestone ?? null) === milestone && first.configRef === (configRef ?? project.configRef);
      if (!same) throw new ActionError(422, "This Idempotency-Key was already used for a different build request; send a new key for a new request.");
      return { project, build: first, replayed: true };
    }
    return conflict(err);
  }
}

export interface BuildCancelled {
  build: BuildDetail;
  /** CANCELLED at once, or CANCELLING while the builder stops it. */
  state: BuildState;
}

export async function cancelBuild(ctx: AppContext, user: CurrentUser, input: { buildId: number; via: Via }): Promise<BuildCancelled> {
  const build = await buildVisibleTo(ctx.pool, user, input.buildId);
  requireBuilderRole(user, "cancel builds");
  try {
    const state = await writeAndAudit(ctx, async (db) => {
      const { state } = await cancelBuildRow(db, build.id);
      await audit(db, user, "build.cancel", "build", build.id, { project: build.projectName, from: build.state, to: state, via: input.via });
      return state;
    });
    return { build, state };
  } catch (err) {
    return conflict(err);
  }
}

export interface BuildRetried {
  build: BuildDetail;
  retry: Build;
}

export async function retryBuild(ctx: AppContext, user: CurrentUser, input: { buildId: number; via: Via }): Promise<BuildRetried> {
  const build = await buildVisibleTo(ctx.pool, user, input.buildId);
  requireBuilderRole(user, "retry builds");
  try {
    const retry = await writeAndAudit(ctx, async (db) => {
      const r = await retryBuildRow(db, build.id, user.id);
      await audit(db, user, "build.retry", "build", r.id, { project: build.projectName, retryOf: build.id, via: input.via });
      return r;
    });
    return { build, retry };
  } catch (err) {
    return conflict(err);
  }
}

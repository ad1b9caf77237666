// The state machines, defined once. Every guarded UPDATE in db/ checks its transition here
// first, and tests walk every pair of states.
import { SlaveState } from "./protocol/types.js";

export const BuildState = {
  QUEUED: "QUEUED",
  DISPATCHING: "DISPATCHING",
  BUILDING: "BUILDING",
  COLLECTING: "COLLECTING",
  SUCCEEDED: "SUCCEEDED",
  FAILED: "FAILED",
  CANCELLING: "CANCELLING",
  CANCELLED: "CANCELLED",
} as const;
export type BuildState = (typeof BuildState)[keyof typeof BuildState];
export const BUILD_STATES = Object.values(BuildState);

export const FailureKind = {
  build: "build",
  config: "config",
  builder: "builder",
  collect: "collect",
} as const;
export type FailureKind = (typeof FailureKind)[keyof typeof FailureKind];
export const FAILURE_KINDS = Object.values(FailureKind);

export const BuildReason = {
  manual: "manual",
  daily: "daily",
  api: "api",
  retry: "retry",
  milestone: "milestone",
} as const;
export type BuildReason = (typeof BuildReason)[keyof typeof BuildReason];
export const BUILD_REASONS = Object.values(BuildReason);

/**
 * Legal build transitions. Why each exists:
 * - QUEUED→DISPATCHING: the master picked a builder (recorded before the RPC).
 * - DISPATCHING→QUEUED: the build() RPC failed; the job is given back.
 * - DISPATCHING→BUILDING: the slave accepted the cookie.
 * - BUILDING→QUEUED: the job was lost (slave died, wrong cookie, BUILDERFAIL) and is re-queued.
 * - BUILDING→COLLECTING: the slave is WAITING with result OK.
 * - COLLECTING→QUEUED: the slave lost the results before we had them all.
 * - →FAILED: a build/config failure, a builder failure past the limit, or a collect failure.
 * - →CANCELLING / CANCELLING→CANCELLED: cancel of a job a slave may hold goes through abort.
 * - QUEUED→CANCELLED: cancel of a job no slave holds is immediate.
 */
export const BUILD_TRANSITIONS: Readonly<Record<BuildState, readonly BuildState[]>> = {
  QUEUED: ["DISPATCHING", "CANCELLED", "FAILED"],
  DISPATCHING: ["QUEUED", "BUILDING", "FAILED", "CANCELLING"],
  BUILDING: ["QUEUED", "COLLECTING", "FAILED", "CANCELLING"],
  COLLECTING: ["QUEUED", "SUCCEEDED", "FAILED", "CANCELLING"],
  CANCELLING: ["CANCELLED"],
  SUCCEEDED: [],
  FAILED: [],
  CANCELLED: [],
};

export const TERMINAL_BUILD_STATES: readonly BuildState[] = ["SUCCEEDED", "FAILED", "CANCELLED"];
/** States in which a slave may hold the job (the build has a builder and cookie). */
export const ACTIVE_BUILD_STATES: readonly BuildState[] = ["DISPATCHING", "BUILDING", "COLLECTING", "CANCELLING"];

export function canTransitionBuild(from: BuildState, to: BuildState): boolean {
  return BUILD_TRANSITIONS[from].includes(to);
}

export class IllegalTransitionError extends Error {
  constructor(
    readonly entity: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`A ${entity} cannot go from ${from} to ${to}.`);
    this.name = "IllegalTransitionError";
  }
}

export function assertBuildTransition(from: BuildState, to: BuildState): void {
  if (!canTransitionBuild(from, to)) throw new IllegalTransitionError("build", from, to);
}

/** Cancel is allowed from these; retry only from the failed/cancelled ends (launchpad's rule). */
export function canCancel(state: BuildState): boolean {
  return state === "QUEUED" || canTransitionBuild(state, "CANCELLING");
}
export function canRetry(state: BuildState): boolean {
  return state === "FAILED" || state === "CANCELLED";
}

/** The slave daemon's machine (launchpad-buildd's). */
export const SLAVE_TRANSITIONS: Readonly<Record<SlaveState, readonly SlaveState[]>> = {
  IDLE: ["BUILDING"],
  BUILDING: ["WAITING", "ABORTING"],
  ABORTING: ["WAITING"],
  WAITING: ["IDLE"],
};

export function canTransitionSlave(from: SlaveState, to: SlaveState): boolean {
  return SLAVE_TRANSITIONS[from].includes(to);
}
export function assertSlaveTransition(from: SlaveState, to: SlaveState): void {
  if (!canTransitionSlave(from, to)) throw new IllegalTransitionError("slave", from, to);
}

/**
 * A builder as the master sees it: the slave's reported state, or OFFLINE when the last scans
 * failed, or UNKNOWN before the first contact. Observed, so any state may follow any other;
 * what the master guards is the builder's current_build_id (set only when null, cleared only
 * by the holder of the expected build).
 */
export const BuilderState = {
  UNKNOWN: "UNKNOWN",
  OFFLINE: "OFFLINE",
  IDLE: "IDLE",
  BUILDING: "BUILDING",
  ABORTING: "ABORTING",
  WAITING: "WAITING",
} as const;
export type BuilderState = (typeof BuilderState)[keyof typeof BuilderState];
export const BUILDER_STATES = Object.values(BuilderState);

export const Role = { admin: "admin", builder: "builder", viewer: "viewer" } as const;
export type Role = (typeof Role)[keyof typeof Role];
export const ROLES = Object.values(Role);

// What a slave's status answer means for the build the database says it holds: a pure
// decision (build row × answer × clock → one action), so every case is tested without a
// database or a network. The watcher carries the action out.
import type { BuildResult, StatusResult } from "@lexbuilder/shared-models/protocol";
import type { BuildState, FailureKind } from "@lexbuilder/shared-models/states";

/** The part of the held build's row the decision needs (null: the builder holds none). */
export interface HeldBuild {
  state: BuildState;
  cookie: string | null;
}

export interface ReconcileInput {
  build: HeldBuild | null;
  status: StatusResult;
  /** The dispatcher's build() for this build is in flight: its answer decides, not ours. */
  dispatchInFlight: boolean;
  builderName: string;
  /** Milliseconds since the epoch. */
  now: number;
}

/** A build the slave has that the database does not give it: abort it if running, else clean it. */
export type Tidy = { call: "abort" | "clean"; cookie: string } | null;

/** The next step for a build the slave still holds under our cookie. */
export type Step =
  | { kind: "none" }
  /** BUILDING, slave WAITING with OK: mark COLLECTING and start collecting. */
  | { kind: "startCollecting"; detectedAfterMs: number | null }
  /** BUILDING, slave WAITING with a build/config failure or an abort: FAILED, then clean. */
  | { kind: "fail"; failureKind: FailureKind; message: string; result: BuildResult; detectedAfterMs: number | null }
  /** BUILDING, slave WAITING with BUILDERFAIL (or a result we do not know): the job is lost, then clean. */
  | { kind: "builderFailed"; message: string; detectedAfterMs: number | null }
  /** COLLECTING, slave WAITING: make sure a collector runs. */
  | { kind: "collect" }
  /** CANCELLING, slave still BUILDING: abort it. */
  | { kind: "abort" }
  /** CANCELLING, slave WAITING: CANCELLED, then clean. */
  | { kind: "finishCancel" };

export type Action =
  | { kind: "none" }
  /** No build held: tidy what the slave has. */
  | { kind: "tidy"; tidy: NonNullable<Tidy> }
  /** DISPATCHING but the slave never took it (the master stopped in between): re-queue uncounted. */
  | { kind: "requeueUnaccepted"; message: string; tidy: Tidy }
  /** CANCELLING and the slave no longer has it: CANCELLED. */
  | { kind: "finishCancel"; tidy: Tidy }
  /** The slave lost the job (idle, or another cookie): the judge re-queues it, counted. */
  | { kind: "lost"; message: string; tidy: Tidy }
  /** The slave holds our cookie: (mark started,) record its revision and log, then `step`. */
  | { kind: "follow"; markStarted: boolean; step: Step };

function tidyOf(s: StatusResult): Tidy {
  if (!s.cookie) return null;
  if (s.state === "BUILDING") return { call: "abort", cookie: s.cookie };
  if (s.state === "WAITING") return { call: "clean", cookie: s.cookie };
  return null;
}

function detectedAfter(s: StatusResult, now: number): number | null {
  const t = s.finishedAt ? Date.parse(s.finishedAt) : NaN;
  return Number.isFinite(t) ? Math.max(0, now - t) : null;
}

/** The slave is WAITING with the result of a BUILDING build. */
function finished(s: StatusResult, builderName: string, now: number): Step {
  const detectedAfterMs = detectedAfter(s, now);
  const message = s.message ?? "";
  switch (s.result) {
    case "OK":
      return { kind: "startCollecting", detectedAfterMs };
    case "BUILDFAIL":
      return { kind: "fail", failureKind: "build", message: message || "The build failed; see the log.", result: "BUILDFAIL", detectedAfterMs };
    case "CONFIGFAIL":
      return {
        kind: "fail",
        failureKind: "config",
        message: message || "The configuration could not be fetched; see the log.",
        result: "CONFIGFAIL",
        detectedAfterMs,
      };
    case "ABORTED":
      // Aborted without a cancel (e.g. the slave's own build timeout).
      return { kind: "fail", failureKind: "build", message: message || "The build was aborted on the builder.", result: "ABORTED", detectedAfterMs };
    default:
      return { kind: "builderFailed", message: `The builder ${builderName} failed the build${message ? `: ${message}` : ""}.`, detectedAfterMs };
  }
}

function step(state: BuildState, s: StatusResult, builderName: string, now: number): Step {
  if (state === "BUILDING" && s.state === "WAITING") return finished(s, builderName, now);
  if (state === "COLLECTING" && s.state === "WAITING") return { kind: "collect" };
  if (state === "CANCELLING" && s.state === "BUILDING") return { kind: "abort" };
  if (state === "CANCELLING" && s.state === "WAITING") return { kind: "finishCancel" };
  return { kind: "none" };
}

export function reconcile({ build, status: s, dispatchInFlight, builderName, now }: ReconcileInput): Action {
  if (!build || !build.cookie) {
    const tidy = tidyOf(s);
    return tidy ? { kind: "tidy", tidy } : { kind: "none" };
  }
  if (dispatchInFlight) return { kind: "none" };
  const ours = s.cookie === build.cookie && s.state !== "IDLE";
  if (!ours) {
    if (build.state === "DISPATCHING") {
      return { kind: "requeueUnaccepted", message: `The builder ${builderName} never accepted the build; it went back to the queue.`, tidy: tidyOf(s) };
    }
    if (build.state === "CANCELLING") return { kind: "finishCancel", tidy: tidyOf(s) };
    const message =
      s.state === "IDLE"
        ? `The builder ${builderName} is idle and no longer has build ${build.cookie} (was it restarted?).`
        : `The builder ${builderName} reports build ${s.cookie ?? "(none)"} instead of ${build.cookie}.`;
    return { kind: "lost", message, tidy: tidyOf(s) };
  }
  // A slave holding a DISPATCHING build's cookie has started it.
  const markStarted = build.state === "DISPATCHING";
  return { kind: "follow", markStarted, step: step(markStarted ? "BUILDING" : build.state, s, builderName, now) };
}

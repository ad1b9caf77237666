// Every case reconcile() distinguishes, as a table: the held build's state × the slave's
// answer (state, whose cookie, result). Pure: no database, no network.
import { describe, expect, it } from "vitest";
import type { StatusResult } from "@lexbuilder/shared-models/protocol";
import { ACTIVE_BUILD_STATES, type BuildState } from "@lexbuilder/shared-models/states";
import { reconcile, type Action, type HeldBuild } from "../src/reconcile.js";

const OURS = "7-1";
const OTHER = "9-2";
const NOW = Date.parse("2026-03-05T12:00:00Z");

/** The slave's answers, by label: "<state> <whose cookie> [result]". */
const ANSWERS: Record<string, StatusResult> = {
  "IDLE -": { state: "IDLE", version: 1 },
  "IDLE ours": { state: "IDLE", version: 1, cookie: OURS },
  "BUILDING ours": { state: "BUILDING", version: 1, cookie: OURS },
  "BUILDING other": { state: "BUILDING", version: 1, cookie: OTHER },
  "ABORTING ours": { state: "ABORTING", version: 1, cookie: OURS },
  "ABORTING other": { state: "ABORTING", version: 1, cookie: OTHER },
  "WAITING ours OK": { state: "WAITING", version: 1, cookie: OURS, result: "OK" },
  "WAITING ours BUILDFAIL": { state: "WAITING", version: 1, cookie: OURS, result: "BUILDFAIL" },
  "WAITING ours CONFIGFAIL": { state: "WAITING", version: 1, cookie: OURS, result: "CONFIGFAIL" },
  "WAITING ours ABORTED": { state: "WAITING", version: 1, cookie: OURS, result: "ABORTED" },
  "WAITING ours BUILDERFAIL": { state: "WAITING", version: 1, cookie: OURS, result: "BUILDERFAIL" },
  "WAITING other": { state: "WAITING", version: 1, cookie: OTHER, result: "OK" },
};

/** An action in a few characters: the kind, and what it tidies or which step it takes. */
function show(a: Action): string {
  switch (a.kind) {
    case "none":
      return "none";
    case "tidy":
      return `tidy:${a.tidy.call}`;
    case "requeueUnaccepted":
    case "finishCancel":
    case "lost": {
      const name = { requeueUnaccepted: "requeue", finishCancel: "cancelled", lost: "lost" }[a.kind];
      return a.tidy ? `${name}+${a.tidy.call}` : name;
    }
    case "follow": {
      const step = a.step.kind === "fail" ? `fail:${a.step.failureKind}` : a.step.kind;
      return `${a.markStarted ? "start" : "follow"}:${step}`;
    }
  }
}

// Columns in the order of ANSWERS.
const TABLE: Record<"(none)" | BuildState & ("DISPATCHING" | "BUILDING" | "COLLECTING" | "CANCELLING"), string[]> = {
  "(none)": ["none", "none", "tidy:abort", "tidy:abort", "none", "none", "tidy:clean", "tidy:clean", "tidy:clean", "tidy:clean", "tidy:clean", "tidy:clean"],
  DISPATCHING: [
    "requeue", "requeue", "start:none", "requeue+abort", "start:none", "requeue",
    "start:startCollecting", "start:fail:build", "start:fail:config", "start:fail:build", "start:builderFailed", "requeue+clean",
  ],
  BUILDING: [
    "lost", "lost", "follow:none", "lost+abort", "follow:none", "lost",
    "follow:startCollecting", "follow:fail:build", "follow:fail:config", "follow:fail:build", "follow:builderFailed", "lost+clean",
  ],
  COLLECTING: [
    "lost", "lost", "follow:none", "lost+abort", "follow:none", "lost",
    "follow:collect", "follow:collect", "follow:collect", "follow:collect", "follow:collect", "lost+clean",
  ],
  CANCELLING: [
    "cancelled", "cancelled", "follow:abort", "cancelled+abort", "follow:none", "cancelled",
    "follow:finishCancel", "follow:finishCancel", "follow:finishCancel", "follow:finishCancel", "follow:finishCancel", "cancelled+clean",
  ],
};

function decide(build: HeldBuild | null, status: StatusResult, dispatchInFlight = false): Action {
  return reconcile({ build, status, dispatchInFlight, builderName: "b1", now: NOW });
}

describe("reconcile", () => {
  it("covers every state a builder may hold a build in, and every slave state", () => {
    expect(Object.keys(TABLE).filter((k) => k !== "(none)").sort()).toEqual([...ACTIVE_BUILD_STATES].sort());
    expect(new Set(Object.values(ANSWERS).map((a) => a.state))).toEqual(new Set(["IDLE", "BUILDING", "ABORTING", "WAITING"]));
  });

  for (const [row, expected] of Object.entries(TABLE)) {
    it(`decides for ${row === "(none)" ? "no held build" : `a ${row} build`} and each answer`, () => {
      const build = row === "(none)" ? null : { state: row as BuildState, cookie: OURS };
      const got = Object.values(ANSWERS).map((answer) => show(decide(build, answer)));
      expect(Object.fromEntries(Object.keys(ANSWERS).map((k, i) => [k, got[i]]))).toEqual(
        Object.fromEntries(Object.keys(ANSWERS).map((k, i) => [k, expected[i]])),
      );
    });
  }

  it("treats a held build without a cookie as none held", () => {
    expect(show(decide({ state: "BUILDING", cookie: null }, ANSWERS["BUILDING other"]!))).toBe("tidy:abort");
    expect(show(decide({ state: "BUILDING", cookie: null }, ANSWERS["IDLE -"]!))).toBe("none");
  });

  it("leaves a build alone while the dispatcher's build() is in flight, whatever the slave says", () => {
    for (const state of ACTIVE_BUILD_STATES) {
      for (const [label, answer] of Object.entries(ANSWERS)) {
        expect(show(decide({ state, cookie: OURS }, answer, true)), `${state} / ${label}`).toBe("none");
      }
    }
    // With no held build, the slave's stray build is still tidied.
    expect(show(decide(null, ANSWERS["WAITING other"]!, true))).toBe("tidy:clean");
  });

  it("names the builder and the cookies in its messages", () => {
    expect(decide({ state: "DISPATCHING", cookie: OURS }, ANSWERS["IDLE -"]!)).toMatchObject({
      message: "The builder b1 never accepted the build; it went back to the queue.",
    });
    expect(decide({ state: "BUILDING", cookie: OURS }, ANSWERS["IDLE -"]!)).toMatchObject({
      message: `The builder b1 is idle and no longer has build ${OURS} (was it restarted?).`,
    });
    expect(decide({ state: "BUILDING", cookie: OURS }, ANSWERS["BUILDING other"]!)).toMatchObject({
      message: `The builder b1 reports build ${OTHER} instead of ${OURS}.`,
    });
    expect(decide({ state: "BUILDING", cookie: OURS }, { ...ANSWERS["WAITING ours BUILDERFAIL"]!, message: "disk full" })).toMatchObject({
      step: { kind: "builderFailed", message: "The builder b1 failed the build: disk full." },
    });
    expect(decide({ state: "BUILDING", cookie: OURS }, ANSWERS["WAITING ours BUILDERFAIL"]!)).toMatchObject({
      step: { message: "The builder b1 failed the build." },
    });
  });

  it("fails with the slave's message and result, or a default sentence", () => {
    const building = { state: "BUILDING" as const, cookie: OURS };
    expect(decide(building, { ...ANSWERS["WAITING ours BUILDFAIL"]!, message: "lb build: exit 1" })).toMatchObject({
      step: { kind: "fail", failureKind: "build", message: "lb build: exit 1", result: "BUILDFAIL" },
    });
    expect(decide(building, ANSWERS["WAITING ours BUILDFAIL"]!)).toMatchObject({ step: { message: "The build failed; see the log." } });
    expect(decide(building, ANSWERS["WAITING ours CONFIGFAIL"]!)).toMatchObject({
      step: { result: "CONFIGFAIL", message: "The configuration could not be fetched; see the log." },
    });
    expect(decide(building, ANSWERS["WAITING ours ABORTED"]!)).toMatchObject({ step: { result: "ABORTED", message: "The build was aborted on the builder." } });
    // A result this master does not know is the builder's failure, not the build's.
    expect(show(decide(building, { ...ANSWERS["WAITING ours OK"]!, result: undefined }))).toBe("follow:builderFailed");
  });

  it("measures how long after the slave finished the answer was seen, by the given clock", () => {
    const building = { state: "BUILDING" as const, cookie: OURS };
    const at = (finishedAt: string | undefined) => {
      const a = decide(building, { ...ANSWERS["WAITING ours OK"]!, finishedAt });
      return a.kind === "follow" && a.step.kind === "startCollecting" ? a.step.detectedAfterMs : "wrong action";
    };
    expect(at("2026-03-05T11:59:58.500Z")).toBe(1500);
    expect(at("2026-03-05T13:00:00+01:00")).toBe(0);
    expect(at("2026-03-05T12:00:05Z")).toBe(0); // the slave's clock ahead: never negative
    expect(at(undefined)).toBeNull();
    expect(at("not a date")).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import {
  BUILD_STATES,
  BUILD_TRANSITIONS,
  TERMINAL_BUILD_STATES,
  assertBuildTransition,
  assertSlaveTransition,
  canCancel,
  canRetry,
  canTransitionBuild,
  canTransitionSlave,
  IllegalTransitionError,
  SLAVE_TRANSITIONS,
  type BuildState,
} from "../src/states.js";
import { SlaveState } from "../src/protocol/types.js";

const LEGAL: Array<[BuildState, BuildState]> = [
  ["QUEUED", "DISPATCHING"], ["QUEUED", "CANCELLED"], ["QUEUED", "FAILED"],
  ["DISPATCHING", "QUEUED"], ["DISPATCHING", "BUILDING"], ["DISPATCHING", "FAILED"], ["DISPATCHING", "CANCELLING"],
  ["BUILDING", "QUEUED"], ["BUILDING", "COLLECTING"], ["BUILDING", "FAILED"], ["BUILDING", "CANCELLING"],
  ["COLLECTING", "QUEUED"], ["COLLECTING", "SUCCEEDED"], ["COLLECTING", "FAILED"], ["COLLECTING", "CANCELLING"],
  ["CANCELLING", "CANCELLED"],
];

describe("build state machine", () => {
  it("allows exactly the listed transitions, for every pair of states", () => {
    const legal = new Set(LEGAL.map(([a, b]) => `${a}>${b}`));
    for (const from of BUILD_STATES) {
      for (const to of BUILD_STATES) {
        const expected = legal.has(`${from}>${to}`);
        expect(canTransitionBuild(from, to), `${from} -> ${to}`).toBe(expected);
        if (expected) expect(() => assertBuildTransition(from, to)).not.toThrow();
        else expect(() => assertBuildTransition(from, to)).toThrow(IllegalTransitionError);
      }
    }
  });

  it("has no way out of a terminal state", () => {
    for (const s of TERMINAL_BUILD_STATES) expect(BUILD_TRANSITIONS[s]).toEqual([]);
  });

  it("reaches a terminal state from every state", () => {
    for (const start of BUILD_STATES) {
      const seen = new Set<BuildState>([start]);
      const todo = [start];
      while (todo.length) for (const n of BUILD_TRANSITIONS[todo.pop()!]) if (!seen.has(n)) { seen.add(n); todo.push(n); }
      expect(TERMINAL_BUILD_STATES.some((t) => seen.has(t)), start).toBe(true);
    }
  });

  it("allows cancel only before the end and retry only after a failure or cancel", () => {
    const cancellable = BUILD_STATES.filter(canCancel).sort();
    expect(cancellable).toEqual(["BUILDING", "COLLECTING", "DISPATCHING", "QUEUED"]);
    expect(BUILD_STATES.filter(canRetry).sort()).toEqual(["CANCELLED", "FAILED"]);
  });

  it("says which transition was refused, as a sentence", () => {
    expect(() => assertBuildTransition("SUCCEEDED", "QUEUED")).toThrow("A build cannot go from SUCCEEDED to QUEUED.");
  });
});

describe("slave state machine", () => {
  it("follows launchpad-buildd: IDLE→BUILDING→(ABORTING→)WAITING→IDLE, nothing else", () => {
    const legal = new Set(["IDLE>BUILDING", "BUILDING>WAITING", "BUILDING>ABORTING", "ABORTING>WAITING", "WAITING>IDLE"]);
    const states = Object.values(SlaveState);
    for (const from of states) {
      for (const to of states) {
        expect(canTransitionSlave(from, to), `${from} -> ${to}`).toBe(legal.has(`${from}>${to}`));
        if (!legal.has(`${from}>${to}`)) expect(() => assertSlaveTransition(from, to)).toThrow(IllegalTransitionError);
      }
    }
    expect(Object.keys(SLAVE_TRANSITIONS).sort()).toEqual([...states].sort());
  });
});

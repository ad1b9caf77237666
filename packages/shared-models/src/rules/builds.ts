// What asks for or filters builds: a build request's milestone and ref, a build state.
import { BUILD_STATES, type BuildState } from "../states.js";
import { accept, refuse, trimmed, type Checked } from "./checked.js";

export function checkBuildState(v: unknown): Checked<BuildState> {
  const s = trimmed(v).toUpperCase();
  if (!(BUILD_STATES as readonly string[]).includes(s)) return refuse(`${JSON.stringify(trimmed(v).slice(0, 40))} is not a build state; use one of ${BUILD_STATES.join(", ")}.`);
  return accept(s as BuildState);
}

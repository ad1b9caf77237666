// Names: of projects, builders, users, suites, architectures and milestones. The patterns match
// the database's CHECK constraints, so a name accepted here is one the database stores.
import { accept, CONTROL_CHARS, quoted, refuse, trimmed, type Checked } from "./checked.js";

export const PROJECT_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const BUILDER_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{0,62}$/;
export const USER_NAME_PATTERN = /^[a-z][a-z0-9_.-]{1,31}$/;
export const SUITE_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{0,63}$/;
/** Debian architecture names: amd64, arm64, i386, ppc64el, s390x, armhf, riscv64 … */
export const ARCHITECTURE_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** Architectures a project may choose (Debian's release architectures and riscv64). */
export const KNOWN_ARCHITECTURES = ["amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "riscv64", "s390x"] as const;
export const MAX_MILESTONE_LENGTH = 100;

export function checkProjectName(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give the project a name.");
  if (s.length > 63) return refuse("The name may be at most 63 characters long.");
  if (!PROJECT_NAME_PATTERN.test(s)) return refuse("The name may use lower-case letters, digits and dashes, and must start with a letter or digit.");
  return accept(s);
}

export function checkBuilderName(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give the builder a name.");
  if (!BUILDER_NAME_PATTERN.test(s)) return refuse("The builder name may use lower-case letters, digits, dots and dashes, and must start with a letter or digit.");
  return accept(s);
}

export function checkUserName(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give the user a name.");
  if (!USER_NAME_PATTERN.test(s)) return refuse("The user name must be 2 to 32 characters: lower-case letters, digits and _ . -, starting with a letter.");
  return accept(s);
}

export function checkSuite(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give the Debian suite to build (for example trixie).");
  if (!SUITE_NAME_PATTERN.test(s)) return refuse("The suite may use lower-case letters, digits, dots and dashes (for example trixie or bookworm).");
  return accept(s);
}

/** Any Debian architecture name (what a builder may build for). */
export function checkArchitectureName(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give a Debian architecture name such as amd64.");
  if (!ARCHITECTURE_NAME_PATTERN.test(s)) return refuse(`The architecture ${quoted(s)} is not a valid name: Debian architecture names use lower-case letters, digits and dashes, such as amd64.`);
  return accept(s);
}

/** An architecture a project may be built for. */
export function checkArchitecture(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse(`Choose an architecture: ${KNOWN_ARCHITECTURES.join(", ")}.`);
  if (!(KNOWN_ARCHITECTURES as readonly string[]).includes(s)) {
    return refuse(`${JSON.stringify(s.slice(0, 40))} is not an architecture lexbuilder knows; choose one of ${KNOWN_ARCHITECTURES.join(", ")}.`);
  }
  return accept(s);
}

export function checkMilestone(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give the milestone a name (for example 1.0 or beta-2).");
  if (s.length > MAX_MILESTONE_LENGTH) return refuse(`A milestone name may be at most ${MAX_MILESTONE_LENGTH} characters long.`);
  if (CONTROL_CHARS.test(s)) return refuse("A milestone name may not contain control characters.");
  return accept(s);
}

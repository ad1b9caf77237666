// The branch, tag or commit of a project's configuration to build. git's own ref-name rules
// (git check-ref-format, one-level names allowed) decide, so lexbuilder never refuses a ref
// git would clone nor passes one git would misread; a 40-hex commit id passes them as well.
import { accept, CONTROL_CHARS, refuse, trimmed, type Checked } from "./checked.js";

/** The database's limit (config_ref is 1..250 characters). */
export const MAX_CONFIG_REF_LENGTH = 250;
export const COMMIT_ID_PATTERN = /^[0-9a-f]{40}$/;

const CHARACTERS = "A branch, tag or commit may use letters, digits and / . _ -, must not start with a dash or dot, and must not contain '..', '@{', '//' or any of ~ ^ : ? * [ \\.";

export function checkConfigRef(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give a branch, tag or commit to build (for example main).");
  if (s.length > MAX_CONFIG_REF_LENGTH) return refuse(`A branch, tag or commit name may be at most ${MAX_CONFIG_REF_LENGTH} characters long.`);
  if (COMMIT_ID_PATTERN.test(s)) return accept(s);
  // Not a git rule: a ref reaches git's command line, where a leading dash is an option.
  if (s.startsWith("-")) return refuse("A branch, tag or commit name may not start with a dash.");
  if (CONTROL_CHARS.test(s) || /\s/.test(s) || /[~^:?*[\\]/.test(s)) return refuse(CHARACTERS);
  if (s === "@" || s.includes("..") || s.includes("@{") || s.includes("//")) return refuse(CHARACTERS);
  if (s.startsWith("/") || s.endsWith("/") || s.endsWith(".") || s.endsWith(".lock")) {
    return refuse("A branch, tag or commit name may not begin or end with '/', or end with '.' or '.lock'.");
  }
  if (s.split("/").some((part) => part.startsWith(".") || part.endsWith(".lock"))) {
    return refuse("No part of a branch or tag name may start with '.' or end with '.lock'.");
  }
  return accept(s);
}

// What makes up an account: its role, its password, the labels of its API tokens.
import { ROLES, type Role } from "../states.js";
import { accept, CONTROL_CHARS, refuse, text, trimmed, type Checked } from "./checked.js";

export const MIN_PASSWORD_LENGTH = 10;
const MAX_PASSWORD_LENGTH = 1024;
const MAX_TOKEN_LABEL_LENGTH = 80;

export function checkRole(v: unknown): Checked<Role> {
  const s = trimmed(v);
  if (!(ROLES as readonly string[]).includes(s)) return refuse(`Choose a role: ${ROLES.join(", ")}.`);
  return accept(s as Role);
}

/** A password as typed (never trimmed: blanks are part of it). */
export function checkPassword(v: unknown): Checked<string> {
  const p = text(v) ?? "";
  if (p.length < MIN_PASSWORD_LENGTH) return refuse(`The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`);
  if (p.length > MAX_PASSWORD_LENGTH) return refuse(`The password may be at most ${MAX_PASSWORD_LENGTH} characters long.`);
  return accept(p);
}

export function checkTokenLabel(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "" || s.length > MAX_TOKEN_LABEL_LENGTH || CONTROL_CHARS.test(s)) {
    return refuse(`Give the token a label of 1 to ${MAX_TOKEN_LABEL_LENGTH} characters, e.g. the script or CI job that uses it.`);
  }
  return accept(s);
}

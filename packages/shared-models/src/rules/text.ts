// Free text on a project: its title and description.
import { accept, CONTROL_CHARS, refuse, text, trimmed, type Checked } from "./checked.js";

const MAX_TITLE_LENGTH = 200;
const MAX_DESCRIPTION_LENGTH = 10_000;

export function checkTitle(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s.length > MAX_TITLE_LENGTH) return refuse(`The title may be at most ${MAX_TITLE_LENGTH} characters long.`);
  if (CONTROL_CHARS.test(s)) return refuse("The title may not contain control characters.");
  return accept(s);
}

/** Line breaks and tabs are kept (Windows line ends become \n); other control characters are not. */
export function checkDescription(v: unknown): Checked<string> {
  const s = (text(v) ?? "").replace(/\r\n/g, "\n");
  if (s.length > MAX_DESCRIPTION_LENGTH) return refuse(`The description may be at most ${MAX_DESCRIPTION_LENGTH} characters long.`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s)) return refuse("The description may not contain control characters.");
  return accept(s);
}

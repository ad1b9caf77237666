// live-build's terminal escapes. SGR colour codes (ESC[…m) become CSS classes; every other
// escape (cursor moves, titles, 256-colour and RGB codes) is dropped. Text is only ever
// escaped or handed to the browser as text, so a log cannot inject HTML.
import { escapeHtml } from "./format.js";

const NAMES = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
/** An escape longer than this without its end is not one: it is dropped, not waited for. */
const MAX_ESCAPE = 64;

interface Style {
  fg: string | null;
  bg: string | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
}

const plain = (): Style => ({ fg: null, bg: null, bold: false, dim: false, italic: false, underline: false });

function classOf(s: Style): string {
  const c: string[] = [];
  if (s.fg) c.push(`ansi-${s.fg}`);
  if (s.bg) c.push(`ansi-bg-${s.bg}`);
  if (s.bold) c.push("ansi-bold");
  if (s.dim) c.push("ansi-dim");
  if (s.italic) c.push("ansi-italic");
  if (s.underline) c.push("ansi-underline");
  return c.join(" ");
}

function applySgr(s: Style, params: string): void {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => (p === "" ? 0 : Number(p)));
  for (let i = 0; i < codes.length; i++) {
    const n = codes[i]!;
    if (n === 0) Object.assign(s, plain());
    else if (n === 1) s.bold = true;
    else if (n === 2) s.dim = true;
    else if (n === 3) s.italic = true;
    else if (n === 4) s.underline = true;
    else if (n === 22) s.bold = s.dim = false;
    else if (n === 23) s.italic = false;
    else if (n === 24) s.underline = false;
    else if (n >= 30 && n <= 37) s.fg = NAMES[n - 30]!;
    else if (n === 39) s.fg = null;
    else if (n >= 40 && n <= 47) s.bg = NAMES[n - 40]!;
    else if (n === 49) s.bg = null;
    else if (n >= 90 && n <= 97) s.fg = `bright-${NAMES[n - 90]}`;
    else if (n >= 100 && n <= 107) s.bg = `bright-${NAMES[n - 100]}`;
    // 256-colour and RGB forms: their arguments are skipped, the colour is not shown.
    else if ((n === 38 || n === 48) && codes[i + 1] === 5) i += 2;
    else if ((n === 38 || n === 48) && codes[i + 1] === 2) i += 4;
  }
}

/** A run of text and the classes it is shown with ("" for plain). */
export type Piece = [cls: string, text: string];

// CSI (ESC [ params intermediates final), OSC (ESC ] … BEL or ESC \), a character-set choice
// (ESC ( B), or ESC and one character.
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b(?:\[([0-?]*)([ -/]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]+[0-~]|[@-Z\\-_])/y;
// eslint-disable-next-line no-control-regex
const INCOMPLETE = /\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[ -/]+)?$/;

/**
 * Turns text with escapes into pieces, chunk by chunk: the colour in force and an escape cut
 * in two at the end of a chunk carry over to the next (the live log arrives in pieces).
 */
export class AnsiParser {
  private style = plain();
  private carry = "";

  push(chunk: string, final = false): Piece[] {
    let text = this.carry + chunk;
    this.carry = "";
    if (!final) {
      const tail = INCOMPLETE.exec(text);
      if (tail && tail[0].length <= MAX_ESCAPE) {
        this.carry = tail[0];
        text = text.slice(0, tail.index);
      }
    }
    const pieces: Piece[] = [];
    const add = (t: string) => {
      if (!t) return;
      const cls = classOf(this.style);
      const last = pieces[pieces.length - 1];
      if (last && last[0] === cls) last[1] += t;
      else pieces.push([cls, t]);
    };
    let from = 0;
    for (let at = text.indexOf("\x1b"); at >= 0; at = text.indexOf("\x1b", from)) {
      add(text.slice(from, at));
      ESCAPE.lastIndex = at;
      const m = ESCAPE.exec(text);
      if (!m) {
        from = at + 1; // a lone ESC: dropped
        continue;
      }
      if (m[3] === "m" && m[2] === "") applySgr(this.style, m[1]!);
      from = ESCAPE.lastIndex;
    }
    add(text.slice(from));
    return pieces;
  }
}

/** Plain text and the ranges [from, to, classes] of its coloured runs (the live log's form). */
export function piecesToRanges(pieces: Piece[]): { text: string; styles: [number, number, string][] } {
  let text = "";
  const styles: [number, number, string][] = [];
  for (const [cls, t] of pieces) {
    if (cls) styles.push([text.length, text.length + t.length, cls]);
    text += t;
  }
  return { text, styles };
}

export function piecesToHtml(pieces: Piece[]): string {
  return pieces.map(([cls, t]) => (cls ? `<span class="${cls}">${escapeHtml(t)}</span>` : escapeHtml(t))).join("");
}

/** Text with escapes as escaped HTML with colour classes. */
export function ansiToHtml(text: string): string {
  return piecesToHtml(new AnsiParser().push(text, true));
}

export function piecesToText(pieces: Piece[]): string {
  return pieces.map((p) => p[1]).join("");
}

/** Text without any escapes. */
export function stripAnsi(text: string): string {
  return piecesToText(new AnsiParser().push(text, true));
}

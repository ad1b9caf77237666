// What every rule returns: the cleaned value, or one sentence a person can act on. The same
// sentence reaches a form, the API, the admin CLI, a daemon's config error and an XML-RPC fault.

export type Checked<T> = { value: T; error?: undefined } | { value?: undefined; error: string };

export const accept = <T>(value: T): Checked<T> => ({ value });
export const refuse = <T = never>(error: string): Checked<T> => ({ error });

/** Form values arrive as strings; JSON ones as numbers, booleans, null. */
export function text(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

/** The trimmed text of `v`, "" when absent. */
export function trimmed(v: unknown): string {
  return text(v)?.trim() ?? "";
}

// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** A value shown inside a sentence: quoted, and cut so a huge input cannot flood a log. */
export function quoted(value: string, max = 40): string {
  return JSON.stringify(value.length > max ? value.slice(0, max) + "…" : value);
}

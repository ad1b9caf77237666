// A page rendered once and sent many times: the view is rendered with markers in place of the
// parts that belong to one session (the CSRF token, the user's name, the flash messages), and
// each answer fills them in. So a cached page never carries anyone's token or messages, and a
// page shared by several users (same role and visibility) names each its own user.
import { createHash, randomBytes } from "node:crypto";
import type { Request, Response } from "express";
import { csrfToken } from "../auth.js";
import { escapeHtml, flashes } from "../format.js";

type Slot = "csrf" | "name" | "flash";

/** Random per process: no stored text (a project description, a log line) can contain one. */
const MARK = randomBytes(12).toString("hex");
const MARKERS: Record<Slot, string> = { csrf: `lxbcsrf${MARK}`, name: `lxbname${MARK}`, flash: `lxbflash${MARK}` };
const SLOT_OF = new Map(Object.entries(MARKERS).map(([slot, marker]) => [marker, slot as Slot]));
const SPLIT = new RegExp(`(${Object.values(MARKERS).join("|")})`);

export interface Fragment {
  /** texts[i] comes before slots[i]; texts has one more element than slots. */
  texts: Buffer[];
  slots: Slot[];
  bytes: number;
  /** Identifies the rendered text (the ETag adds the per-request parts). */
  hash: string;
}

/** Renders a view for caching: the per-session locals are markers. */
export function renderFragment(res: Response, view: string, locals: Record<string, unknown>): Promise<Fragment> {
  const user = res.locals.user as { id: number; name: string; role: string } | null;
  const options = {
    ...res.locals,
    ...locals,
    user: user ? { id: user.id, name: MARKERS.name, role: user.role } : null,
    csrf: () => MARKERS.csrf,
    flash: [],
    flashSlot: MARKERS.flash,
  };
  return new Promise((resolve, reject) => {
    res.app.render(view, options, (err, html) => {
      if (err) return reject(err);
      const parts = html.split(SPLIT);
      const texts: Buffer[] = [];
      const slots: Slot[] = [];
      parts.forEach((p, i) => (i % 2 === 0 ? texts.push(Buffer.from(p, "utf8")) : slots.push(SLOT_OF.get(p)!)));
      resolve({ texts, slots, bytes: texts.reduce((n, b) => n + b.length, 0), hash: createHash("sha1").update(html).digest("base64url").slice(0, 20) });
    });
  });
}

/** FNV-1a of the per-request parts: tells two sessions' answers apart in the ETag, cheaply. */
function fnv1a(parts: readonly string[]): string {
  let h = 0x811c9dc5;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) h = Math.imul(h ^ p.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 0xff, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

/**
 * Sends a fragment with this request's token, user name and flash messages filled in. The
 * cached pieces go to the socket as they are (one writev, no copy of the page per request).
 */
export function sendFragment(req: Request, res: Response, fragment: Fragment, status: number): void {
  const user = res.locals.user as { name: string } | null;
  const values: Record<Slot, string | null> = { csrf: null, name: null, flash: null };
  const value = (slot: Slot): string => {
    let v = values[slot];
    if (v === null) {
      // The token is made only when the page has a form (a session token is then saved with the session).
      v = values[slot] = slot === "csrf" ? csrfToken(req, res) : slot === "name" ? escapeHtml(user?.name ?? "") : flashes((res.locals.flash as { kind: string; text: string }[]) ?? []);
    }
    return v;
  };
  const chunks: (Buffer | string)[] = [];
  let length = 0;
  fragment.texts.forEach((t, i) => {
    chunks.push(t);
    length += t.length;
    const slot = fragment.slots[i];
    if (slot) {
      const v = value(slot);
      chunks.push(v);
      length += Buffer.byteLength(v);
    }
  });
  res.status(status);
  res.setHeader("Content-Type", "text/html; charset=utf-8");
  // The page's hash and its per-request parts (a browser that changed sessions must not get a 304).
  res.setHeader("ETag", `W/"${fragment.hash}-${fnv1a([values.csrf ?? "", values.name ?? "", values.flash ?? ""])}"`);
  if (status === 200 && req.fresh) {
    res.status(304).end();
    return;
  }
  res.setHeader("Content-Length", length);
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  res.cork();
  for (const c of chunks) res.write(c);
  res.end();
  res.uncork();
}

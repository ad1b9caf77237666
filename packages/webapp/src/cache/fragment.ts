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

/** Sends a fragment with this request's token, user name and flash messages filled in. */
export function sendFragment(req: Request, res: Response, fragment: Fragment, status: number): void {
  const user = res.locals.user as { name: string } | null;
  const values: Record<Slot, Buffer | null> = { csrf: null, name: null, flash: null };
  const value = (slot: Slot): Buffer => {
    let v = values[slot];
    if (!v) {
      // The token is made (and the session saved) only when the page has a form, as before.
      const text = slot === "csrf" ? csrfToken(req) : slot === "name" ? escapeHtml(user?.name ?? "") : flashes((res.locals.flash as { kind: string; text: string }[]) ?? []);
      v = values[slot] = Buffer.from(text, "utf8");
    }
    return v;
  };
  const chunks: Buffer[] = [];
  const perRequest = createHash("sha1");
  fragment.texts.forEach((t, i) => {
    chunks.push(t);
    const slot = fragment.slots[i];
    if (slot) {
      const v = value(slot);
      chunks.push(v);
      perRequest.update(v);
    }
  });
  res.status(status);
  res.set("Content-Type", "text/html; charset=utf-8");
  // An ETag of the parts instead of Express's hash of the whole body.
  res.set("ETag", `W/"${fragment.hash}-${perRequest.digest("base64url").slice(0, 12)}"`);
  res.send(Buffer.concat(chunks));
}

// Puts the session's user on the request (re-read each time: a deactivated or demoted user
// loses access at once, not when the session ends).
import type { Request } from "express";
import { getUserById } from "@lexbuilder/shared-models";
import type { AppContext } from "./context.js";

export async function loadUser(ctx: AppContext, req: Request): Promise<void> {
  const id = req.session?.userId;
  if (typeof id !== "number") return;
  const user = await getUserById(ctx.pool, id);
  if (!user || !user.active) {
    delete req.session.userId;
    return;
  }
  req.user = { id: user.id, name: user.name, role: user.role };
  req.authVia = "session";
}

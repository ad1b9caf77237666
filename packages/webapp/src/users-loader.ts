// Puts the session's user on the request (re-read each time: a deactivated or demoted user
// loses access at once, not when the session ends). The session store reads the session and
// its user in one query (SessionUserStore); the user travels on the session object under a
// key that never reaches JSON, so it is neither stored nor seen as a change of the session.
import type { Request } from "express";
import type { Store } from "express-session";
import { getSessionWithUser, getUserById, type Pool, type User } from "@lexbuilder/shared-models";
import type { AppContext } from "./context.js";

const USER_KEY = "lexbuilderCurrentUser";

interface Carried {
  user: User | null;
  toJSON(): undefined;
}

/** Wraps connect-pg-simple's store: get() is one query for the session and its user. */
export function withSessionUser<S extends Store>(store: S, pool: Pool): S {
  store.get = (sid, callback) => {
    getSessionWithUser(pool, sid).then(
      (found) => {
        if (!found) return callback(null, null);
        const carried: Carried = { user: found.user, toJSON: () => undefined };
        callback(null, { ...found.sess, [USER_KEY]: carried } as never);
      },
      (err: unknown) => callback(err),
    );
  };
  return store;
}

export async function loadUser(ctx: AppContext, req: Request): Promise<void> {
  const session = req.session as unknown as (Record<string, unknown> & { userId?: number }) | undefined;
  const id = session?.userId;
  const carried = session?.[USER_KEY] as Carried | undefined;
  if (session && carried) delete session[USER_KEY];
  if (typeof id !== "number") return;
  const user = carried && carried.user?.id === id ? carried.user : await getUserById(ctx.pool, id);
  if (!user || !user.active) {
    delete req.session.userId;
    return;
  }
  req.user = { id: user.id, name: user.name, role: user.role };
  req.authVia = "session";
}

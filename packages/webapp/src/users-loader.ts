// Puts the session's user on the request (re-read each time, or taken from the session cache
// that a change of the user empties: a deactivated or demoted user loses access at once, not
// when the session ends). The session store reads the session and
// its user in one query (SessionUserStore); the user travels on the session object under a
// key that never reaches JSON, so it is neither stored nor seen as a change of the session.
import type { Request } from "express";
import type { Store } from "express-session";
import { getSessionWithUser, getUserById, type Pool, type User } from "@lexbuilder/shared-models/db";
import type { AppContext } from "./context.js";
import { sessionHash, type CachedSession, type WebCaches } from "./cache/web-caches.js";

const USER_KEY = "lexbuilderCurrentUser";

interface Carried {
  user: User | null;
  toJSON(): undefined;
}

/**
 * Wraps connect-pg-simple's store: get() is one query for the session and its user, or none
 * when the session cache has it (web-caches.ts). This process's own writes and destroys drop
 * the cached copy as soon as they are done; other writers' through the sessions trigger.
 */
export function withSessionUser<S extends Store>(store: S, pool: Pool, caches?: WebCaches): S {
  const read = async (sid: string): Promise<CachedSession | null> => {
    const found = await getSessionWithUser(pool, sid);
    // The hash (how the sessions trigger names it) is worked out on a miss only.
    return found ? { json: JSON.stringify(found.sess), user: found.user, hash: caches ? sessionHash(sid) : "" } : null;
  };
  store.get = (sid, callback) => {
    const loaded = caches ? caches.sessions.get(sid, () => read(sid), (s) => (s ? {} : null)) : read(sid);
    loaded.then(
      (found) => {
        if (!found) return callback(null, null);
        const carried: Carried = { user: found.user, toJSON: () => undefined };
        callback(null, { ...(JSON.parse(found.json) as object), [USER_KEY]: carried } as never);
      },
      (err: unknown) => callback(err),
    );
  };
  if (caches) {
    const forget = (sid: string) => caches.sessions.delete(sid);
    const set = store.set.bind(store);
    store.set = (sid, sess, callback) => {
      forget(sid);
      set(sid, sess, (err?: unknown) => {
        forget(sid);
        callback?.(err);
      });
    };
    const destroy = store.destroy.bind(store);
    store.destroy = (sid, callback) => {
      forget(sid);
      destroy(sid, (err?: unknown) => {
        forget(sid);
        callback?.(err);
      });
    };
  }
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

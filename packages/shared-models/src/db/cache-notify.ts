// The lexbuilder_cache channel (migrations/003_cache_notify.sql): triggers announce every write
// that can change what the webapp's in-memory caches hold. This file names the channel and
// reads its payloads; the triggers are the only writers besides cacheProbe.
import type { Channel } from "./channels.js";
import { notify } from "./listen.js";
import type { Queryable } from "./pool.js";

/** Typed as a Channel so Listener.on accepts it; it is not one of the master's channels. */
export const CACHE_CHANNEL = "lexbuilder_cache" as unknown as Channel;

export type CacheNotice =
  | { t: "data" }
  | { t: "log"; ids: number[] }
  | { t: "user"; id: number }
  | { t: "sessions"; h?: string[] }
  | { t: "tokens" }
  | { t: "probe"; nonce: string };

/** A payload of the channel, or null for anything unexpected (the caller then drops everything). */
export function parseCacheNotice(payload: string): CacheNotice | null {
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!v || typeof v !== "object") return null;
  const o = v as Record<string, unknown>;
  switch (o.t) {
    case "data":
    case "tokens":
      return { t: o.t };
    case "log":
      return Array.isArray(o.ids) && o.ids.every((x) => typeof x === "number") ? { t: "log", ids: o.ids as number[] } : null;
    case "user":
      return typeof o.id === "number" ? { t: "user", id: o.id } : null;
    case "sessions":
      if (o.h === undefined || o.h === null) return { t: "sessions" };
      return Array.isArray(o.h) && o.h.every((x) => typeof x === "string") ? { t: "sessions", h: o.h as string[] } : null;
    case "probe":
      return typeof o.nonce === "string" ? { t: "probe", nonce: o.nonce } : null;
    default:
      return null;
  }
}

/**
 * Sends a probe through the channel: a listener that receives it knows its LISTEN is in place,
 * so no write after this point can go unannounced to it.
 */
export async function cacheProbe(db: Queryable, nonce: string): Promise<void> {
  await notify(db, CACHE_CHANNEL, { t: "probe", nonce });
}

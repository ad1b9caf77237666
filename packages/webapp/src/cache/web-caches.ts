// The webapp's caches and what empties them. Sessions (with their user), API-token owners,
// rendered page bodies and API list answers are kept for at most ttlMs (1 s by default) and
// dropped earlier, on the lexbuilder_cache notifications the database triggers send
// (migrations/003_cache_notify.sql), and at once by this process's own writes. Caching is on
// only while the LISTEN connection is known to be in place: from the moment a probe sent
// through the channel comes back until the connection drops; a reconnect empties everything
// (notifications may have been missed meanwhile).
import { createHash, randomBytes } from "node:crypto";
import {
  CACHE_CHANNEL,
  cacheProbe,
  parseCacheNotice,
  type Listener,
  type Pool,
  type User,
} from "@lexbuilder/shared-models/db";
import type { Logger } from "@lexbuilder/shared-models/logger";
import { TtlCache } from "./ttl-cache.js";
import type { Fragment } from "./fragment.js";

export const DEFAULT_CACHE_TTL_MS = 1000;

export interface CachedSession {
  /** The stored session as JSON: every request parses its own copy (express-session mutates it). */
  json: string;
  user: User | null;
  /** sha256 hex of the session id: the sessions trigger names sessions so. */
  hash: string;
}

export interface CachedPage {
  fragment: Fragment;
  status: number;
  /** Whether this answer may be kept (a page of a running build changes every second). */
  cacheable: boolean;
  /** Build ids whose log appends must drop it. */
  tags: number[];
}

export interface CachedJson {
  body: Buffer;
  etag: string;
}

/** sha256 hex of a session id, as the triggers name sessions. */
export function sessionHash(sid: string): string {
  return createHash("sha256").update(sid, "utf8").digest("hex");
}

export class WebCaches {
  /** Keyed by session id (in memory only; notifications name sessions by its sha256). */
  readonly sessions: TtlCache<CachedSession | null>;
  readonly tokens: TtlCache<User | null>;
  readonly pages: TtlCache<CachedPage>;
  readonly json: TtlCache<CachedJson>;
  private listening = false;
  private readonly nonce = randomBytes(12).toString("hex");
  private probeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pool: Pool,
    private readonly listener: Listener | undefined,
    private readonly log: Logger,
    readonly ttlMs = DEFAULT_CACHE_TTL_MS,
  ) {
    const on = () => this.active;
    this.sessions = new TtlCache({ ttlMs, maxEntries: 20_000 }, on);
    this.tokens = new TtlCache({ ttlMs, maxEntries: 5_000 }, on);
    this.pages = new TtlCache({ ttlMs, maxEntries: 2_000, maxBytes: 64 * 1024 * 1024 }, on);
    this.json = new TtlCache({ ttlMs, maxEntries: 2_000, maxBytes: 32 * 1024 * 1024 }, on);
    if (listener && ttlMs > 0) {
      listener.on(CACHE_CHANNEL, (payload) => this.onNotice(payload));
      this.probe();
    }
  }

  /** Whether cached answers may be served now. */
  get active(): boolean {
    return this.listening && !!this.listener?.connected;
  }

  /** Sends probes until one comes back through LISTEN (then invalidations are sure to arrive). */
  private probe(): void {
    if (this.listening || this.probeTimer) return;
    const send = () => {
      this.probeTimer = null;
      if (this.listening) return;
      if (this.listener?.connected) cacheProbe(this.pool, this.nonce).catch((err: Error) => this.log.warn({ err: err.message }, "cache probe failed; pages are read uncached"));
      this.probeTimer = setTimeout(send, 500);
      this.probeTimer.unref();
    };
    send();
  }

  private onNotice(payload: string | null): void {
    if (payload === null) {
      // Reconnected: whatever changed meanwhile was not announced to us.
      this.clearAll();
      return;
    }
    const notice = parseCacheNotice(payload);
    if (!notice) {
      this.log.warn({ payload: payload.slice(0, 200) }, "unknown cache notification; emptying the caches");
      this.clearAll();
      return;
    }
    switch (notice.t) {
      case "probe":
        if (notice.nonce === this.nonce && !this.listening) {
          this.clearAll();
          this.listening = true;
          if (this.probeTimer) clearTimeout(this.probeTimer);
          this.probeTimer = null;
        }
        return;
      case "data":
        this.dataChanged();
        return;
      case "log":
        this.pages.deleteTagged(notice.ids);
        this.json.deleteTagged(notice.ids);
        return;
      case "user":
        this.userChanged(notice.id);
        return;
      case "sessions":
        if (!notice.h) this.sessions.clear();
        else {
          const gone = new Set(notice.h);
          this.sessions.deleteWhere((s) => !!s && gone.has(s.hash));
        }
        return;
      case "tokens":
        this.tokens.clear();
        return;
    }
  }

  clearAll(): void {
    this.sessions.clear();
    this.tokens.clear();
    this.pages.clear();
    this.json.clear();
  }

  /** Something pages show changed (builds, projects, members, files, manifests). */
  dataChanged(): void {
    this.pages.clear();
    this.json.clear();
  }

  /** A user changed: their sessions and tokens are re-read, and pages (which name users) too. */
  userChanged(userId: number): void {
    this.sessions.deleteWhere((s) => s?.user?.id === userId);
    this.tokens.deleteWhere((u) => u?.id === userId);
    this.dataChanged();
  }

  tokensChanged(): void {
    this.tokens.clear();
  }

  stop(): void {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.listening = false;
    this.clearAll();
  }
}

import type { Listener, Pool } from "@lexbuilder/shared-models/db";
import type { Logger } from "@lexbuilder/shared-models/logger";
import type { WebappConfig } from "./config.js";
import type { WebCaches } from "./cache/web-caches.js";

export interface AppContext {
  pool: Pool;
  /** LISTEN/NOTIFY connection for live views; without it the live log falls back to polling. */
  listener?: Listener;
  config: WebappConfig;
  log: Logger;
  /** Sessions, token owners and pages in memory (cache/web-caches.ts); made by createApp. */
  caches?: WebCaches;
}

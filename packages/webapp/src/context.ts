import type { Logger, Listener, Pool } from "@lexbuilder/shared-models";
import type { WebappConfig } from "./config.js";

export interface AppContext {
  pool: Pool;
  /** LISTEN/NOTIFY connection for live views; without it the live log falls back to polling. */
  listener?: Listener;
  config: WebappConfig;
  log: Logger;
}

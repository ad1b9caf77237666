// What the master's parts share: configuration, database, logger, metrics, and the RPC clients
// of each builder (one for long polls, one for control calls, so a waiting status() never
// delays a build() or abort()).
import type { Pool } from "@lexbuilder/shared-models/db";
import type { Logger } from "@lexbuilder/shared-models/logger";
import { RpcClient } from "@lexbuilder/shared-models/protocol";
import type { MasterConfig } from "./config.js";
import type { Metrics } from "./metrics.js";
import type { InFlight } from "./in-flight.js";

export interface BuilderEndpoint {
  id: number;
  name: string;
  url: string;
  token: string;
}

export class BuilderClients {
  readonly poll: RpcClient;
  readonly control: RpcClient;
  constructor(
    readonly endpoint: BuilderEndpoint,
    config: MasterConfig,
  ) {
    this.poll = new RpcClient({ url: endpoint.url, token: endpoint.token, timeoutMs: config.callTimeoutMs });
    this.control = new RpcClient({ url: endpoint.url, token: endpoint.token, timeoutMs: config.controlTimeoutMs });
  }
  close(): void {
    this.poll.close();
    this.control.close();
  }
}

export interface MasterContext {
  config: MasterConfig;
  pool: Pool;
  log: Logger;
  metrics: Metrics;
  /** The clients of a builder the watcher pool knows (null when unknown or disabled). */
  clients(builderId: number): BuilderClients | null;
  /** Dispatch RPCs in flight, by build id: the watcher leaves these builds alone. */
  dispatching: InFlight;
  /** True once stop() began: loops end, nothing new starts. */
  stopping(): boolean;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// The master assembled: LISTEN/NOTIFY wiring, the watcher pool, dispatcher, collector,
// canceller, scheduler, janitor and the periodic sweep. Started only while holding the lock.
import {
  Channel,
  createPool,
  finishCancel,
  giveBackBuild,
  Listener,
  listOrphanedActiveBuilds,
  type Pool,
} from "@lexbuilder/shared-models/db";
import type { Logger } from "@lexbuilder/shared-models/logger";
import { Canceller } from "./canceller.js";
import { Collector } from "./collector.js";
import type { MasterConfig } from "./config.js";
import { errorMessage, type MasterContext } from "./context.js";
import { Dispatcher } from "./dispatcher.js";
import { Janitor } from "./janitor.js";
import { Judge } from "./judge.js";
import { Metrics } from "./metrics.js";
import { Scheduler } from "./scheduler.js";
import { WatcherPool } from "./watcher.js";
import { InFlight } from "./in-flight.js";
import { Notifier } from "./notifier/notifier.js";

/**
 * How long a stop waits for watch loops, dispatches and collections in flight. What is still
 * running then is left as it stands: DISPATCHING, BUILDING and COLLECTING are resumed by the
 * next master, so the stop never has to wait for a long download.
 */
const STOP_GRACE_MS = 3000;
/** A pool's end() waits for every borrowed connection; one still busy must not hold the exit. */
const POOL_END_GRACE_MS = 500;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The dispatcher's own connections: a claim and a batch of started marks at a time, plus one spare. */
const DISPATCH_POOL_SIZE = 3;

export class Master {
  readonly pool: Pool;
  private readonly dispatchPool: Pool;
  readonly metrics = new Metrics();
  readonly ctx: MasterContext;
  readonly judge: Judge;
  readonly dispatcher: Dispatcher;
  readonly collector: Collector;
  readonly canceller: Canceller;
  readonly watchers: WatcherPool;
  readonly scheduler: Scheduler;
  readonly janitor: Janitor;
  readonly notifier: Notifier;
  private readonly listener: Listener;
  private sweepTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    readonly config: MasterConfig,
    readonly log: Logger,
  ) {
    this.pool = createPool(config.databaseUrl, { max: config.dbPoolSize, applicationName: "lexbuilder-master" });
    const dispatching = new InFlight();
    this.ctx = {
      config,
      pool: this.pool,
      log,
      metrics: this.metrics,
      clients: (id) => this.watchers.clients(id),
      dispatching,
      stopping: () => this.stopped,
    };
    this.judge = new Judge(this.ctx);
    this.dispatchPool = createPool(config.databaseUrl, { max: DISPATCH_POOL_SIZE, applicationName: "lexbuilder-master-dispatch" });
    this.dispatcher = new Dispatcher(this.ctx, this.judge, this.dispatchPool);
    this.collector = new Collector(this.ctx, this.judge);
    this.canceller = new Canceller(this.ctx, this.judge);
    this.watchers = new WatcherPool(this.ctx, {
      judge: this.judge,
      collector: this.collector,
      canceller: this.canceller,
      wakeDispatcher: () => this.dispatcher.wake(),
    });
    this.scheduler = new Scheduler(this.ctx);
    this.janitor = new Janitor(this.ctx);
    this.notifier = new Notifier(
      {
        databaseUrl: config.databaseUrl,
        publicUrl: config.publicUrl,
        smtpUrl: config.smtpUrl,
        mailFrom: config.mailFrom,
        policy: config.webhookPolicy,
        timeoutMs: config.notifyTimeoutMs,
        retryBaseMs: config.notifyRetryBaseMs,
        pollMs: config.notifyPollMs,
        concurrency: config.notifyConcurrency,
        userAgent: "lexbuilder-master",
      },
      log.child({ component: "notifier" }),
    );
    this.listener = new Listener(config.databaseUrl, log);
  }

  async start(): Promise<void> {
    this.listener.on(Channel.builds, (payload) => {
      // Only a queued build makes a dispatch possible (a freed builder comes through `builders`);
      // waking on every state change ran a pass per DISPATCHING/BUILDING/COLLECTING of 100 builds.
      if (payload === null || payload.includes('"QUEUED"')) this.dispatcher.wake();
      if (payload === null || payload.includes('"CANCELLING"')) this.canceller.wake();
      // A claim writes no outbox event; every other change a watcher could hear of may have.
      if (payload === null || !payload.includes('"DISPATCHING"')) this.notifier.wake();
    });
    this.listener.on(Channel.notifications, () => this.notifier.wake());
    this.listener.on(Channel.builders, (payload) => {
      const note = (payload ? JSON.parse(payload) : {}) as { id?: unknown; state?: unknown; contact?: unknown };
      const id = Number(note.id);
      // A watcher's own record of an answer: its watch knows already, and only a builder that
      // became idle can take work (with 100 builds dispatched at once, each BUILDING answer
      // cost a row re-read and a dispatch pass).
      if (note.contact === true && Number.isSafeInteger(id)) {
        if (note.state === "IDLE") this.dispatcher.wake();
        return;
      }
      if (Number.isSafeInteger(id)) void this.watchers.syncOne(id);
      else void this.watchers.sync();
      this.dispatcher.wake();
    });
    this.listener.on(Channel.projects, () => void this.scheduler.reload());
    await this.listener.start();
    await this.watchers.sync();
    await this.scheduler.reload();
    this.dispatcher.wake();
    this.canceller.wake();
    this.janitor.start();
    this.notifier.start();
    this.sweepTimer = setInterval(() => void this.sweep(), this.config.sweepMs);
    this.sweepTimer.unref();
    this.log.info({ builders: this.watchers.size, schedules: this.scheduler.scheduledProjects }, "master started");
  }

  /** The safety net: anything a lost notification would have missed. */
  async sweep(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.watchers.sync();
      this.dispatcher.wake();
      this.canceller.wake();
      await this.scheduler.reload();
      for (const b of await listOrphanedActiveBuilds(this.pool)) {
        if (this.ctx.dispatching.has(b.id) || !b.cookie) continue;
        if (b.state === "CANCELLING") {
          if (await finishCancel(this.pool, b.id)) this.metrics.countFinished("CANCELLED");
        } else {
          await giveBackBuild(this.pool, b.id, b.cookie, {
            counted: false,
            message: "Its builder was removed; the build went back to the queue.",
            maxRequeues: this.config.requeueLimit,
          });
        }
      }
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, "sweep failed");
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.janitor.stop();
    const notifierStopped = this.notifier.stop(STOP_GRACE_MS);
    await this.scheduler.stop();
    await this.listener.stop();
    // Closing the watchers gives up their long polls (30 s each) at once.
    const inFlight = Promise.allSettled([this.watchers.stop(), this.dispatcher.drain(), this.collector.drain(), notifierStopped]);
    await Promise.race([inFlight, delay(STOP_GRACE_MS)]);
    await Promise.race([Promise.allSettled([this.pool.end(), this.dispatchPool.end()]), delay(POOL_END_GRACE_MS)]);
  }
}

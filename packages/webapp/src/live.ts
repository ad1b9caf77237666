// The live build page: Server-Sent Events fed by LISTEN/NOTIFY (Channel.log and Channel.builds)
// carry the log's new lines, the state, and the page's facts whenever they change,
// resuming from a byte offset (the event id), with a slow timer as a safety net for missed
// notifications or a missing listener.
import type { Request, Response } from "express";
import {
  Channel,
  getBuildRow,
  readLog,
  type Build,
  type BuildDetail,
  type Listener,
} from "@lexbuilder/shared-models/db";
import { checkLogOffset } from "@lexbuilder/shared-models/rules";
import { TERMINAL_BUILD_STATES } from "@lexbuilder/shared-models/states";
import type { AppContext } from "./context.js";
import { completeUtf8Length, drained } from "./logtext.js";
import { requestLog } from "./access-log.js";
import { AnsiParser, piecesToRanges } from "./ansi.js";

const CHUNK_BYTES = 256 * 1024;
const SAFETY_NET_MS = 10_000;

type Waker = () => void;

/** One handler per channel, fanned out to the streams that watch a build. */
class LiveHub {
  private watchers = new Map<number, Set<Waker>>();
  constructor(listener: Listener) {
    const wake = (payload: string | null) => {
      if (payload === null) {
        // Reconnected: anything may have been missed.
        for (const set of this.watchers.values()) for (const w of set) w();
        return;
      }
      let id: unknown;
      try {
        id = (JSON.parse(payload) as { id?: unknown }).id;
      } catch {
        return;
      }
      for (const w of this.watchers.get(Number(id)) ?? []) w();
    };
    listener.on(Channel.log, wake);
    listener.on(Channel.builds, wake);
  }
  watch(buildId: number, waker: Waker): () => void {
    let set = this.watchers.get(buildId);
    if (!set) {
      set = new Set();
      this.watchers.set(buildId, set);
    }
    set.add(waker);
    return () => {
      set!.delete(waker);
      if (set!.size === 0) this.watchers.delete(buildId);
    };
  }
}

const hubs = new WeakMap<Listener, LiveHub>();
function hubFor(listener: Listener | undefined): LiveHub | null {
  if (!listener) return null;
  let hub = hubs.get(listener);
  if (!hub) {
    hub = new LiveHub(listener);
    hubs.set(listener, hub);
  }
  return hub;
}

/** A given, valid offset (the log offset rule), else null: a bad one restarts from the top, never ends the stream. */
function parseOffset(value: unknown): number | null {
  return value === undefined ? null : (checkLogOffset(value).value ?? null);
}

/** The page's facts about the build (state, times, builder, files, buttons) as HTML, and its title. */
export type FactsRenderer = () => Promise<{ html: string; title: string }>;

/** What the facts show changes only when one of these does. */
function factsKey(row: Build): string {
  return JSON.stringify([row.state, row.dispatchedAt, row.startedAt, row.finishedAt, row.builderId, row.attempt, row.configRevision, row.slaveResult, row.failureMessage]);
}

export async function streamLog(ctx: AppContext, req: Request, res: Response, build: BuildDetail, renderFacts?: FactsRenderer): Promise<void> {
  let offset = parseOffset(req.get("last-event-id")) ?? parseOffset(req.query.offset) ?? 0;
  let lastState = "";
  let lastFacts = "";
  const ansi = new AnsiParser();
  let closed = false;
  res.status(200);
  res.set({
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
  });
  res.flushHeaders();
  res.write("retry: 3000\n\n");

  let running = false;
  let again = false;
  const send = (text: string) => {
    if (!closed) res.write(text);
  };
  const finish = () => {
    if (closed) return;
    closed = true;
    cleanup();
    res.end();
  };

  const pump = async (): Promise<void> => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        const row = await getBuildRow(ctx.pool, build.id);
        if (!row || closed) return finish();
        if (offset > row.logSize) offset = row.logSize;
        const terminal = TERMINAL_BUILD_STATES.includes(row.state);
        while (offset < row.logSize && !closed) {
          const chunk = await readLog(ctx.pool, build.id, offset, Math.min(CHUNK_BYTES, row.logSize - offset));
          if (chunk.length === 0) break;
          let len = completeUtf8Length(chunk);
          if (len === 0) {
            // Only a partial character so far: wait for the rest (or send it raw at the end).
            if (!terminal) break;
            len = chunk.length;
          }
          offset += len;
          const { text, styles } = piecesToRanges(ansi.push(chunk.subarray(0, len).toString("utf8"), terminal && offset >= row.logSize));
          // Plain text, and the coloured runs as ranges only when there are any.
          send(`id: ${offset}\nevent: log\ndata: ${JSON.stringify(styles.length ? { offset, text, styles } : { offset, text })}\n\n`);
          await drained(res);
        }
        if (row.state !== lastState) {
          lastState = row.state;
          send(`event: state\ndata: ${JSON.stringify({ state: row.state })}\n\n`);
        }
        const key = factsKey(row);
        if (renderFacts && key !== lastFacts) {
          lastFacts = key;
          send(`event: facts\ndata: ${JSON.stringify(await renderFacts())}\n\n`);
        }
        if (terminal && offset >= row.logSize) {
          send(`event: end\ndata: ${JSON.stringify({ state: row.state, offset })}\n\n`);
          return finish();
        }
      } while (again && !closed);
    } catch (err) {
      requestLog(req, ctx.log).warn({ err }, "live log stream failed");
      finish();
    } finally {
      running = false;
    }
  };

  const wake = () => {
    void pump();
  };
  const unwatch = hubFor(ctx.listener)?.watch(build.id, wake) ?? (() => {});
  const timer = setInterval(() => {
    send(": keep-alive\n\n");
    wake();
  }, ctx.listener?.connected ? SAFETY_NET_MS : 1000);
  function cleanup() {
    clearInterval(timer);
    unwatch();
  }
  req.on("close", () => {
    closed = true;
    cleanup();
  });
  await pump();
}

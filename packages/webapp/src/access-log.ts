// Access logs: one pino line per request ("request completed", or "request errored" for a 5xx), with the request's id, method, URL and address, the status, the time taken and the
// user — never a header, so no cookie or token can reach the log. It replaces pino-http, whose
// per-request child loggers cost about a tenth of the webapp's CPU under load even when the
// access lines were not written (profile in the README); here a request pays for a line only
// when its level is enabled, and for a child logger only when something logs through it.
import { randomUUID } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Logger } from "@lexbuilder/shared-models/logger";

const START = Symbol("lexbuilderStart");
const LOG = Symbol("lexbuilderLog");

type Tracked = Request & { id?: string; [START]?: number; [LOG]?: Logger };

function reqFields(req: Tracked) {
  return { id: req.id, method: req.method, url: req.originalUrl ?? req.url, remoteAddress: req.socket?.remoteAddress };
}

/** The logger of a request: its lines carry the request (made on first use). */
export function requestLog(req: Request, base: Logger): Logger {
  const t = req as Tracked;
  return (t[LOG] ??= base.child({ req: reqFields(t) }));
}

export function accessLog(log: Logger, options: { ignore?: (req: Request) => boolean } = {}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const t = req as Tracked;
    t.id = (req.headers["x-request-id"] as string | undefined)?.slice(0, 64) || randomUUID();
    t[START] = Date.now();
    if (!options.ignore?.(req)) {
      // "close" without "finish": the client left (a live log tab closed), logged like pino-http did.
      const done = () => {
        res.removeListener("finish", done);
        res.removeListener("close", done);
        const status = res.statusCode;
        const level = status >= 500 ? "error" : status >= 400 ? "warn" : "info";
        if (!log.isLevelEnabled(level)) return;
        const fields: Record<string, unknown> = { req: reqFields(t), res: { statusCode: status }, responseTime: Date.now() - t[START]! };
        if (req.user) fields.user = req.user.name;
        log[level](fields, status >= 500 ? "request errored" : "request completed");
      };
      res.on("finish", done);
      res.on("close", done);
    }
    next();
  };
}

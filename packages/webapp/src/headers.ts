// helmet's security headers, worked out once: with fixed options (no per-request nonces) helmet
// sets the same headers on every answer, through a chain of thirteen middlewares that cost
// about 5 % of the webapp's CPU under load (profile in the README). Here helmet runs once
// against a recording response at start-up and every request gets the recorded headers.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestHandler } from "express";
import helmet, { type HelmetOptions } from "helmet";

export function fixedHeaders(options: HelmetOptions): RequestHandler {
  const set = new Map<string, string | string[]>();
  const removed: string[] = [];
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      set.set(name, Array.isArray(value) ? [...value] : String(value));
    },
    removeHeader(name: string) {
      set.delete(name);
      removed.push(name);
    },
    getHeader(name: string) {
      return set.get(name);
    },
  };
  let sync = false;
  helmet(options)({ method: "GET", url: "/", headers: {} } as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
    sync = true;
  });
  // A helmet that answered later (or per request) would need the real thing.
  if (!sync) throw new Error("helmet did not set its headers synchronously; use helmet() itself.");
  const headers = [...set];
  return (_req, res, next) => {
    for (const name of removed) res.removeHeader(name);
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}

/**
 * HSTS (helmet's value: one year, subdomains) on answers that came over HTTPS, directly or as
 * the trusted proxy says; browsers ignore it over plain HTTP. `true` sends it on every answer.
 */
export function strictTransportSecurity(mode: boolean | "auto"): RequestHandler {
  return (req, res, next) => {
    if (mode === true || (mode === "auto" && req.secure)) res.setHeader("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
    next();
  };
}

// fixedHeaders sends exactly what helmet itself sends with the same options.
import { createServer, type Server } from "node:http";
import express from "express";
import helmet, { type HelmetOptions } from "helmet";
import { afterAll, describe, expect, it } from "vitest";
import { fixedHeaders } from "../src/headers.js";

const servers: Server[] = [];
afterAll(() => servers.forEach((s) => s.close()));

async function headersOf(middleware: express.RequestHandler): Promise<Record<string, string>> {
  const app = express();
  app.disable("x-powered-by");
  app.use(middleware);
  app.get("/", (_req, res) => res.send("ok"));
  const server = createServer(app);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  const res = await fetch(`http://127.0.0.1:${port}/`);
  await res.text();
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k !== "date" && k !== "etag" && k !== "keep-alive") out[k] = v;
  });
  return out;
}

describe("fixedHeaders", () => {
  for (const [label, options] of [
    ["the console's options", { contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'self'"], objectSrc: ["'none'"] } }, strictTransportSecurity: false, referrerPolicy: { policy: "same-origin" } }],
    ["helmet's defaults with HSTS", {}],
  ] as [string, HelmetOptions][]) {
    it(`matches helmet with ${label}`, async () => {
      const expected = await headersOf(helmet(options));
      expect(Object.keys(expected).length).toBeGreaterThan(8);
      expect(await headersOf(fixedHeaders(options))).toEqual(expected);
    });
  }
});

// The slave's one HTTP listener: XML-RPC at POST /rpc, result bytes at GET /files/<sha256>
// (with Range), the build log at GET /builds/<cookie>/log?offset=N, and GET /healthz.
// Everything but /healthz needs the bearer token.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { pipeline } from "node:stream/promises";
import type { Logger } from "@lexbuilder/shared-models/logger";
import {
  bearerMatches,
  COOKIE_PATTERN,
  createRpcHandler,
  noParams,
  parseBuildParams,
  parseCookieParam,
  parseStatusParams,
  PROTOCOL_VERSION,
  sendPlain,
  type InfoResult,
} from "@lexbuilder/shared-models/protocol";
import { checkLogOffset, checkRange } from "@lexbuilder/shared-models/rules";
import type { Builder } from "./builder.js";
import type { ResultCache } from "./cache.js";
import type { Readiness } from "./readiness.js";
import { sendFileRange } from "./sendfile.js";

export interface ServerOptions {
  builder: Builder;
  cache: ResultCache;
  token: () => string;
  log: Logger;
  tls: { cert: string; key: string } | null;
  builderVersion: string;
  architectures: string[];
  /** Config URL schemes this builder clones from (LEXBUILDER_SLAVE_ALLOWED_SCHEMES). */
  allowedSchemes: readonly string[];
  liveBuildVersion: () => string;
  readiness: () => Readiness;
  /** How builds are isolated from the host (reported by info()). */
  isolation: "container" | "none";
}

const plain = sendPlain;

export function createSlaveServer(o: ServerOptions): http.Server {
  const { builder, log } = o;

  const rpc = createRpcHandler({
    token: o.token,
    log,
    methods: {
      echo: (params) => params,
      info: (params): InfoResult => {
        noParams(params, "info");
        const ready = o.readiness();
        const info: InfoResult = {
          protocolVersion: PROTOCOL_VERSION,
          builderVersion: o.builderVersion,
          hostname: hostname(),
          architectures: o.architectures,
          builderTypes: ["live-build"],
          liveBuildVersion: o.liveBuildVersion(),
          ready: ready.ready,
          freeDiskBytes: String(ready.freeDiskBytes),
          isolation: o.isolation,
        };
        if (!ready.ready && ready.reason) info.notReadyReason = ready.reason;
        return info;
      },
      status: (params, context) => {
        const { knownVersion, waitSeconds } = parseStatusParams(params);
        return builder.waitStatus(knownVersion, waitSeconds, context.signal);
      },
      build: (params) => {
        const [cookie, args] = parseBuildParams(params, o.allowedSchemes);
        return builder.build(cookie, args);
      },
      abort: (params) => builder.abort(parseCookieParam(params, "abort")),
      clean: (params) => builder.clean(parseCookieParam(params, "clean")),
    },
  });

  function authorized(req: IncomingMessage, res: ServerResponse): boolean {
    let token: string;
    try {
      token = o.token();
    } catch (err) {
      log.error({ err }, "cannot read the builder token");
      plain(res, 500, "The builder cannot read its token; see its log.");
      return false;
    }
    if (bearerMatches(req.headers.authorization, token)) return true;
    log.warn({ remote: req.socket.remoteAddress, url: req.url?.slice(0, 100) }, "request with a missing or wrong token refused");
    plain(res, 401, 'This builder needs the header "Authorization: Bearer <token>" with its token; `lexbuilder-slave token` on the builder prints it.', {
      "WWW-Authenticate": 'Bearer realm="lexbuilder-slave"',
    });
    return false;
  }

  async function sendFile(req: IncomingMessage, res: ServerResponse, segment: string): Promise<void> {
    const path = o.cache.pathOf(segment);
    if (!path) {
      plain(res, 400, "A file is named by its sha256: 64 lower-case hexadecimal digits.");
      return;
    }
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new Error("not a file");
      size = st.size;
    } catch {
      plain(res, 404, "This builder holds no file with that sha256 (it may have been cleaned).");
      return;
    }
    const range = checkRange(req.headers.range, size);
    if (range.error !== undefined) {
      plain(res, 416, range.error, { "Content-Range": `bytes */${size}` });
      return;
    }
    const headers: Record<string, string | number> = {
      "Content-Type": "application/octet-stream",
      "Accept-Ranges": "bytes",
      ETag: `"${segment}"`,
      "Cache-Control": "no-store",
    };
    let status = 200;
    let start = 0;
    let end = size - 1;
    if (range.value) {
      status = 206;
      ({ start, end } = range.value);
      headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    }
    headers["Content-Length"] = size === 0 ? 0 : end - start + 1;
    res.writeHead(status, headers);
    if (req.method === "HEAD" || size === 0) {
      res.end();
      return;
    }
    await sendFileRange(path, start, end, res);
  }

  async function sendLog(req: IncomingMessage, res: ServerResponse, cookie: string, query: URLSearchParams): Promise<void> {
    if (!COOKIE_PATTERN.test(cookie)) {
      plain(res, 400, 'A build cookie looks like "<build id>-<attempt>", for example "42-1".');
      return;
    }
    const offset = checkLogOffset(query.get("offset") ?? undefined);
    if (offset.error !== undefined) {
      plain(res, 400, offset.error);
      return;
    }
    const file = builder.logFile(cookie);
    if (!file) {
      plain(res, 404, `This builder holds no log for build ${cookie}.`);
      return;
    }
    if (offset.value > file.size) {
      plain(res, 416, `The log of build ${cookie} has only ${file.size} bytes; offset ${offset.value} is beyond it.`, {
        "Content-Range": `bytes */${file.size}`,
      });
      return;
    }
    const length = file.size - offset.value;
    res.writeHead(200, {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": length,
      "X-Log-Size": file.size,
      "Cache-Control": "no-store",
    });
    if (req.method === "HEAD" || length === 0) {
      res.end();
      return;
    }
    await pipeline(createReadStream(file.path, { start: offset.value, end: file.size - 1 }), res);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://slave.invalid");
    const path = url.pathname;
    if (path === "/rpc") {
      rpc(req, res);
      return;
    }
    if (path === "/healthz") {
      const body = JSON.stringify({ ok: true, state: builder.currentState });
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store" });
      res.end(body);
      return;
    }
    const files = /^\/files\/([^/]*)$/.exec(path);
    const logs = /^\/builds\/([^/]*)\/log$/.exec(path);
    if (!files && !logs) {
      // Unknown paths (including ../ tricks, which never match the two routes) still need the token
      // so they tell an outsider nothing.
      if (authorized(req, res)) plain(res, 404, "No such resource on this builder; it serves /rpc, /files/<sha256>, /builds/<cookie>/log and /healthz.");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      plain(res, 405, "Only GET and HEAD are allowed here.", { Allow: "GET, HEAD" });
      return;
    }
    if (!authorized(req, res)) return;
    if (files) await sendFile(req, res, decodeSegment(files[1]!));
    else await sendLog(req, res, decodeSegment(logs![1]!), url.searchParams);
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ERR_STREAM_PREMATURE_CLOSE") log.error({ err, url: req.url?.slice(0, 100) }, "request failed");
      if (!res.headersSent) plain(res, 500, "The builder failed while answering; its log has the details.");
      else res.destroy();
    });
  };

  const server = o.tls
    ? https.createServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, handler)
    : http.createServer(handler);
  // Long polls last up to 30 s; keep idle connections a little longer than a poll.
  server.keepAliveTimeout = 35_000;
  server.headersTimeout = 40_000;
  return server;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return "\0invalid";
  }
}

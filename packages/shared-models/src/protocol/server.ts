// The XML-RPC endpoint of a slave: one `POST /rpc` request at a time, as a plain
// (req, res) handler the daemon's own HTTP server routes to. Over the `xmlrpc` package's
// serializer/deserializer it adds bearer-token auth, a body limit, parse limits and the
// mapping of every failure to a fault: never a crash, never a stack trace on the wire.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { bearerMatches } from "./auth.js";
import { FaultCode, MAX_RPC_BODY_BYTES, RpcFault, type MethodName, type Methods } from "./types.js";
import { ValidationError } from "./validate.js";
import { deserializeCall, RpcDecodeError, serializeFault, serializeResponse } from "./xml.js";

/** What a method learns about its call besides the parameters. */
export interface RpcCallContext {
  /** Aborted when the caller hangs up before the answer (a long poll can stop waiting). */
  signal: AbortSignal;
  remoteAddress: string | undefined;
}

export type RpcMethod = (params: unknown[], context: RpcCallContext) => unknown | Promise<unknown>;
export interface RpcMethodTable {
  [name: string]: RpcMethod;
}

/**
 * The protocol's methods with their result types, for the slave to implement
 * (`const methods: RpcMethodImplementations = {...}` then `createRpcHandler({ methods, … })`).
 */
export type RpcMethodImplementations = {
  [M in MethodName]: (params: unknown[], context: RpcCallContext) => Methods[M]["result"] | Promise<Methods[M]["result"]>;
};

export interface RpcHandlerOptions {
  /** The current token (read per request, so a rotated token file takes effect). */
  token: () => string;
  methods: RpcMethodTable;
  log: Logger;
  /** Default MAX_RPC_BODY_BYTES (1 MiB). */
  maxBodyBytes?: number;
  /** How long the client may take to send the body, ms. Default 30 s. */
  bodyTimeoutMs?: number;
  /**
   * Authenticated calls handled at once (long polls included); more get 503. Bounds the memory
   * bodies can take (this × maxBodyBytes). Default 32.
   */
  maxInFlight?: number;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** Method names as they may appear in a sentence: printable, short. */
function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return JSON.stringify(clean.length > 80 ? clean.slice(0, 80) + "…" : clean);
}

/** A plain-text sentence as the whole answer (also the slave's own HTTP errors). */
export function sendPlain(res: ServerResponse, status: number, sentence: string, headers: Record<string, string | number> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const body = sentence + "\n";
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
    ...headers,
  });
  res.end(body);
}

function sendXml(res: ServerResponse, xml: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, {
    "Content-Type": "text/xml; charset=utf-8",
    "Content-Length": Buffer.byteLength(xml),
    "Cache-Control": "no-store",
  });
  res.end(xml);
}

function sendFault(res: ServerResponse, faultCode: number, faultString: string): void {
  sendXml(res, serializeFault(faultCode, faultString));
}

/** After an early answer (401, 405, 408, 413): bytes of the unwanted body still read and dropped. */
const DISCARD_LIMIT_BYTES = 4 * 1024 * 1024;
const DISCARD_LIMIT_MS = 5_000;

/**
 * Answers before (all of) the body was read, then closes the connection gracefully. Node would
 * destroy the socket as soon as a "Connection: close" answer is written; with body bytes still
 * unread that sends a TCP reset, and a reset can wipe the answer from the caller's buffers
 * before it reads it (it then sees EPIPE/ECONNRESET instead of our 401/413). So: write the
 * answer, half-close, read and drop the rest of the body up to a bound (4 MiB or 5 s, so an
 * abusive caller cannot keep us reading), then close.
 */
function answerEarly(req: IncomingMessage, res: ServerResponse, status: number, sentence: string, headers: Record<string, string> = {}): void {
  const socket = req.socket as IncomingMessage["socket"] & { destroySoon?: () => void };
  if (!req.complete && !socket.destroyed) {
    // Called by Node once the answer is written; end our side only, the rest is below.
    socket.destroySoon = () => {
      if (!socket.writableEnded) socket.end();
    };
    let dropped = 0;
    const done = () => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      socket.off("close", done);
    };
    const cut = () => {
      done();
      socket.destroy();
    };
    // The whole body arrived: give the caller a moment to read the answer and hang up itself.
    const onEnd = () => {
      done();
      setTimeout(() => socket.destroy(), 1_000).unref();
    };
    const onData = (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > DISCARD_LIMIT_BYTES) cut();
    };
    const timer = setTimeout(cut, DISCARD_LIMIT_MS);
    timer.unref();
    req.on("data", onData);
    req.on("end", onEnd);
    socket.on("close", done);
    req.resume();
  }
  sendPlain(res, status, sentence, { ...headers, Connection: "close" });
}

/** Reads the body up to `limit` bytes; resolves null (after answering) when it cannot. */
function readBody(req: IncomingMessage, res: ServerResponse, limit: number, timeoutMs: number, log: Logger): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const tooLarge = () => {
      log.warn({ remote: req.socket.remoteAddress, limit }, "rpc request body over the limit refused");
      // Stop collecting; what follows is dropped (bounded), see answerEarly.
      answerEarly(req, res, 413, `The request body is larger than ${limit} bytes; XML-RPC calls to a builder must stay under that.`);
      resolve(null);
    };
    const declared = req.headers["content-length"];
    if (declared !== undefined && /^[0-9]+$/.test(declared) && Number(declared) > limit) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: Buffer | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      resolve(value);
    };
    const timer = setTimeout(() => {
      if (done) return;
      log.warn({ remote: req.socket.remoteAddress }, "rpc request body not received in time");
      finish(null);
      answerEarly(req, res, 408, `The request body did not arrive within ${Math.round(timeoutMs / 1000)} s.`);
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        finish(null);
        tooLarge();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(Buffer.concat(chunks, size));
    const onError = (err: Error) => {
      log.debug({ err: err.message }, "rpc request stream failed");
      finish(null);
    };
    // The caller hung up before the whole body arrived.
    const onClose = () => finish(null);
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

function faultFor(err: unknown, method: string, log: Logger): { code: number; sentence: string } {
  if (err instanceof RpcFault) {
    const codeOk = typeof err.faultCode === "number" && Number.isInteger(err.faultCode) && err.faultCode >= INT32_MIN && err.faultCode <= INT32_MAX;
    if (codeOk && typeof err.faultString === "string" && err.faultString.length > 0) {
      return { code: err.faultCode, sentence: err.faultString };
    }
    log.error({ method, faultCode: err.faultCode }, "rpc method threw a fault that cannot travel");
  } else if (err instanceof ValidationError) {
    return { code: FaultCode.INVALID_PARAMS, sentence: err.message };
  } else {
    log.error({ err, method }, "rpc method failed");
  }
  return {
    code: FaultCode.INTERNAL_ERROR,
    sentence: `The builder failed while handling ${printable(method)}; its log has the details.`,
  };
}

export function createRpcHandler(options: RpcHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { methods, log } = options;
  const limit = options.maxBodyBytes ?? MAX_RPC_BODY_BYTES;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 30_000;
  const maxInFlight = options.maxInFlight ?? 32;
  let inFlight = 0;
  const known = () => Object.keys(methods).sort().join(", ");

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "POST") {
      answerEarly(req, res, 405, "XML-RPC calls are POST requests.", { Allow: "POST" });
      return;
    }
    let token: string;
    try {
      token = options.token();
    } catch (err) {
      log.error({ err }, "cannot read the builder token");
      answerEarly(req, res, 500, "The builder cannot read its token; see its log.");
      return;
    }
    if (!bearerMatches(req.headers.authorization, token)) {
      log.warn({ remote: req.socket.remoteAddress, given: req.headers.authorization !== undefined }, "rpc request with a missing or wrong token refused");
      answerEarly(
        req,
        res,
        401,
        "This builder needs the header \"Authorization: Bearer <token>\" with its token; `lexbuilder-slave token` on the builder prints it.",
        { "WWW-Authenticate": 'Bearer realm="lexbuilder-slave"' },
      );
      return;
    }

    if (inFlight >= maxInFlight) {
      log.warn({ remote: req.socket.remoteAddress, inFlight }, "rpc call refused: too many at once");
      answerEarly(req, res, 503, "The builder is handling too many calls at once; try again in a moment.", { "Retry-After": "1" });
      return;
    }
    inFlight += 1;
    let counted = true;
    res.once("close", () => {
      if (counted) inFlight -= 1;
      counted = false;
    });

    const t0 = performance.now();
    const body = await readBody(req, res, limit, bodyTimeoutMs, log);
    if (body === null) return;

    let method: string;
    let params: unknown[];
    try {
      ({ method, params } = await deserializeCall(body));
    } catch (err) {
      const sentence = err instanceof RpcDecodeError ? err.message : "The request is not well-formed XML-RPC.";
      log.warn({ remote: req.socket.remoteAddress, reason: sentence }, "malformed rpc request");
      sendFault(res, FaultCode.PARSE_ERROR, `${sentence} Send an XML-RPC methodCall.`);
      return;
    }

    if (!Object.hasOwn(methods, method) || typeof methods[method] !== "function") {
      log.info({ method: method.slice(0, 80) }, "rpc call of an unknown method");
      sendFault(res, FaultCode.METHOD_NOT_FOUND, `The builder has no method ${printable(method)}; it knows ${known()}.`);
      return;
    }

    const hangUp = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) hangUp.abort();
    };
    res.on("close", onClose);
    if (res.destroyed || req.socket.destroyed) hangUp.abort();
    let xml: string;
    try {
      const result = await methods[method]!(params, { signal: hangUp.signal, remoteAddress: req.socket.remoteAddress });
      xml = serializeResponse(result === undefined ? null : result);
    } catch (err) {
      if (hangUp.signal.aborted) {
        log.debug({ method, err: (err as Error)?.message }, "rpc method ended after its caller hung up");
        return;
      }
      const { code, sentence } = faultFor(err, method, log);
      xml = serializeFault(code, sentence);
    }
    if (res.destroyed || res.writableEnded) {
      log.debug({ method }, "rpc caller went away before the answer");
      return;
    }
    sendXml(res, xml);
    log.debug({ method, ms: Math.round((performance.now() - t0) * 10) / 10 }, "rpc call answered");
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Only reachable through a bug above; still never crash the process.
      log.error({ err }, "rpc handler failed");
      try {
        if (!res.headersSent) sendFault(res, FaultCode.INTERNAL_ERROR, "The builder failed while handling the call; its log has the details.");
        else res.destroy();
      } catch {
        res.destroy();
      }
    });
  };
}

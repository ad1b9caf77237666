// The master's side of the protocol: typed calls to one slave's `POST /rpc`, with the bearer
// token, a whole-call timeout, a response size limit, and errors that say what happened:
// RpcFault when the slave answered with a fault, RpcTransportError otherwise.
import http from "node:http";
import https from "node:https";
import { RpcFault, type MethodName, type Methods } from "./types.js";
import { checkResult, ResultShapeError } from "./validate.js";
import { deserializeResponse, RpcDecodeError, serializeCall } from "./xml.js";

export type RpcTransportErrorKind = "timeout" | "unreachable" | "unauthorized" | "http" | "malformed";

/** The call did not produce an XML-RPC answer. `message` is a sentence for people. */
export class RpcTransportError extends Error {
  constructor(
    readonly kind: RpcTransportErrorKind,
    message: string,
    readonly url: string,
    /** HTTP status, for kind "unauthorized" and "http". */
    readonly status?: number,
    /** The low-level error code (ECONNREFUSED …), for kind "unreachable". */
    readonly code?: string,
  ) {
    super(message);
    this.name = "RpcTransportError";
  }
}

export interface RpcClientOptions {
  /** The builder's base URL, e.g. http://127.0.0.1:8221 (the client posts to `${url}/rpc`). */
  url: string;
  token: string;
  /** Whole-call timeout, ms (connect, send, wait, receive). Default 40000. */
  timeoutMs?: number;
  /** Largest response body accepted, bytes. Default 16 MiB. */
  maxResponseBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 40_000;
const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

function seconds(ms: number): string {
  const s = ms / 1000;
  return Number.isInteger(s) ? `${s} s` : `${s.toFixed(1)} s`;
}

export class RpcClient {
  readonly url: string;
  /** Where and how to post, minus the per-call Content-Length (built once, not per call). */
  private readonly requestOptions: http.RequestOptions;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  /** Calls on the wire, each with a way to give it up: close() ends them. */
  private readonly inFlight = new Set<(err: Error) => void>();

  constructor(opts: RpcClientOptions) {
    let base: URL;
    try {
      base = new URL(opts.url);
    } catch {
      throw new Error(`The builder URL "${opts.url}" is not a URL; give one like http://127.0.0.1:8221.`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new Error(`The builder URL "${opts.url}" must start with http:// or https://.`);
    }
    if (base.username || base.password) {
      throw new Error("The builder URL must not contain a user name or password; the token authenticates.");
    }
    if (typeof opts.token !== "string" || opts.token.length === 0 || /[\s\u0000-\u001f\u007f]/.test(opts.token)) {
      throw new Error("The builder token must be a non-empty string without spaces or control characters.");
    }
    base.search = "";
    base.hash = "";
    this.url = base.toString().replace(/\/+$/, "");
    const endpoint = new URL(this.url + "/rpc");
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.transport = base.protocol === "https:" ? https : http;
    this.agent = base.protocol === "https:" ? new https.Agent({ keepAlive: true, maxSockets: 8 }) : new http.Agent({ keepAlive: true, maxSockets: 8 });
    this.requestOptions = {
      protocol: endpoint.protocol,
      // URL keeps an IPv6 literal in brackets; the socket wants it bare.
      hostname: endpoint.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: endpoint.port || undefined,
      path: endpoint.pathname,
      method: "POST",
      agent: this.agent,
    };
  }

  /** Calls `method` on the builder. Rejects with RpcFault or RpcTransportError. */
  async call<M extends MethodName>(method: M, ...args: Methods[M]["args"]): Promise<Methods[M]["result"]> {
    const body = Buffer.from(serializeCall(method, args as unknown[]), "utf8");
    const deadline = Date.now() + this.timeoutMs;
    let answer: { status: number; body: Buffer; contentType: string };
    try {
      answer = await this.post(body, deadline);
    } catch (err) {
      // A kept-alive socket the builder closed meanwhile: try once on a fresh one. Every
      // method of the protocol is idempotent (build/abort/clean per cookie).
      if (err instanceof StaleSocketError) answer = await this.post(body, deadline);
      else throw err;
    }
    if (answer.status === 401) {
      throw new RpcTransportError(
        "unauthorized",
        `The builder at ${this.url} refused the token; give it the token that \`lexbuilder-slave token\` prints on that machine.`,
        this.url,
        401,
      );
    }
    if (answer.status !== 200) {
      const text = /^text\/plain/i.test(answer.contentType) ? answer.body.subarray(0, 300).toString("utf8").trim() : "";
      throw new RpcTransportError(
        "http",
        `The builder at ${this.url} answered HTTP ${answer.status}${text ? `: ${text}` : "."}`,
        this.url,
        answer.status,
      );
    }
    let decoded;
    try {
      decoded = await deserializeResponse(answer.body);
    } catch (err) {
      const why = err instanceof RpcDecodeError ? err.message : "it could not be read";
      throw new RpcTransportError("malformed", `The builder at ${this.url} sent an answer that is not XML-RPC: ${why}`, this.url);
    }
    if (decoded.fault) {
      const { faultCode, faultString } = decoded;
      if (typeof faultCode !== "number" || !Number.isInteger(faultCode) || typeof faultString !== "string") {
        throw new RpcTransportError("malformed", `The builder at ${this.url} sent a fault without a numeric code and a message.`, this.url);
      }
      throw new RpcFault(faultCode, faultString);
    }
    try {
      // The builder is another machine: its answer must have the shape the types promise.
      return checkResult(method, decoded.value) as Methods[M]["result"];
    } catch (err) {
      if (!(err instanceof ResultShapeError)) throw err;
      throw new RpcTransportError("malformed", `The builder at ${this.url} sent an answer the protocol does not allow: ${err.problem}.`, this.url);
    }
  }

  /**
   * Closes kept-alive connections and gives up the calls in flight (a long poll would otherwise
   * hold a stopping master for its whole wait). The client still works afterwards (opening new ones).
   */
  close(): void {
    const closed = new RpcTransportError("unreachable", `The call to the builder at ${this.url} was given up: the client was closed.`, this.url);
    for (const giveUp of [...this.inFlight]) giveUp(closed);
    this.agent.destroy();
  }

  private post(body: Buffer, deadline: number): Promise<{ status: number; body: Buffer; contentType: string }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null, value?: { status: number; body: Buffer; contentType: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.inFlight.delete(giveUp);
        if (err) reject(err);
        else resolve(value!);
      };
      const remaining = Math.max(0, deadline - Date.now());
      const req = this.transport.request({
        ...this.requestOptions,
        headers: {
          "Content-Type": "text/xml; charset=utf-8",
          "Content-Length": body.length,
          Accept: "text/xml",
          Authorization: `Bearer ${this.token}`,
        },
      });
      const timer = setTimeout(() => {
        settle(new RpcTransportError("timeout", `The builder at ${this.url} did not answer within ${seconds(this.timeoutMs)}.`, this.url));
        req.destroy();
      }, remaining);
      // Settled first, so the destroyed socket's error is not taken for a stale one and retried.
      const giveUp = (err: Error) => {
        settle(err);
        req.destroy();
      };
      this.inFlight.add(giveUp);
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (settled) return;
        if (req.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
          settle(new StaleSocketError());
          return;
        }
        const code = err.code ?? "unknown error";
        settle(
          new RpcTransportError(
            "unreachable",
            `The builder at ${this.url} cannot be reached (${code}); check that it runs and that the URL is right.`,
            this.url,
            undefined,
            err.code,
          ),
        );
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          if (settled) return;
          size += chunk.length;
          if (size > this.maxResponseBytes) {
            settle(
              new RpcTransportError(
                "malformed",
                `The builder at ${this.url} sent an answer larger than ${this.maxResponseBytes} bytes.`,
                this.url,
              ),
            );
            res.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () =>
          settle(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks, size), contentType: String(res.headers["content-type"] ?? "") }),
        );
        res.on("error", (err: NodeJS.ErrnoException) => {
          settle(
            new RpcTransportError(
              "unreachable",
              `The builder at ${this.url} broke off its answer (${err.code ?? err.message}); check that it runs.`,
              this.url,
              undefined,
              err.code,
            ),
          );
        });
        res.on("aborted", () => {
          settle(new RpcTransportError("unreachable", `The builder at ${this.url} broke off its answer; check that it runs.`, this.url));
        });
      });
      req.end(body);
    });
  }
}

class StaleSocketError extends Error {
  constructor() {
    super("stale kept-alive socket");
  }
}

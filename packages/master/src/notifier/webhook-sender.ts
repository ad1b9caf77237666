// One HTTP POST of a webhook delivery: signed, bounded in time and in what it reads back, never
// following a redirect, and never to an address the target policy forbids (checked in the
// connection's own DNS lookup).
import { createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { guardedLookup, literalTargetRefusal, type TargetPolicy } from "@lexbuilder/shared-models/webhook-target";

/** Bytes of the receiver's answer kept for the delivery log. */
export const RESPONSE_SNIPPET_BYTES = 4096;

export interface WebhookRequest {
  url: string;
  secret: string;
  event: string;
  deliveryId: string;
  body: string;
}

export interface SendOutcome {
  statusCode: number | null;
  durationMs: number;
  responseSnippet: string | null;
  /** A sentence when the request did not get a 2xx answer. */
  error: string | null;
  /** Worth trying again (a timeout, a refused connection, a 5xx, 429); a refused target is not. */
  retry: boolean;
}

export function signature(secret: string, body: string): string {
  return "sha256=" + createHmac("sha256", secret).update(body, "utf8").digest("hex");
}

export function sendWebhook(req: WebhookRequest, opts: { timeoutMs: number; policy: TargetPolicy; userAgent: string }): Promise<SendOutcome> {
  const started = performance.now();
  const took = () => performance.now() - started;
  const url = new URL(req.url);
  const refused = literalTargetRefusal(url, opts.policy);
  if (refused) return Promise.resolve({ statusCode: null, durationMs: 0, responseSnippet: null, error: refused, retry: false });
  const body = Buffer.from(req.body, "utf8");
  const mod = url.protocol === "https:" ? https : http;
  return new Promise<SendOutcome>((resolve) => {
    let settled = false;
    const finish = (o: Omit<SendOutcome, "durationMs">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...o, durationMs: took() });
    };
    const request = mod.request(
      url,
      {
        method: "POST",
        lookup: guardedLookup(opts.policy) as never,
        headers: {
          "content-type": "application/json",
          "content-length": String(body.length),
          "user-agent": opts.userAgent,
          "x-lexbuilder-event": req.event,
          "x-lexbuilder-delivery": req.deliveryId,
          "x-lexbuilder-signature-256": signature(req.secret, req.body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on("data", (chunk: Buffer) => {
          if (kept < RESPONSE_SNIPPET_BYTES) {
            chunks.push(chunk.subarray(0, RESPONSE_SNIPPET_BYTES - kept));
            kept += Math.min(chunk.length, RESPONSE_SNIPPET_BYTES - kept);
          }
          // Past the limit the rest is not waited for.
          if (kept >= RESPONSE_SNIPPET_BYTES) res.destroy();
        });
        const done = () => {
          const code = res.statusCode ?? 0;
          const snippet = Buffer.concat(chunks).toString("utf8");
          if (code >= 200 && code < 300) return finish({ statusCode: code, responseSnippet: snippet, error: null, retry: false });
          const redirect = code >= 300 && code < 400;
          finish({
            statusCode: code,
            responseSnippet: snippet,
            error: redirect
              ? `The receiver answered ${code} (a redirect to ${String(res.headers.location ?? "?").slice(0, 200)}); redirects are not followed, so give the final URL.`
              : `The receiver answered ${code}.`,
            retry: !redirect && (code >= 500 || code === 429 || code === 408),
          });
        };
        res.on("end", done);
        res.on("close", done);
        res.on("error", done);
      },
    );
    const timer = setTimeout(() => {
      finish({ statusCode: null, responseSnippet: null, error: `The receiver did not answer within ${Math.round(opts.timeoutMs / 1000)} s.`, retry: true });
      request.destroy();
    }, opts.timeoutMs);
    request.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ELEXBUILDERPRIVATE") return finish({ statusCode: null, responseSnippet: null, error: err.message, retry: false });
      finish({ statusCode: null, responseSnippet: null, error: `The request failed: ${describeNetworkError(err)}.`, retry: true });
    });
    request.end(body);
  });
}

function describeNetworkError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return "the connection was refused";
    case "ENOTFOUND":
      return "the host name could not be found";
    case "ECONNRESET":
      return "the connection was reset";
    case "ETIMEDOUT":
      return "the connection timed out";
    default:
      return err.code ? `${err.code} ${err.message}`.slice(0, 200) : err.message.slice(0, 200);
  }
}

// The byte side of the protocol: plain HTTP GETs to a slave with its bearer token, streamed
// (never buffered whole). Errors are sentences.
import http from "node:http";
import https from "node:https";

export class SlaveHttpError extends Error {
  constructor(
    message: string,
    /** HTTP status when the slave answered, else undefined (unreachable, timeout). */
    readonly status?: number,
  ) {
    super(message);
    this.name = "SlaveHttpError";
  }
}

/**
 * Opens GET <base><path>; resolves with the response once a 2xx status arrived. The request is
 * destroyed if no bytes move for `idleTimeoutMs`.
 */
export function slaveGet(base: string, path: string, token: string, idleTimeoutMs: number, headers: Record<string, string> = {}): Promise<http.IncomingMessage> {
  const url = new URL(base.replace(/\/+$/, "") + path);
  const transport = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.get(url, { headers: { Authorization: `Bearer ${token}`, ...headers } });
    req.setTimeout(idleTimeoutMs, () => {
      req.destroy(new SlaveHttpError(`The builder at ${base} sent nothing for ${Math.round(idleTimeoutMs / 1000)} s while transferring ${path}.`));
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      reject(err instanceof SlaveHttpError ? err : new SlaveHttpError(`The builder at ${base} cannot be reached for ${path} (${err.code ?? err.message}).`));
    });
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        res.resume();
        reject(new SlaveHttpError(`The builder at ${base} answered HTTP ${status} for ${path}.`, status));
        return;
      }
      resolve(res);
    });
  });
}

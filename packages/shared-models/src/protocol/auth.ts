// Bearer-token check for the slave's HTTP listener (RPC and byte routes alike).
import { createHash, timingSafeEqual } from "node:crypto";

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/**
 * True when `authorizationHeader` is exactly "Bearer <token>" (scheme case-insensitive).
 * Compares sha256 digests in constant time, so neither the token nor its length leaks
 * through timing. An empty expected token never matches.
 */
export function bearerMatches(authorizationHeader: string | undefined, token: string): boolean {
  if (typeof token !== "string" || token.length === 0) return false;
  const header = typeof authorizationHeader === "string" ? authorizationHeader : "";
  const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  const presented = m ? m[1]! : "";
  // Compare even when the header is missing or malformed, so that path costs the same.
  const same = timingSafeEqual(digest(presented), digest(token));
  return m !== null && same;
}

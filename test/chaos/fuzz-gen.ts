// Seeded generators of bad input for the fuzz tests: hostile strings, invalid UTF-8, XML bombs
// and deep nesting for XML-RPC, wrong JSON types and shapes for the API, broken form bodies.
// Every generator takes the PRNG, so a failing case is reproduced by its seed and index.
import { readFileSync } from "node:fs";
import { rng } from "./stack.js";

export type Random = () => number;
export { rng };

/** encodeURIComponent that also takes lone surrogates (as U+FFFD, like a browser would). */
export function urlEncode(s: string): string {
  return [...Buffer.from(s, "utf8")].map((b) => (/[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("");
}

export const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
export const int = (r: Random, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

/** How many cases to run: the short (npm test) or the long (npm run fuzz) number. */
export function iterations(short: number, long: number): number {
  const n = Number(process.env.FUZZ_ITERATIONS);
  if (Number.isSafeInteger(n) && n > 0) return n;
  return process.env.FUZZ_LONG === "1" ? long : short;
}

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261125);

const NASTY = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "../../../../etc/passwd",
  "..%2f..%2fetc%2fpasswd",
  "%00",
  "%",
  "%E0%A4%A",
  "' OR '1'='1",
  "'; DROP TABLE builds; --",
  '"><script>alert(1)</script>',
  "<img src=x onerror=alert(1)>",
  "{{7*7}}",
  "<%= process.exit(1) %>",
  "${process.exit(1)}",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "-1",
  "0",
  "1e309",
  "-0",
  "NaN",
  "Infinity",
  "99999999999999999999999",
  "9007199254740993",
  "0x10",
  "1.5",
  " 1",
  "true",
  "null",
  "undefined",
  "[]",
  "{}",
  "\u202e\u0644\u0627",
  "\ud83d\ude00".repeat(10),
  "\ud800",
  "\r\nSet-Cookie: x=1",
  "a\r\nb",
  "\u001b[31mred\u001b[0m",
  "ext::sh -c touch% /tmp/pwned",
  "--upload-pack=touch /tmp/pwned",
  "-oProxyCommand=touch /tmp/pwned",
  "file:///etc/passwd",
  "fd::17",
  "QUEUED",
  "SUCCEEDED",
  "admin",
];

/** A hostile string: a classic, random bytes as text, a long or a huge one. */
export function badString(r: Random, maxLen = 300_000): string {
  const k = r();
  if (k < 0.45) return pick(r, NASTY);
  if (k < 0.6) return randomText(r, int(r, 1, 64));
  if (k < 0.75) return pick(r, NASTY).repeat(int(r, 2, 200));
  if (k < 0.9) return "x".repeat(int(r, 1000, 20_000));
  return pick(r, ["A", "é", "\ud83d\ude00", "<", "&"]).repeat(int(r, 1, maxLen));
}

export function randomText(r: Random, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) {
    const k = r();
    s += String.fromCodePoint(k < 0.6 ? int(r, 32, 126) : k < 0.8 ? int(r, 0, 31) : k < 0.95 ? int(r, 0xa0, 0x2fff) : int(r, 0x10000, 0x1ffff));
  }
  return s;
}

/** Bytes that are not UTF-8 (lone continuation bytes, overlongs, surrogates, truncations). */
export function invalidUtf8(r: Random): Buffer {
  const parts = [
    [0xff],
    [0xfe, 0xff],
    [0xc0, 0xaf],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0x80],
    [0xe2, 0x82],
    [0xf4, 0x90, 0x80, 0x80],
  ];
  const out: number[] = [];
  const n = int(r, 1, 8);
  for (let i = 0; i < n; i++) {
    out.push(...Buffer.from(randomText(r, int(r, 0, 5)).replace(/[^\x20-\x7e]/g, "a")));
    out.push(...pick(r, parts));
  }
  return Buffer.from(out);
}

/** Any JSON value of a wrong type for a field. */
export function wrongValue(r: Random, depth = 0): unknown {
  const k = r();
  if (k < 0.15) return int(r, -(2 ** 31), 2 ** 31);
  if (k < 0.22) return pick(r, [1e308, -1e308, 0.5, -0, 2 ** 53 + 1]);
  if (k < 0.3) return pick(r, [true, false, null]);
  if (k < 0.55) return badString(r, 20_000);
  if (k < 0.7 && depth < 3) return Array.from({ length: int(r, 0, 4) }, () => wrongValue(r, depth + 1));
  if (k < 0.85 && depth < 3) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < int(r, 0, 4); i++) o[pick(r, ["a", "__proto__", "constructor", "milestone", "configRef", "id", badString(r, 50)])] = wrongValue(r, depth + 1);
    return o;
  }
  return {};
}

/** Deeply nested JSON text (arrays or objects). */
export function deepJson(r: Random): string {
  const n = int(r, 1000, 100_000);
  return r() < 0.5 ? "[".repeat(n) + "]".repeat(n) : '{"a":'.repeat(n) + "1" + "}".repeat(n);
}

/** A JSON body for a request: mostly wrong, sometimes not even JSON. */
export function badJsonBody(r: Random, fields: string[]): { body: Buffer | string; contentType: string } {
  const k = r();
  if (k < 0.35) {
    const o: Record<string, unknown> = {};
    for (const f of fields) if (r() < 0.6) o[f] = wrongValue(r);
    if (r() < 0.3) o[badString(r, 100)] = wrongValue(r);
    return { body: JSON.stringify(o), contentType: "application/json" };
  }
  if (k < 0.45) return { body: JSON.stringify(wrongValue(r)), contentType: "application/json" };
  if (k < 0.55) return { body: deepJson(r), contentType: "application/json" };
  if (k < 0.65) return { body: Buffer.concat([Buffer.from('{"milestone":"'), invalidUtf8(r), Buffer.from('"}')]), contentType: "application/json" };
  if (k < 0.72) return { body: '{"milestone":"' + "x".repeat(int(r, 70_000, 300_000)) + '"}', contentType: "application/json" };
  if (k < 0.8) return { body: pick(r, ['{"a":', "{'a':1}", "[1,2", "nul", '{"a":1}}', "\u0000", '{"__proto__":{"role":"admin"}}']), contentType: "application/json" };
  if (k < 0.88) return { body: JSON.stringify({ milestone: "m" }), contentType: pick(r, ["text/plain", "application/xml", "application/json; charset=latin1", "multipart/form-data; boundary=x", ""]) };
  return { body: randomText(r, int(r, 0, 2000)), contentType: "application/json" };
}

/** A form body (application/x-www-form-urlencoded), possibly with raw invalid bytes. */
export function badFormBody(r: Random, fields: string[], csrf: string | null): Buffer {
  const parts: Buffer[] = [];
  if (csrf !== null) parts.push(Buffer.from(`_csrf=${urlEncode(csrf)}`));
  for (const f of fields) {
    if (r() < 0.25) continue;
    const k = r();
    let value: Buffer;
    if (k < 0.55) value = Buffer.from(urlEncode(badString(r, 150_000)));
    else if (k < 0.7) value = Buffer.from([...invalidUtf8(r)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""));
    else if (k < 0.8) value = invalidUtf8(r);
    else if (k < 0.9) value = Buffer.from(pick(r, ["%", "%zz", "%E0%A4%A", "a%00b", "%ff%fe"]));
    else value = Buffer.from(urlEncode(randomText(r, int(r, 1, 100))));
    const name = r() < 0.9 ? f : pick(r, [`${f}[]`, `${f}[a]`, "__proto__", "constructor[prototype][x]", f]);
    parts.push(Buffer.concat([Buffer.from(`${name}=`), value]));
    if (r() < 0.1) parts.push(Buffer.from(`${f}=${urlEncode(badString(r, 100))}`)); // the field twice
  }
  if (r() < 0.05) for (let i = 0; i < 300; i++) parts.push(Buffer.from(`p${i}=1`)); // too many fields
  return Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from("&"), p] : [p])));
}

// ---------------------------------------------------------------------------------------------
// XML-RPC.

const xmlEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** An XML-RPC <value> of a random (mostly wrong) type. */
export function xmlValue(r: Random, depth = 0): string {
  const k = r();
  if (k < 0.15) return `<value><int>${pick(r, [String(int(r, -100, 100)), "2147483648", "-2147483649", "1.5", "x", "", " 7 ", "0x1f", "99999999999999999999"])}</int></value>`;
  if (k < 0.2) return `<value><i8>${pick(r, ["9007199254740993", "-1", "x", ""])}</i8></value>`;
  if (k < 0.25) return `<value><double>${pick(r, ["1e309", "NaN", "-0", "x", "1.5"])}</double></value>`;
  if (k < 0.3) return `<value><boolean>${pick(r, ["0", "1", "2", "true", ""])}</boolean></value>`;
  if (k < 0.35) return `<value><dateTime.iso8601>${pick(r, ["20261125T12:00:00", "x", "99999999T99:99:99", ""])}</dateTime.iso8601></value>`;
  if (k < 0.4) return `<value><base64>${pick(r, ["AAAA", "!!!", "", "A".repeat(1000)])}</base64></value>`;
  if (k < 0.43) return "<value><nil/></value>";
  if (k < 0.47) return `<value><${pick(r, ["foo", "script", "struct", "array"])}/></value>`;
  if (k < 0.65 && depth < 4) {
    const members = Array.from({ length: int(r, 0, 6) }, () => {
      const name = r() < 0.7 ? pick(r, ["project", "configUrl", "configRef", "architecture", "suite", "env", "timeoutSeconds", "__proto__", "constructor"]) : badString(r, 200);
      return `<member><name>${xmlEscape(name)}</name>${xmlValue(r, depth + 1)}</member>`;
    }).join("");
    return `<value><struct>${members}</struct></value>`;
  }
  if (k < 0.75 && depth < 4) return `<value><array><data>${Array.from({ length: int(r, 0, 5) }, () => xmlValue(r, depth + 1)).join("")}</data></array></value>`;
  const s = r() < 0.5 ? pick(r, ["amd64", "arm64", "1-1", "", "../x", "file:///nonexistent", "https://127.0.0.1:1/x.git"]) : badString(r, 100_000);
  return r() < 0.5 ? `<value><string>${xmlEscape(s)}</string></value>` : `<value>${xmlEscape(s)}</value>`;
}

const METHODS = ["echo", "info", "status", "build", "abort", "clean"];

export function xmlCall(method: string, params: string[]): string {
  return `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params.map((p) => `<param>${p}</param>`).join("")}</params></methodCall>`;
}

/** A bad /rpc body: a bomb, deep nesting, broken XML, invalid bytes, wrong arguments. */
export function badRpcBody(r: Random): Buffer {
  const k = r();
  if (k < 0.06) {
    // Billion laughs.
    const ents = ['<!ENTITY a "lollollollollollollollollollol">'];
    for (let i = 1; i < 10; i++) ents.push(`<!ENTITY ${String.fromCharCode(97 + i)} "${`&${String.fromCharCode(96 + i)};`.repeat(10)}">`);
    return Buffer.from(`<?xml version="1.0"?><!DOCTYPE methodCall [${ents.join("")}]><methodCall><methodName>echo</methodName><params><param><value><string>&j;</string></value></param></params></methodCall>`);
  }
  if (k < 0.1) {
    // External entity.
    return Buffer.from(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><methodCall><methodName>echo</methodName><params><param><value><string>&e;</string></value></param></params></methodCall>`);
  }
  if (k < 0.16) {
    const n = int(r, 500, 50_000);
    return Buffer.from(xmlCall("echo", ["<value><array><data>".repeat(n) + "<value>1</value>" + "</data></array></value>".repeat(n)]));
  }
  if (k < 0.2) {
    const n = int(r, 500, 50_000);
    return Buffer.from(xmlCall("echo", ["<value><struct><member><name>a</name>".repeat(n) + "<value>1</value>" + "</member></struct></value>".repeat(n)]));
  }
  if (k < 0.26) {
    // Huge: near and over the 1 MiB limit.
    const size = pick(r, [900_000, 1_048_000, 1_100_000, 3_000_000]);
    return Buffer.from(xmlCall("echo", [`<value><string>${"x".repeat(size)}</string></value>`]));
  }
  if (k < 0.33) {
    const [head, tail] = xmlCall("echo", ["<value><string>\u0000</string></value>"]).split("\u0000");
    return Buffer.concat([Buffer.from(head!), invalidUtf8(r), Buffer.from(tail!)]);
  }
  if (k < 0.43) {
    const good = xmlCall(pick(r, METHODS), Array.from({ length: int(r, 0, 3) }, () => xmlValue(r)));
    return Buffer.from(good.slice(0, int(r, 0, good.length - 1)));
  }
  if (k < 0.48) return Buffer.from(randomText(r, int(r, 0, 3000)));
  if (k < 0.53) return Buffer.from(xmlCall(xmlEscape(badString(r, 5000)), [xmlValue(r)]));
  if (k < 0.58) return Buffer.from(pick(r, ["", "<?xml version='1.0'?>", "<methodCall/>", "<methodCall><methodName/></methodCall>", "<methodResponse><params/></methodResponse>", "<a><b></a></b>", "<?xml version=\"1.0\" encoding=\"UTF-16\"?><methodCall/>"]));
  // A real method with wrong, missing or extra arguments. status never waits here: a
  // waitSeconds that is valid would hold the connection for that long.
  const method = pick(r, METHODS);
  const params = Array.from({ length: int(r, 0, 4) }, () => xmlValue(r));
  if (method === "status" && params.length >= 2) params[1] = `<value><int>${pick(r, ["0", "-1", "31", "x"])}</int></value>`;
  return Buffer.from(xmlCall(method, params));
}

/** A stack trace or internals leaking into an answer. */
export const LEAK = /\bat [^\s]+ \(?[^\s]*:\d+:\d+\)?|node:internal|\/node_modules\/|\.(?:ts|js):\d+:\d+|TypeError|ReferenceError|SyntaxError: Unexpected|ECONNREFUSED|SQLSTATE|duplicate key value|violates .*constraint|relation "[a-z_]+"/;

/** Resident memory of a process, bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

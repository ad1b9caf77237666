// Thin typed adapters over the `xmlrpc` package's serializer and deserializer (its lib files,
// used directly: its server crashes on a throwing handler, and neither side has auth, limits or timeouts). What we add:
//  - outgoing values are checked first: integers beyond 32 bits, NaN, bigint, functions are
//    refused (sizes travel as decimal strings by contract), undefined struct members are
//    dropped instead of becoming empty strings, Dates go out as ISO strings with offset;
//    characters XML 1.0 cannot carry (control characters such as the ESC of coloured build
//    output, NUL, lone surrogates) become U+FFFD in strings instead of making the package's
//    serializer throw — a log tail must never break status();
//  - incoming XML is parsed with limits: no DOCTYPE (so no entity tricks), bounded nesting of
//    arrays/structs and of elements, bounded element count;
//  - incoming values are rebuilt as plain data: structs become fresh objects of their own
//    string keys (a member named "__proto__" cannot swap a prototype), Dates become ISO
//    strings, <i8> stays the decimal string the package makes of it, <nil/> is null.
import { createRequire } from "node:module";
import type { Readable } from "node:stream";

const require = createRequire(import.meta.url);

/** The part of sax's parser we drive (the parser the package's deserializer is built on). */
interface SaxParser {
  error: Error | null;
  onerror: (err: Error) => void;
  onend: () => void;
  ondoctype: (doctype: string) => void;
  onprocessinginstruction: (pi: { name?: string }) => void;
  onopentag: (node: { name: string }) => void;
  onclosetag: (name: string) => void;
  ontext: (text: string) => void;
  oncdata: (text: string) => void;
  write(chunk: string): SaxParser;
  close(): SaxParser;
}
interface XmlrpcDeserializer {
  onOpentag(node: { name: string }): void;
  onClosetag(name: string): void;
  onText(text: string): void;
  onCDATA(text: string): void;
  onError(err: Error | string): void;
  onDone(): void;
  deserializeMethodCall(stream: Readable, callback: (err: Error | null | undefined, method?: string, params?: unknown[]) => void): void;
  deserializeMethodResponse(
    stream: Readable,
    callback: (err: (Error & { faultCode?: unknown; faultString?: unknown }) | null | undefined, result?: unknown) => void,
  ): void;
}
interface XmlrpcSerializer {
  serializeMethodCall(method: string, params: unknown[], encoding?: string): string;
  serializeMethodResponse(value: unknown): string;
  serializeFault(fault: unknown): string;
}

const DeserializerCtor = require("xmlrpc/lib/deserializer.js") as new (encoding?: string) => XmlrpcDeserializer;
const serializer = require("xmlrpc/lib/serializer.js") as XmlrpcSerializer;
// sax as the package itself resolves it, so both read the same version.
const sax = createRequire(require.resolve("xmlrpc/lib/deserializer.js"))("sax") as { parser(strict: boolean, opt: object): SaxParser };

/** Nesting of arrays/structs we accept (in and out). */
export const MAX_VALUE_DEPTH = 64;
/** Nesting of XML elements we accept: value depth × 3 elements per level, plus the envelope. */
export const MAX_ELEMENT_DEPTH = MAX_VALUE_DEPTH * 3 + 8;
/** Elements per message we accept. */
export const MAX_ELEMENTS = 100_000;

/** Everything outside XML 1.0's Char production. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** `value` with every character XML cannot carry replaced by U+FFFD. */
export function xmlSafeString(value: string): string {
  NOT_XML_CHAR.lastIndex = 0;
  return NOT_XML_CHAR.test(value) ? value.replace(NOT_XML_CHAR, "\uFFFD") : value;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** A value we refuse to put on the wire (a programming error on the sending side). */
export class RpcEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RpcEncodeError";
  }
}

/** Incoming bytes that are not a well-formed XML-RPC message within our limits. */
export class RpcDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RpcDecodeError";
  }
}

function describePath(path: string): string {
  return path === "" ? "the value" : `the value at ${path}`;
}

/** Checks and copies a value for the wire; throws RpcEncodeError for what XML-RPC cannot carry faithfully. */
export function toWire(value: unknown, path = "", depth = 0): unknown {
  switch (typeof value) {
    case "string":
      return xmlSafeString(value);
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) throw new RpcEncodeError(`Cannot send ${describePath(path)}: ${value} is not a finite number.`);
      if (Number.isInteger(value) && (value < INT32_MIN || value > INT32_MAX)) {
        throw new RpcEncodeError(
          `Cannot send ${describePath(path)}: ${value} does not fit an XML-RPC int (32 bits); send it as a decimal string.`,
        );
      }
      return value;
    case "object": {
      if (value === null) return null;
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new RpcEncodeError(`Cannot send ${describePath(path)}: it is an invalid date.`);
        return value.toISOString();
      }
      if (Buffer.isBuffer(value)) return value;
      if (depth >= MAX_VALUE_DEPTH) {
        throw new RpcEncodeError(`Cannot send ${describePath(path)}: values nest deeper than ${MAX_VALUE_DEPTH} levels.`);
      }
      if (Array.isArray(value)) {
        return value.map((item, i) => (item === undefined ? null : toWire(item, `${path}[${i}]`, depth + 1)));
      }
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        if (item === undefined) continue;
        if (xmlSafeString(key) !== key) {
          throw new RpcEncodeError(`Cannot send ${describePath(path)}: the member name ${JSON.stringify(key)} holds characters XML cannot carry.`);
        }
        out[key] = toWire(item, path === "" ? key : `${path}.${key}`, depth + 1);
      }
      return out;
    }
    case "undefined":
      return null;
    default:
      throw new RpcEncodeError(`Cannot send ${describePath(path)}: a ${typeof value} has no XML-RPC form.`);
  }
}

/** Rebuilds a deserialized value as plain data (see the header comment). */
export function fromWire(value: unknown): unknown {
  // XML forbids NUL but the package's parser passes it through; PostgreSQL text and jsonb cannot
  // hold it, so it becomes U+FFFD here, as on the way out.
  if (typeof value === "string") return value.includes("\u0000") ? value.replaceAll("\u0000", "\ufffd") : value;
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map(fromWire);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    // The package builds structs with `struct[name] = value`; "__proto__" never becomes an own
    // key there (it swaps the prototype instead), so it is dropped here with that prototype.
    // Plain assignment for every other key: defineProperty per member was a measurable part
    // of decoding an answer.
    const name = fromWire(key) as string;
    const item = fromWire((value as Record<string, unknown>)[key]);
    if (name === "__proto__") Object.defineProperty(out, name, { value: item, enumerable: true, writable: true, configurable: true });
    else out[name] = item;
  }
  return out;
}

export function serializeCall(method: string, params: unknown[]): string {
  return serializer.serializeMethodCall(method, toWire(params) as unknown[]);
}

export function serializeResponse(value: unknown): string {
  return serializer.serializeMethodResponse(toWire(value));
}

export function serializeFault(faultCode: number, faultString: string): string {
  return serializer.serializeFault({ faultCode, faultString });
}

/**
 * A Deserializer of the package without the sax stream its constructor makes: the same fields
 * (a test compares them with a constructed one), no parser. Its handlers are then driven by a
 * plain sax parser, synchronously. The stream path (a sax stream, a Readable piped into it,
 * events re-emitted through EventEmitters, the end a few ticks later) cost 3-4 times the CPU of
 * this one per small answer (about 0.2 ms) and most of its garbage; the master parses two
 * answers per dispatched build.
 */
export function bareDeserializer(): XmlrpcDeserializer {
  const d = Object.create(DeserializerCtor.prototype) as XmlrpcDeserializer & Record<string, unknown>;
  Object.assign(d, {
    type: null,
    responseType: null,
    stack: [],
    marks: [],
    data: [],
    methodname: null,
    encoding: "utf8",
    value: false,
    callback: null,
    error: null,
  });
  return d;
}

/** The package's deserialize methods read a stream; ours is fed directly, so it gets a dummy. */
const NO_STREAM = { setEncoding() {}, on() {}, pipe() {} } as unknown as Readable;

/** Characters fed to the parser at a time, so a limit hit stops the parse instead of reading on. */
const SLICE = 64 * 1024;

/** Runs the package's deserializer over `body` with our limits; rejects with RpcDecodeError. */
function runDeserializer<T>(
  body: Buffer,
  start: (d: XmlrpcDeserializer, stream: Readable, done: (err: Error | null, value?: T) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let aborted = false;
    const done = (err: Error | null, value?: T) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(value as T);
    };
    const d = bareDeserializer();
    // Non-strict, as the package's sax.createStream() makes it: tag names arrive upper-cased.
    const parser = sax.parser(false, {});
    const fail = (message: string) => {
      aborted = true;
      d.onError(new RpcDecodeError(message));
    };
    let depth = 0;
    let valueDepth = 0;
    let elements = 0;
    // Scalars the package would read leniently (parseInt("12abc") is 12, an <int> beyond 32
    // bits passes, a <double> of 1e999 is Infinity) are refused here instead.
    let text = "";
    // As the sax stream does: report the error, clear it, go on (the deserializer keeps the first).
    parser.onerror = (err: Error) => {
      d.onError(err);
      parser.error = null;
    };
    // The package's end handler throws on a <fault> without a value (it reads a property of
    // undefined): turn that into a decode error.
    parser.onend = () => {
      try {
        d.onDone();
      } catch (err) {
        done(decodeError(err as Error));
      }
    };
    parser.ondoctype = () => fail("The message contains a DOCTYPE, which XML-RPC does not use.");
    parser.onprocessinginstruction = (pi: { name?: string }) => {
      if (typeof pi?.name === "string" && pi.name.toLowerCase() !== "xml") fail("The message contains an XML processing instruction, which XML-RPC does not use.");
    };
    parser.onopentag = (node: { name: string }) => {
      d.onOpentag(node);
      text = "";
      if (aborted) return;
      depth += 1;
      elements += 1;
      if (node.name === "ARRAY" || node.name === "STRUCT") valueDepth += 1;
      if (valueDepth > MAX_VALUE_DEPTH) fail(`Values nest deeper than ${MAX_VALUE_DEPTH} levels.`);
      else if (depth > MAX_ELEMENT_DEPTH) fail(`XML elements nest deeper than ${MAX_ELEMENT_DEPTH} levels.`);
      else if (elements > MAX_ELEMENTS) fail(`The message has more than ${MAX_ELEMENTS} XML elements.`);
    };
    parser.ontext = (t: string) => {
      d.onText(t);
      if (text.length < 400) text += t;
    };
    parser.oncdata = (t: string) => {
      d.onCDATA(t);
      if (text.length < 400) text += t;
    };
    parser.onclosetag = (name: string) => {
      d.onClosetag(name);
      depth -= 1;
      if (name === "ARRAY" || name === "STRUCT") valueDepth -= 1;
      if (aborted) return;
      if (name === "INT" || name === "I4") {
        const n = /^\s*[+-]?[0-9]{1,12}\s*$/.test(text) ? Number(text) : NaN;
        if (!Number.isInteger(n) || n < INT32_MIN || n > INT32_MAX) {
          fail(`The value ${JSON.stringify(text.trim().slice(0, 40))} is not an XML-RPC int (a whole number of 32 bits); larger numbers travel as decimal strings.`);
        }
      } else if (name === "DOUBLE") {
        const n = /^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$/.test(text) ? Number(text) : NaN;
        if (!Number.isFinite(n)) fail(`The value ${JSON.stringify(text.trim().slice(0, 40))} is not a finite XML-RPC double.`);
      }
    };
    try {
      start(d, NO_STREAM, done);
      const xml = body.toString("utf8");
      for (let offset = 0; offset < xml.length && !aborted && !settled; offset += SLICE) parser.write(xml.slice(offset, offset + SLICE));
      if (!aborted && !settled) parser.close();
    } catch (err) {
      done(decodeError(err as Error));
    }
  });
}

function decodeError(err: Error): RpcDecodeError {
  if (err instanceof RpcDecodeError) return err;
  // sax messages carry "\nLine: …"; keep the first line.
  const first = String(err.message ?? err).split("\n")[0]!.slice(0, 200);
  return new RpcDecodeError(`The message is not well-formed XML-RPC (${first}).`);
}

export interface DecodedCall {
  method: string;
  params: unknown[];
}

export function deserializeCall(body: Buffer): Promise<DecodedCall> {
  return runDeserializer<DecodedCall>(body, (d, stream, done) => {
    d.deserializeMethodCall(stream, (err, method, params) => {
      if (err) return done(decodeError(err));
      done(null, { method: String(method), params: (fromWire(params ?? []) as unknown[]) ?? [] });
    });
  });
}

export type DecodedResponse = { fault: false; value: unknown } | { fault: true; faultCode: unknown; faultString: unknown };

export function deserializeResponse(body: Buffer): Promise<DecodedResponse> {
  return runDeserializer<DecodedResponse>(body, (d, stream, done) => {
    d.deserializeMethodResponse(stream, (err, result) => {
      if (err) {
        if (!(err instanceof RpcDecodeError) && "faultCode" in err) {
          return done(null, { fault: true, faultCode: err.faultCode, faultString: fromWire(err.faultString) });
        }
        return done(decodeError(err));
      }
      done(null, { fault: false, value: fromWire(result) });
    });
  });
}

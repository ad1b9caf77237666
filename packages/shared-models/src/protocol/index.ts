// The master↔slave protocol: method types, faults, the XML codec, argument checks, and the
// typed server and client over it. Loads no database or scheduling code, so the slave can use it.
export * from "./types.js";
export * from "./auth.js";
export * from "./xml.js";
export * from "./validate.js";
export * from "./server.js";
export * from "./client.js";

export * from "./states.js";
export * from "./config.js";
export * from "./logger.js";
export * from "./protocol/types.js";
export * from "./db/pool.js";
export * from "./db/channels.js";
export * from "./db/listen.js";
export * from "./db/migrate.js";
export * from "./db/embedded.js";
// Data access (issue 2, item 3).
export * from "./passwords.js";
export * from "./db/projects.js";
export * from "./db/builds.js";
export * from "./db/builders.js";
export * from "./db/users.js";
export * from "./db/tokens.js";
export * from "./db/audit.js";

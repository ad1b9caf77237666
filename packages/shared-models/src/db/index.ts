// Data access: the pool, LISTEN/NOTIFY, migrations and one module of named queries per entity.
// The only SQL outside migrations/ lives under this folder; build-transitions.ts is the one
// writer of a builds row. (The embedded PostgreSQL is its own subpath: it needs a dev dependency.)
export * from "./pool.js";
export * from "./channels.js";
export * from "./listen.js";
export * from "./migrate.js";
export * from "./roles.js";
export * from "./projects.js";
export * from "./builds.js";
export * from "./build-transitions.js";
export * from "./build-lifecycle.js";
export * from "./dispatch-claims.js";
export * from "./builders.js";
export * from "./users.js";
export * from "./tokens.js";
export * from "./audit.js";
export * from "./artifacts.js";
export * from "./logs.js";
export * from "./manifests.js";
export * from "./schedules.js";
export * from "./retention.js";
export * from "./cache-notify.js";
export * from "./project-membership.js";
export * from "./visible-builds.js";
export * from "./webhooks.js";
export * from "./outbox.js";
export * from "./master-facts.js";

// Every rule for input, one module per kind of input. A rule returns the cleaned value or one
// sentence, and every part of lexbuilder that takes the input uses the same rule. The schedule
// rules are their own subpath (rules/schedule): they load node-cron, which the slave never needs.
export type { Checked } from "./checked.js";
export * from "./config-url.js";
export * from "./config-ref.js";
export * from "./env.js";
export * from "./names.js";
export * from "./numbers.js";
export * from "./text.js";
export * from "./builder.js";
export * from "./users.js";
export * from "./builds.js";
export * from "./files.js";
export * from "./range.js";
export * from "./packages.js";
export * from "./notifications.js";

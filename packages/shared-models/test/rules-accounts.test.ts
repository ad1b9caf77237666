// Rules for builders, users, project text, build queries and reported result files.
import { describe, expect, it } from "vitest";
import {
  checkBuilderToken,
  checkBuilderUrl,
  checkBuildReason,
  checkBuildState,
  checkDescription,
  checkIdempotencyKey,
  checkDisableReason,
  checkPassword,
  checkResultFile,
  checkRole,
  checkTitle,
  checkTokenLabel,
  type Checked,
} from "../src/rules/index.js";

const TOKEN = "The token may not contain spaces or control characters; paste exactly what lexbuilder-slave token printed.";
const LABEL = "Give the token a label of 1 to 80 characters, e.g. the script or CI job that uses it.";
const REASON = "Give a reason of 1 to 500 characters, on one line.";
const file = { name: "live-image-amd64.iso", sha256: "a".repeat(64), size: "10", kind: "image" };

const cases: [string, (v: unknown) => Checked<unknown>, unknown, Checked<unknown>][] = [
  ["builder URL", checkBuilderUrl, "http://127.0.0.1:8221/", { value: "http://127.0.0.1:8221" }],
  ["builder URL", checkBuilderUrl, "https://b1.example.org", { value: "https://b1.example.org" }],
  ["builder URL", checkBuilderUrl, "", { error: "Give the builder's URL, as in http://builder1.example.org:8221." }],
  ["builder URL", checkBuilderUrl, "not a url", { error: "The builder URL is not a valid URL; write it as http://host:8221." }],
  ["builder URL", checkBuilderUrl, "ftp://x", { error: "The builder URL must start with http:// or https://." }],
  ["builder URL", checkBuilderUrl, "http://u:p@host:8221", { error: "Put the builder's token in the token field, not in the URL." }],
  ["builder URL", checkBuilderUrl, "http://host/?a=1", { error: "The builder URL may not have a query or fragment; give only scheme, host and port." }],
  ["builder URL", checkBuilderUrl, "http://h/" + "a".repeat(500), { error: "The builder URL may be at most 500 characters long." }],
  ["builder token", checkBuilderToken, " abc ", { value: "abc" }],
  ["builder token", checkBuilderToken, "", { error: "Paste the builder's token (lexbuilder-slave token prints it on the builder)." }],
  ["builder token", checkBuilderToken, "a b", { error: TOKEN }],
  ["disable reason", checkDisableReason, " disk replaced ", { value: "disk replaced" }],
  ["disable reason", checkDisableReason, " ", { error: REASON }],
  ["disable reason", checkDisableReason, "x".repeat(501), { error: REASON }],
  ["disable reason", checkDisableReason, "a\nb", { error: REASON }],
  ["role", checkRole, "viewer", { value: "viewer" }],
  ["role", checkRole, "root", { error: "Choose a role: admin, builder, viewer." }],
  ["password", checkPassword, " 123456789", { value: " 123456789" }],
  ["password", checkPassword, "123456789", { error: "The password must be at least 10 characters long." }],
  ["password", checkPassword, "x".repeat(1025), { error: "The password may be at most 1024 characters long." }],
  ["token label", checkTokenLabel, "CI job", { value: "CI job" }],
  ["token label", checkTokenLabel, "", { error: LABEL }],
  ["token label", checkTokenLabel, "x".repeat(81), { error: LABEL }],
  ["title", checkTitle, "  Debian live ", { value: "Debian live" }],
  ["title", checkTitle, "x".repeat(201), { error: "The title may be at most 200 characters long." }],
  ["title", checkTitle, "a\u0007", { error: "The title may not contain control characters." }],
  ["description", checkDescription, "line 1\r\n\tline 2", { value: "line 1\n\tline 2" }],
  ["description", checkDescription, "a\u0000", { error: "The description may not contain control characters." }],
  ["description", checkDescription, "x".repeat(10_001), { error: "The description may be at most 10000 characters long." }],
  ["build state", checkBuildState, "queued", { value: "QUEUED" }],
  ["build state", checkBuildState, "DONE", { error: `"DONE" is not a build state; use one of QUEUED, DISPATCHING, BUILDING, COLLECTING, SUCCEEDED, FAILED, CANCELLING, CANCELLED.` }],
  ["build reason", checkBuildReason, " Milestone ", { value: "milestone" }],
  ["build reason", checkBuildReason, "whim", { error: "\"whim\" is not a build reason; use one of manual, daily, api, retry, milestone." }],
  ["result file", checkResultFile as (v: unknown) => Checked<unknown>, file, { value: "live-image-amd64.iso" }],
  ["result file", checkResultFile as (v: unknown) => Checked<unknown>, { ...file, name: "../x" }, { error: '"../x" is not a plain file name (letters, digits and . _ + -, not starting with a dot).' }],
  ["result file", checkResultFile as (v: unknown) => Checked<unknown>, { ...file, name: ".hidden" }, { error: '".hidden" is not a plain file name (letters, digits and . _ + -, not starting with a dot).' }],
  ["result file", checkResultFile as (v: unknown) => Checked<unknown>, { ...file, sha256: "A".repeat(64) }, { error: "The sha256 of live-image-amd64.iso is not 64 lower-case hexadecimal digits." }],
  ["result file", checkResultFile as (v: unknown) => Checked<unknown>, { ...file, size: "-1" }, { error: "The size of live-image-amd64.iso is not a whole number of bytes." }],
  ["result file", checkResultFile as (v: unknown) => Checked<unknown>, { ...file, kind: "exe" }, { error: "The kind of live-image-amd64.iso is not one of image, manifest, files, contents, log, other." }],
];

describe("builder, account, text, build and file rules", () => {
  it.each(cases)("%s %j", (_kind, rule, input, result) => {
    expect(rule(input)).toEqual(result);
  });
});

describe("checkIdempotencyKey", () => {
  const sentence = "The Idempotency-Key header must be 1 to 200 printable ASCII characters without spaces, e.g. a UUID.";
  it.each([
    ["0b9d8a4e-6f3c-4b8e-9a51-2f7d3c1e5a90", { value: "0b9d8a4e-6f3c-4b8e-9a51-2f7d3c1e5a90" }],
    ["k".repeat(200), { value: "k".repeat(200) }],
    ["", { error: sentence }],
    ["a b", { error: sentence }],
    ["k".repeat(201), { error: sentence }],
    ["ключ", { error: sentence }],
    [42, { error: sentence }],
  ])("%j", (key, result) => {
    expect(checkIdempotencyKey(key)).toEqual(result);
  });
});

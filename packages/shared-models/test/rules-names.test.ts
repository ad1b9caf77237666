// Name rules: projects, builders, users, suites, architectures, milestones.
import { describe, expect, it } from "vitest";
import {
  checkArchitecture,
  checkArchitectureName,
  checkBuilderName,
  checkMilestone,
  checkProjectName,
  checkSuite,
  checkUserName,
  type Checked,
} from "../src/rules/index.js";

const ARCHES = "amd64, arm64, armhf, armel, i386, ppc64el, riscv64, s390x";
const PROJECT = "The name may use lower-case letters, digits and dashes, and must start with a letter or digit.";
const BUILDER = "The builder name may use lower-case letters, digits, dots and dashes, and must start with a letter or digit.";
const USER = "The user name must be 2 to 32 characters: lower-case letters, digits and _ . -, starting with a letter.";
const SUITE = "The suite may use lower-case letters, digits, dots and dashes (for example trixie or bookworm).";
const ARCH_NAME = (shown: string) => `The architecture ${shown} is not a valid name: Debian architecture names use lower-case letters, digits and dashes, such as amd64.`;

const cases: [string, (v: unknown) => Checked<unknown>, unknown, Checked<unknown>][] = [
  ["project", checkProjectName, " debian-live ", { value: "debian-live" }],
  ["project", checkProjectName, "a".repeat(63), { value: "a".repeat(63) }],
  ["project", checkProjectName, "", { error: "Give the project a name." }],
  ["project", checkProjectName, "a".repeat(64), { error: "The name may be at most 63 characters long." }],
  ["project", checkProjectName, "Debian Live", { error: PROJECT }],
  ["project", checkProjectName, "-x", { error: PROJECT }],
  ["project", checkProjectName, "../etc", { error: PROJECT }],
  ["builder", checkBuilderName, "builder-1.lab", { value: "builder-1.lab" }],
  ["builder", checkBuilderName, "", { error: "Give the builder a name." }],
  ["builder", checkBuilderName, "Builder 1", { error: BUILDER }],
  ["builder", checkBuilderName, ".b", { error: BUILDER }],
  ["user", checkUserName, "alice", { value: "alice" }],
  ["user", checkUserName, "bob.smith_2", { value: "bob.smith_2" }],
  ["user", checkUserName, "", { error: "Give the user a name." }],
  ["user", checkUserName, "A", { error: USER }],
  ["user", checkUserName, "a", { error: USER }],
  ["user", checkUserName, "1bob", { error: USER }],
  ["user", checkUserName, "a".repeat(33), { error: USER }],
  ["suite", checkSuite, "trixie", { value: "trixie" }],
  ["suite", checkSuite, "bookworm-backports", { value: "bookworm-backports" }],
  ["suite", checkSuite, "", { error: "Give the Debian suite to build (for example trixie)." }],
  ["suite", checkSuite, "Trixie!", { error: SUITE }],
  ["suite", checkSuite, "tri xie", { error: SUITE }],
  ["architecture name", checkArchitectureName, "amd64", { value: "amd64" }],
  ["architecture name", checkArchitectureName, "kfreebsd-amd64", { value: "kfreebsd-amd64" }],
  ["architecture name", checkArchitectureName, "", { error: "Give a Debian architecture name such as amd64." }],
  ["architecture name", checkArchitectureName, "AMD64", { error: ARCH_NAME('"AMD64"') }],
  ["architecture name", checkArchitectureName, "amd 64", { error: ARCH_NAME('"amd 64"') }],
  ["project architecture", checkArchitecture, "riscv64", { value: "riscv64" }],
  ["project architecture", checkArchitecture, "", { error: `Choose an architecture: ${ARCHES}.` }],
  ["project architecture", checkArchitecture, "vax", { error: `"vax" is not an architecture lexbuilder knows; choose one of ${ARCHES}.` }],
  ["milestone", checkMilestone, " 1.0 ", { value: "1.0" }],
  ["milestone", checkMilestone, "2026.11 release", { value: "2026.11 release" }],
  ["milestone", checkMilestone, "", { error: "Give the milestone a name (for example 1.0 or beta-2)." }],
  ["milestone", checkMilestone, "x".repeat(101), { error: "A milestone name may be at most 100 characters long." }],
  ["milestone", checkMilestone, "a\u0007b", { error: "A milestone name may not contain control characters." }],
];

describe("name rules", () => {
  it.each(cases)("%s %j", (_kind, rule, input, result) => {
    expect(rule(input)).toEqual(result);
  });
});

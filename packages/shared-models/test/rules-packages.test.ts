// Package rules: Debian package names (policy §5.6.1) and versions (§5.6.12), as search takes them.
import { describe, expect, it } from "vitest";
import { checkPackageName, checkPackageVersion } from "../src/rules/index.js";

const NAME = (shown: string) =>
  `${shown} is not a Debian package name: lower-case letters, digits and + . -, at least two characters, starting with a letter or digit (as in bash or libc6:i386).`;
const VERSION = (shown: string) => `${shown} is not a Debian version: [epoch:]upstream[-revision] of letters, digits and . + ~ (as in 5.2.15-2+b1 or 1:2.38-4).`;

describe("checkPackageName", () => {
  it.each([
    [" bash ", { value: "bash" }],
    ["libstdc++6", { value: "libstdc++6" }],
    ["g++-14", { value: "g++-14" }],
    ["0ad", { value: "0ad" }],
    ["python3.13", { value: "python3.13" }],
    // One of several architectures of a package, as dpkg-query and the manifest name it.
    ["libc6:i386", { value: "libc6:i386" }],
    ["", { error: "Give a package name such as bash." }],
    [undefined, { error: "Give a package name such as bash." }],
    ["a", { error: NAME('"a"') }],
    ["Bash", { error: NAME('"Bash"') }],
    ["-bash", { error: NAME('"-bash"') }],
    [".bash", { error: NAME('".bash"') }],
    ["+x", { error: NAME('"+x"') }],
    ["foo_bar", { error: NAME('"foo_bar"') }],
    ["foo~1", { error: NAME('"foo~1"') }],
    ["bash 5", { error: NAME('"bash 5"') }],
    ["libc6:", { error: NAME('"libc6:"') }],
    ["libc6:I386", { error: NAME('"libc6:I386"') }],
    ["libc6:i386:x", { error: NAME('"libc6:i386:x"') }],
    ["%", { error: NAME('"%"') }],
    ["b".repeat(257), { error: NAME(`"${"b".repeat(40)}…"`) }],
  ])("%j", (v, result) => {
    expect(checkPackageName(v)).toEqual(result);
  });
});

describe("checkPackageVersion", () => {
  it.each([
    ["5.2.15-2", { value: "5.2.15-2" }],
    [" 5.2.15-2+b1 ", { value: "5.2.15-2+b1" }],
    ["1:2.38-4", { value: "1:2.38-4" }],
    ["2.0~rc1", { value: "2.0~rc1" }],
    ["1.0-1~bpo12+1", { value: "1.0-1~bpo12+1" }],
    // Dashes in upstream are allowed when a revision follows the last one.
    ["1.2-beta-3", { value: "1.2-beta-3" }],
    ["7", { value: "7" }],
    ["", { error: "Give a package version such as 5.2.15-2." }],
    ["1.0-", { error: VERSION('"1.0-"') }],
    ["-1", { error: VERSION('"-1"') }],
    [":1.0", { error: VERSION('":1.0"') }],
    ["a:1.0", { error: VERSION('"a:1.0"') }],
    ["1:", { error: VERSION('"1:"') }],
    ["1:2:3", { error: VERSION('"1:2:3"') }],
    ["1.0_1", { error: VERSION('"1.0_1"') }],
    ["1.0 1", { error: VERSION('"1.0 1"') }],
    ["~1", { error: VERSION('"~1"') }],
    ["1".repeat(257), { error: VERSION(`"${"1".repeat(40)}…"`) }],
  ])("%j", (v, result) => {
    expect(checkPackageVersion(v)).toEqual(result);
  });
});

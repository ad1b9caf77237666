// The config-ref rule: git check-ref-format's rules, a 40-hex commit id, no leading dash.
import { describe, expect, it } from "vitest";
import { checkConfigRef } from "../src/rules/index.js";

const CHARACTERS = "A branch, tag or commit may use letters, digits and / . _ -, must not start with a dash or dot, and must not contain '..', '@{', '//' or any of ~ ^ : ? * [ \\.";
const ENDS = "A branch, tag or commit name may not begin or end with '/', or end with '.' or '.lock'.";
const PARTS = "No part of a branch or tag name may start with '.' or end with '.lock'.";
const DASH = "A branch, tag or commit name may not start with a dash.";

describe("checkConfigRef accepts", () => {
  it.each(["main", "release/2024.1", "v1.0.0", "refs/tags/v1.0", "feature+x", "feature_x-y", "a@b", "0123456789abcdef0123456789abcdef01234567", "r".repeat(250)])(
    "%s",
    (ref) => {
      expect(checkConfigRef(ref)).toEqual({ value: ref });
    },
  );
  it("trims blanks around the ref", () => {
    expect(checkConfigRef(" main ")).toEqual({ value: "main" });
  });
});

describe("checkConfigRef refuses", () => {
  it.each([
    ["", "Give a branch, tag or commit to build (for example main)."],
    [undefined, "Give a branch, tag or commit to build (for example main)."],
    ["r".repeat(251), "A branch, tag or commit name may be at most 250 characters long."],
    ["-b", DASH],
    ["--orphan", DASH],
    ["-c core.sshCommand=x", DASH],
    ["sp ace", CHARACTERS],
    ["x\u0001", CHARACTERS],
    ["x\u007f", CHARACTERS],
    ["a~1", CHARACTERS],
    ["a^", CHARACTERS],
    ["a:b", CHARACTERS],
    ["a?", CHARACTERS],
    ["a*", CHARACTERS],
    ["a[", CHARACTERS],
    ["a\\b", CHARACTERS],
    ["@", CHARACTERS],
    ["a..b", CHARACTERS],
    ["x@{1}", CHARACTERS],
    ["a//b", CHARACTERS],
    ["/abs", ENDS],
    ["trail/", ENDS],
    ["a.", ENDS],
    ["x.lock", ENDS],
    [".hidden", PARTS],
    ["a/.hidden", PARTS],
    ["a.lock/b", PARTS],
  ])("%j", (ref, sentence) => {
    expect(checkConfigRef(ref)).toEqual({ error: sentence });
  });
});

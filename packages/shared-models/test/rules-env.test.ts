// The environment rule: the project form's NAME=value lines, the API's object, the build call's struct.
import { describe, expect, it } from "vitest";
import { checkEnvironment, isReservedEnvName, parseExtraEnv } from "../src/rules/index.js";

const reserved = (name: string) => `${name} is set by the builder itself or is not allowed; choose another name.`;
const badName = (shown: string) => `The variable name ${shown} is not valid; use upper-case letters, digits and _, not starting with a digit.`;

describe("parseExtraEnv", () => {
  it.each([
    ["", {}],
    [null, {}],
    [undefined, {}],
    ["A=1\r\nB_2= spaced out \n", { A: "1", B_2: " spaced out" }],
    ["# mirror\nMIRROR=http://deb.debian.org/debian\n\nFLAVOUR=small=yes\n", { MIRROR: "http://deb.debian.org/debian", FLAVOUR: "small=yes" }],
    [{ X: "y" }, { X: "y" }],
  ])("accepts %j", (input, value) => {
    expect(parseExtraEnv(input)).toEqual({ value });
  });

  it.each([
    ["lower=1", badName('"lower"')],
    ["1A=1", badName('"1A"')],
    ["novalue", "Line 1 of the environment is not NAME=value; write one variable per line, as in MIRROR=http://deb.debian.org/debian."],
    ["A=1\n=2", "Line 2 of the environment is not NAME=value; write one variable per line, as in MIRROR=http://deb.debian.org/debian."],
    ["A=1\nA=2", "A is given twice; keep one."],
    [["A=1"], "The environment must be NAME=value lines."],
    [5, "The environment must be NAME=value lines."],
    [{ A: 5 }, "The value of A must be text."],
    [{ A: "x\ny" }, "The value of A may not contain line breaks or NUL characters."],
    [{ A: "x\u0000y" }, "The value of A may not contain line breaks or NUL characters."],
    [{ A: "x".repeat(4097) }, "The value of A may be at most 4096 characters long."],
    [{ ["A".repeat(129)]: "x" }, badName(`"${"A".repeat(40)}…"`)],
  ])("refuses %j", (input, sentence) => {
    expect(parseExtraEnv(input)).toEqual({ error: sentence });
  });

  it.each(["PROJECT", "ARCH", "SUITE", "NOW", "SOURCE_DATE_EPOCH", "PATH", "HOME", "LD_PRELOAD", "LD_ANYTHING", "GIT_SSH_COMMAND", "LEXBUILDER_SLAVE_BUILD", "BASH_FUNC_X", "DEBIAN_FRONTEND"])(
    "refuses the reserved name %s",
    (name) => {
      expect(isReservedEnvName(name)).toBe(true);
      expect(parseExtraEnv(`${name}=x`)).toEqual({ error: reserved(name) });
      expect(checkEnvironment({ [name]: "x" })).toEqual({ error: reserved(name) });
    },
  );

  it("takes __proto__ as a (refused) name, never as the object's prototype", () => {
    expect(parseExtraEnv({ __proto__: "x" } as unknown as Record<string, string>)).toEqual({ value: {} });
    expect(parseExtraEnv(JSON.parse('{"__proto__": "x"}'))).toEqual({ error: badName('"__proto__"') });
  });
});

describe("checkEnvironment", () => {
  it("accepts an object of names to text", () => {
    expect(checkEnvironment({ MIRROR: "http://m/debian", _X1: "" })).toEqual({ value: { MIRROR: "http://m/debian", _X1: "" } });
  });
  it.each([
    [["A=1"], "The environment must be NAME=value pairs: an object of names to text."],
    [null, "The environment must be NAME=value pairs: an object of names to text."],
    [Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`V${i}`, "x"])), "At most 100 environment variables are allowed; 101 were given."],
    [{ mirror: "x" }, badName('"mirror"')],
    [{ MIRROR: 1 }, "The value of MIRROR must be text."],
  ])("refuses %j", (input, sentence) => {
    expect(checkEnvironment(input)).toEqual({ error: sentence });
  });
});

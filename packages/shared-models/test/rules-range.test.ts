// The Range rule of file downloads: one byte range, or the whole file, or a 416 sentence.
import { describe, expect, it } from "vitest";
import { checkLogOffset, checkRange } from "../src/rules/index.js";

describe("checkRange", () => {
  it.each([
    [undefined, 100, null],
    ["bytes=0-9", 100, { start: 0, end: 9 }],
    [" bytes=0-9 ", 100, { start: 0, end: 9 }],
    ["bytes=90-", 100, { start: 90, end: 99 }],
    ["bytes=90-500", 100, { start: 90, end: 99 }],
    ["bytes=-5", 100, { start: 95, end: 99 }],
    ["bytes=-500", 100, { start: 0, end: 99 }],
    ["bytes=0-0", 1, { start: 0, end: 0 }],
    // Several ranges or another unit: ignored, the whole file is sent.
    ["bytes=0-1,5-6", 100, null],
    ["items=0-1", 100, null],
    ["bytes=a-b", 100, null],
  ])("%j of %d bytes is %j", (header, size, value) => {
    expect(checkRange(header, size)).toEqual({ value });
  });

  it.each([
    ["bytes=100-", 100],
    ["bytes=5-1", 100],
    ["bytes=-0", 100],
    ["bytes=-", 100],
    ["bytes=0-", 0],
    ["bytes=-5", 0],
    ["bytes=99999999999999999999-", 100],
  ])("refuses %j of %d bytes", (header, size) => {
    expect(checkRange(header, size)).toEqual({ error: `The requested range is outside the file's ${size} bytes.` });
  });
});

describe("checkLogOffset", () => {
  const sentence = "The offset must be a whole number of bytes, 0 or more, as in ?offset=0.";
  it.each([
    [undefined, { value: 0 }],
    ["0", { value: 0 }],
    ["4096", { value: 4096 }],
    ["999999999999999", { value: 999999999999999 }],
    ["", { error: sentence }],
    ["-1", { error: sentence }],
    ["1e99", { error: sentence }],
    ["x", { error: sentence }],
    ["9999999999999999", { error: sentence }],
    [["1", "2"], { error: sentence }],
  ])("%j", (offset, result) => {
    expect(checkLogOffset(offset)).toEqual(result);
  });
});

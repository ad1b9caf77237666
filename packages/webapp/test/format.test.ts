// The views' exact times and byte counts, which share their arithmetic with the schedules
// (the time-zone clock) and the slave (byte counts): the text a page shows is pinned here.
import { describe, expect, it } from "vitest";
import { wallClockAt } from "@lexbuilder/shared-models/schedule";
import { bytes, exact } from "../src/format.js";

describe("exact", () => {
  const at = new Date(Date.UTC(2026, 10, 25, 22, 10, 43, 900));

  it("shows UTC as it is, without the milliseconds", () => {
    expect(exact(at)).toBe("2026-11-25 22:10:43 UTC");
  });

  it("shows another zone's wall clock with its short name, on both sides of a DST change", () => {
    expect(exact(at, "America/New_York")).toBe("2026-11-25 17:10:43 EST");
    expect(exact(new Date(Date.UTC(2026, 6, 1, 12, 0, 0)), "America/New_York")).toBe("2026-07-01 08:00:00 EDT");
    expect(exact(at, "Asia/Kolkata")).toBe("2026-11-26 03:40:43 GMT+5:30");
  });

  it("agrees with the schedules' clock across the spring-forward hour", () => {
    // Europe/Berlin jumps from 02:00 to 03:00 local at 01:00 UTC on 2026-03-29.
    const before = Date.UTC(2026, 2, 29, 0, 59, 59);
    const after = Date.UTC(2026, 2, 29, 1, 0, 0);
    expect(wallClockAt(before, "Europe/Berlin")).toMatchObject({ hour: 1, minute: 59, second: 59, offsetMs: 3600_000 });
    expect(wallClockAt(after, "Europe/Berlin")).toMatchObject({ hour: 3, minute: 0, second: 0, offsetMs: 7200_000 });
    expect(exact(new Date(before), "Europe/Berlin")).toBe("2026-03-29 01:59:59 GMT+1");
    expect(exact(new Date(after), "Europe/Berlin")).toBe("2026-03-29 03:00:00 GMT+2");
  });
});

describe("bytes", () => {
  it("uses binary units with one decimal below ten of a unit", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(1023)).toBe("1023 B");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(12 * 1024 ** 3)).toBe("12 GiB");
    expect(bytes("2097152")).toBe("2.0 MiB");
  });

  it("shows a dash for what is not a number, and 0 B for nothing", () => {
    expect(bytes("many")).toBe("—");
    expect(bytes(null)).toBe("0 B");
  });
});

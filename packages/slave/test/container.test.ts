// The container module on its own: the hidden paths of a default installation, the live-build
// cache directory names, and a container made with the defaults (root, bwrap, nft and the
// cgroup v1 devices controller needed).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BuildContainer, slaveCgroup } from "../src/container.js";
import { hiddenPaths } from "../src/isolation.js";
import { liveBuildCacheDir } from "../src/livebuild.js";
import { spawnInGroup } from "../src/processes.js";
import { BUILD_PATH } from "../src/readiness.js";
import { tempDir } from "./helpers.js";

describe("hidden paths", () => {
  it("leave out a path under another one (a whiteout cannot hold another)", () => {
    expect(hiddenPaths("/var/lib/lexbuilder-slave", "/etc/lexbuilder/slave.token")).toEqual([
      "/etc/lexbuilder",
      "/var/lib/lexbuilder-slave",
      "/root",
      "/home",
    ]);
    expect(hiddenPaths("/srv/slave/", "/srv/slave/token")).toEqual(["/etc/lexbuilder", "/srv/slave", "/root", "/home"]);
  });
});

describe("live-build cache directories", () => {
  it("are one safe path component per project, suite and architecture", () => {
    expect(liveBuildCacheDir("/c", "demo", "bookworm", "amd64")).toBe("/c/demo/bookworm/amd64");
    expect(liveBuildCacheDir("/c", "..", "a/b", ".")).toBe("/c/%2e%2e/a%2fb/%2e");
    expect(liveBuildCacheDir("/c", "x y", "", "arm64")).toBe("/c/x%20y/%/arm64");
  });
});

describe("a container with the default hidden paths", () => {
  it("runs a command that sees none of them, its clone at /build, and its own hostname", async () => {
    const dir = tempDir("container");
    mkdirSync(join(dir, "config"));
    writeFileSync(join(dir, "config", "hello"), "hi\n");
    const container = await BuildContainer.make({
      workDir: join(dir, "config"),
      hidden: hiddenPaths("/var/lib/lexbuilder-slave", "/etc/lexbuilder/slave.token"),
      cgroupParent: slaveCgroup(dir),
      bwrap: "bwrap",
      env: { PATH: BUILD_PATH },
    });
    try {
      const script = "test ! -e /etc/lexbuilder && test ! -e /var/lib/lexbuilder-slave && test ! -e /root/.bashrc && cat /build/hello && hostname && echo $$";
      const wrapped = container.wrap("sh", ["-c", script]);
      let out = "";
      const exit = await spawnInGroup(wrapped.command, wrapped.args, { cwd: dir, env: { PATH: BUILD_PATH }, onOutput: (c) => (out += c.toString()) }).exited;
      expect(exit.code, out).toBe(0);
      // PID 1 is bwrap's init, so the command is 2.
      expect(out).toBe("hi\nlexbuilder-build\n2\n");
    } finally {
      await container.destroy();
    }
  });
});

// Starts the protocol-speaking stand-in builders (fixtures/standin-builders.mjs) in a process of
// their own, as slaves are, so their work does not share the bench's event loop.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const STANDIN_TOKEN = "standin-token";
const SCRIPT = fileURLToPath(new URL("./fixtures/standin-builders.mjs", import.meta.url));

export interface StandinFarm {
  /** The builders' URLs, one per stand-in. */
  urls: string[];
  /** The stand-ins' process, for its CPU use. */
  pid: number;
  close(): Promise<void>;
}

/**
 * `count` stand-ins behind one server. `buildMs`: how long an accepted build runs before
 * WAITING; null makes stand-ins that only idle (build() is refused).
 */
export async function startStandinBuilders(count: number, buildMs: number | null): Promise<StandinFarm> {
  const proc = spawn(process.execPath, [SCRIPT, String(count), buildMs === null ? "idle" : String(buildMs), STANDIN_TOKEN], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
  const base = await new Promise<string>((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /^listening (http:\/\/\S+)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error(`the stand-in builders exited before listening: ${out}`)));
  });
  return {
    urls: Array.from({ length: count }, (_, i) => `${base}/b/${i}`),
    pid: proc.pid!,
    close: async () => {
      proc.stdin.end();
      await exited;
    },
  };
}

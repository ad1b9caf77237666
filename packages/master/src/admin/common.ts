// What every lexbuilder-admin command gets: a database pool from DATABASE_URL, output helpers,
// and errors that reach the user as one sentence.
import { readFile } from "node:fs/promises";
import { loadConfigOrExit, readDatabaseUrl } from "@lexbuilder/shared-models/config";
import { createPool, type Pool } from "@lexbuilder/shared-models/db";
import type { Checked } from "@lexbuilder/shared-models/rules";
import type { CommandSpec, Parsed } from "./args.js";

export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandError";
  }
}

export interface Command {
  spec: CommandSpec;
  run(args: Parsed, io: AdminIo): Promise<void>;
}

export interface AdminIo {
  pool(): Pool;
  out(text: string): void;
  json(value: unknown): void;
}

export function makeIo(): AdminIo & { close(): Promise<void> } {
  let pool: Pool | null = null;
  return {
    pool() {
      if (!pool) {
        const url = loadConfigOrExit(() => readDatabaseUrl(process.env), "lexbuilder-admin");
        pool = createPool(url, { max: 2, applicationName: "lexbuilder-admin" });
      }
      return pool;
    },
    out(text) {
      process.stdout.write(text.endsWith("\n") ? text : text + "\n");
    },
    json(value) {
      process.stdout.write(JSON.stringify(value, null, 2) + "\n");
    },
    async close() {
      if (pool) await pool.end().catch(() => {});
    },
  };
}

/** Reads a secret from a file (first line, trimmed); a sentence when it cannot. */
export async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new CommandError(`Cannot read the ${what} file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
  }
  const first = text.split(/\r?\n/)[0]!.trim();
  if (!first) throw new CommandError(`The ${what} file ${path} is empty.`);
  return first;
}

/** Formats rows as aligned columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return [line(headers), ...rows.map(line)].join("\n");
}

export function firstError(errors: Record<string, string>): string {
  return Object.values(errors)[0] ?? "The input is not valid.";
}

/** The rule's value, or a CommandError with its sentence. */
export function ruled<T>(checked: Checked<T>): T {
  if (checked.error !== undefined) throw new CommandError(checked.error);
  return checked.value;
}

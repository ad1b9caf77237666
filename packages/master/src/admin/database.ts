// lexbuilder-admin migrate: applies the schema migrations.
import { migrate } from "@lexbuilder/shared-models/db";
import type { Command } from "./common.js";

export const migrateCommand: Command = {
  spec: {
    name: "migrate",
    usage: "migrate",
    summary: "Applies the database migrations that are not applied yet (safe to run again).",
    positionals: [],
  },
  async run(_args, io) {
    const applied = await migrate(io.pool());
    io.out(applied.length ? `Applied migrations ${applied.join(", ")}.` : "The database schema is up to date.");
  },
};

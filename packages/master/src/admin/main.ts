// lexbuilder-admin <command>: the administration commands (README "Using lexbuilder").
import { ConfigError } from "@lexbuilder/shared-models/config";
import { commandHelp, parseArgs, UsageError } from "./args.js";
import { addBuilderCommand, disableBuilderCommand, enableBuilderCommand, listBuildersCommand } from "./builders.js";
import { listBuildsCommand, requestBuildCommand, showBuildCommand } from "./builds.js";
import { CommandError, makeIo, type Command } from "./common.js";
import { migrateCommand } from "./database.js";
import { addProjectCommand } from "./projects.js";
import { createTokenCommand, createUserCommand } from "./users.js";

const COMMANDS: Command[] = [
  migrateCommand,
  createUserCommand,
  createTokenCommand,
  addBuilderCommand,
  listBuildersCommand,
  enableBuilderCommand,
  disableBuilderCommand,
  addProjectCommand,
  requestBuildCommand,
  showBuildCommand,
  listBuildsCommand,
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length));
  return [
    "Usage: lexbuilder-admin <command> [arguments]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary.split("\n")[0]}`),
    "",
    "Each command takes --help. The database is DATABASE_URL.",
    "",
  ].join("\n");
}

export async function runAdmin(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
  if (!command) {
    process.stderr.write(`lexbuilder-admin: there is no command "${name}"; run lexbuilder-admin --help for the list.\n`);
    return 2;
  }
  const io = makeIo();
  try {
    const args = parseArgs(command.spec, rest);
    if (args.flags.has("help")) {
      process.stdout.write(commandHelp(command.spec));
      return 0;
    }
    await command.run(args, io);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`lexbuilder-admin: ${err.message}\n`);
      return 2;
    }
    if (err instanceof CommandError || err instanceof ConfigError) {
      process.stderr.write(`lexbuilder-admin: ${err.message}\n`);
      return 1;
    }
    const e = err as { code?: string; message?: string };
    if (e.code === "ECONNREFUSED" || e.code === "ENOTFOUND" || e.code === "28P01" || e.code === "3D000") {
      process.stderr.write(`lexbuilder-admin: cannot use the database (${e.message}); check DATABASE_URL.\n`);
      return 1;
    }
    process.stderr.write(`lexbuilder-admin: ${e.message ?? String(err)}\n`);
    return 1;
  } finally {
    await io.close();
  }
}

runAdmin(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`lexbuilder-admin: ${(err as Error).message}\n`);
    process.exit(1);
  },
);

// lexbuilder-admin add-builder / list-builders / enable-builder / disable-builder.
import {
  addBuilder,
  BuilderExistsError,
  disableBuilder,
  enableBuilder,
  getBuilderByName,
  listBuilders,
  recordAudit,
  withTransaction,
} from "@lexbuilder/shared-models/db";
import { checkDisableReason } from "@lexbuilder/shared-models/rules";
import { validateBuilderInput } from "@lexbuilder/shared-models/validation";
import { CommandError, firstError, readSecretFile, ruled, table, type Command } from "./common.js";

export const addBuilderCommand: Command = {
  spec: {
    name: "add-builder",
    usage: "add-builder NAME URL --token-file F",
    summary: "Adds a builder (a slave) at URL; its token (printed by `lexbuilder-slave token`) is read from --token-file.",
    positionals: ["NAME", "URL"],
    options: ["token-file"],
    required: ["token-file"],
  },
  async run(args, io) {
    const token = await readSecretFile(args.options.get("token-file")!, "token");
    const checked = validateBuilderInput({ name: args.positionals[0], url: args.positionals[1], token });
    if (!checked.ok) throw new CommandError(firstError(checked.errors));
    try {
      const b = await withTransaction(io.pool(), async (c) => {
        const row = await addBuilder(c, checked.value);
        await recordAudit(c, { actor: "admin-cli", action: "builder.add", objectType: "builder", objectId: row.id, details: { url: row.url } });
        return row;
      });
      io.out(`Added builder ${b.name} at ${b.url}; the master contacts it now.`);
    } catch (err) {
      if (err instanceof BuilderExistsError) throw new CommandError(err.message);
      throw err;
    }
  },
};

export const listBuildersCommand: Command = {
  spec: {
    name: "list-builders",
    usage: "list-builders [--json]",
    summary: "Lists the builders with their state, architectures, current build and last contact.",
    positionals: [],
    json: true,
  },
  async run(args, io) {
    const builders = await listBuilders(io.pool());
    if (args.flags.has("json")) {
      io.json(
        builders.map((b) => ({
          name: b.name,
          url: b.url,
          state: b.state,
          enabled: b.enabled,
          disabledReason: b.disabledReason,
          ready: b.ready,
          notReadyReason: b.notReadyReason,
          architectures: b.architectures,
          currentBuild: b.currentBuildId,
          lastContactAt: b.lastContactAt ? b.lastContactAt.toISOString() : null,
          scanFailures: b.scanFailures,
          failureCount: b.failureCount,
        })),
      );
      return;
    }
    if (builders.length === 0) {
      io.out("There are no builders yet; add one with lexbuilder-admin add-builder.");
      return;
    }
    io.out(
      table(
        ["NAME", "STATE", "ENABLED", "ARCHES", "BUILD", "LAST CONTACT", "URL"],
        builders.map((b) => [
          b.name,
          b.state,
          b.enabled ? "yes" : `no (${b.disabledReason ?? "disabled"})`,
          b.architectures.join(",") || "-",
          b.currentBuildId ? `#${b.currentBuildId}` : "-",
          b.lastContactAt ? b.lastContactAt.toISOString() : "never",
          b.url,
        ]),
      ),
    );
  },
};

async function builderId(io: Parameters<Command["run"]>[1], name: string): Promise<number> {
  const b = await getBuilderByName(io.pool(), name);
  if (!b) throw new CommandError(`There is no builder named ${name}.`);
  return b.id;
}

export const enableBuilderCommand: Command = {
  spec: {
    name: "enable-builder",
    usage: "enable-builder NAME",
    summary: "Enables a builder and forgets its counted failures.",
    positionals: ["NAME"],
  },
  async run(args, io) {
    const name = args.positionals[0]!;
    const id = await builderId(io, name);
    await withTransaction(io.pool(), async (c) => {
      await enableBuilder(c, id);
      await recordAudit(c, { actor: "admin-cli", action: "builder.enable", objectType: "builder", objectId: id });
    });
    io.out(`Enabled builder ${name}.`);
  },
};

export const disableBuilderCommand: Command = {
  spec: {
    name: "disable-builder",
    usage: "disable-builder NAME --reason TEXT",
    summary: "Disables a builder (it gets no new builds); the reason is shown in the console.",
    positionals: ["NAME"],
    options: ["reason"],
    required: ["reason"],
  },
  async run(args, io) {
    const name = args.positionals[0]!;
    const reason = ruled(checkDisableReason(args.options.get("reason")));
    const id = await builderId(io, name);
    await withTransaction(io.pool(), async (c) => {
      await disableBuilder(c, id, reason);
      await recordAudit(c, { actor: "admin-cli", action: "builder.disable", objectType: "builder", objectId: id, details: { reason } });
    });
    io.out(`Disabled builder ${name}.`);
  },
};

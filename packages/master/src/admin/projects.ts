// lexbuilder-admin add-project.
import {
  createProject,
  ProjectExistsError,
  readList,
  recordAudit,
  validateProjectInput,
  withTransaction,
} from "@lexbuilder/shared-models";
import { CommandError, firstError, type Command } from "./common.js";

export const addProjectCommand: Command = {
  spec: {
    name: "add-project",
    usage: "add-project NAME --config-url URL [--config-ref REF] --arch ARCH [--suite S] [--daily HH:MM]",
    summary:
      "Adds a project: a branch of live-build configuration to build. --daily builds it every day at HH:MM (UTC).\nConfig URL schemes allowed: LEXBUILDER_ALLOWED_CONFIG_SCHEMES (https,http,git,ssh).",
    positionals: ["NAME"],
    options: ["config-url", "config-ref", "arch", "suite", "daily"],
    required: ["config-url", "arch"],
  },
  async run(args, io) {
    const allowedSchemes = readList(process.env, "LEXBUILDER_ALLOWED_CONFIG_SCHEMES", ["https", "http", "git", "ssh"]);
    const checked = validateProjectInput(
      {
        name: args.positionals[0],
        configUrl: args.options.get("config-url"),
        configRef: args.options.get("config-ref"),
        architecture: args.options.get("arch"),
        suite: args.options.get("suite"),
        scheduleDailyAt: args.options.get("daily"),
      },
      { allowedSchemes },
    );
    if (!checked.ok) throw new CommandError(firstError(checked.errors));
    try {
      const p = await withTransaction(io.pool(), async (c) => {
        const row = await createProject(c, checked.value);
        await recordAudit(c, { actor: "admin-cli", action: "project.create", objectType: "project", objectId: row.id });
        return row;
      });
      io.out(`Added project ${p.name} (${p.architecture}, ${p.configUrl} at ${p.configRef})${p.scheduleDailyAt ? `, built daily at ${p.scheduleDailyAt} ${p.scheduleTz}` : ""}.`);
    } catch (err) {
      if (err instanceof ProjectExistsError) throw new CommandError(err.message);
      throw err;
    }
  },
};

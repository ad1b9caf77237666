// lexbuilder-admin add-project.
import { readList } from "@lexbuilder/shared-models/config";
import {
  createProject,
  ProjectExistsError,
  recordAudit,
  withTransaction,
} from "@lexbuilder/shared-models/db";
import { checkSchemeList, DEFAULT_CONFIG_URL_SCHEMES } from "@lexbuilder/shared-models/rules";
import { validateProjectInput } from "@lexbuilder/shared-models/validation";
import { CommandError, firstError, ruled, type Command } from "./common.js";

export const addProjectCommand: Command = {
  spec: {
    name: "add-project",
    usage:
      "add-project NAME --config-url URL [--config-ref REF] --arch ARCH [--suite S] [--title T] [--daily HH:MM | --cron EXPR] [--tz ZONE] [--priority N] [--keep-last N] [--keep-days N]",
    summary:
      "Adds a project: a branch of live-build configuration to build. --daily builds it every day at HH:MM, --cron on a\nfive-field cron expression, both in --tz (an IANA zone, UTC by default). --priority orders the queue (-1000..1000);\n--keep-last and --keep-days bound how many builds keep their files (milestones and the latest success are kept).\nConfig URL schemes allowed: LEXBUILDER_ALLOWED_CONFIG_SCHEMES (https,http,git,ssh).",
    positionals: ["NAME"],
    options: ["config-url", "config-ref", "arch", "suite", "title", "daily", "cron", "tz", "priority", "keep-last", "keep-days"],
    required: ["config-url", "arch"],
  },
  async run(args, io) {
    const setting = "LEXBUILDER_ALLOWED_CONFIG_SCHEMES";
    const allowedSchemes = ruled(checkSchemeList(readList(process.env, setting, [...DEFAULT_CONFIG_URL_SCHEMES]), setting));
    const checked = validateProjectInput(
      {
        name: args.positionals[0],
        configUrl: args.options.get("config-url"),
        configRef: args.options.get("config-ref"),
        architecture: args.options.get("arch"),
        suite: args.options.get("suite"),
        title: args.options.get("title"),
        scheduleDailyAt: args.options.get("daily"),
        scheduleCron: args.options.get("cron"),
        scheduleTz: args.options.get("tz"),
        priority: args.options.get("priority"),
        keepLast: args.options.get("keep-last"),
        keepDays: args.options.get("keep-days"),
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
      const schedule = p.scheduleDailyAt
        ? `, built daily at ${p.scheduleDailyAt} ${p.scheduleTz}`
        : p.scheduleCron
          ? `, built on "${p.scheduleCron}" ${p.scheduleTz}`
          : "";
      io.out(`Added project ${p.name} (${p.architecture}, ${p.configUrl} at ${p.configRef})${schedule}.`);
    } catch (err) {
      if (err instanceof ProjectExistsError) throw new CommandError(err.message);
      throw err;
    }
  },
};

// lexbuilder-admin request-build / show-build / list-builds.
import { toApiBuild, toApiBuildListItem } from "@lexbuilder/shared-models/api-shapes";
import {
  DuplicateBuildError,
  getBuild,
  getProjectByName,
  listArtifacts,
  listBuilds,
  ProjectInactiveError,
  recordAudit,
  requestBuild,
  SYSTEM_VIEWER,
  withTransaction,
} from "@lexbuilder/shared-models/db";
import { checkBuildId, checkBuildState } from "@lexbuilder/shared-models/rules";
import { validateBuildRequest } from "@lexbuilder/shared-models/validation";
import { CommandError, firstError, ruled, table, type Command } from "./common.js";

export const requestBuildCommand: Command = {
  spec: {
    name: "request-build",
    usage: "request-build PROJECT [--milestone NAME] [--ref REF]",
    summary: "Queues a build of PROJECT (of REF instead of the project's ref, if given) and prints the new build's id.",
    positionals: ["PROJECT"],
    options: ["milestone", "ref"],
  },
  async run(args, io) {
    const name = args.positionals[0]!;
    const checked = validateBuildRequest({ milestone: args.options.get("milestone"), configRef: args.options.get("ref") });
    if (!checked.ok) throw new CommandError(firstError(checked.errors));
    const project = await getProjectByName(io.pool(), name, SYSTEM_VIEWER);
    if (!project) throw new CommandError(`There is no project named ${name}.`);
    try {
      const build = await withTransaction(io.pool(), async (c) => {
        const b = await requestBuild(c, {
          projectId: project.id,
          reason: checked.value.milestone ? "milestone" : "manual",
          milestone: checked.value.milestone,
          configRef: checked.value.configRef,
        });
        await recordAudit(c, { actor: "admin-cli", action: "build.request", objectType: "build", objectId: b.id, details: { project: name } });
        return b;
      });
      io.out(String(build.id));
    } catch (err) {
      if (err instanceof DuplicateBuildError || err instanceof ProjectInactiveError) throw new CommandError(err.message);
      throw err;
    }
  },
};

export const showBuildCommand: Command = {
  spec: {
    name: "show-build",
    usage: "show-build ID [--json]",
    summary: "Shows a build: state, timings, builder, config revision and files (--json: the API's object).",
    positionals: ["ID"],
    json: true,
  },
  async run(args, io) {
    const id = ruled(checkBuildId(args.positionals[0]));
    const build = await getBuild(io.pool(), id);
    if (!build) throw new CommandError(`There is no build #${id}.`);
    const api = toApiBuild(build, await listArtifacts(io.pool(), id));
    if (args.flags.has("json")) {
      io.json(api);
      return;
    }
    const lines = [
      `Build #${api.id} of ${api.project}: ${api.state}${api.failureKind ? ` (${api.failureKind})` : ""}`,
      api.failureMessage ? `  message:   ${api.failureMessage}` : null,
      `  reason:    ${api.reason}${api.milestone ? ` (milestone ${api.milestone})` : ""}`,
      `  ref:       ${api.configRef}${api.configRevision ? ` at ${api.configRevision}` : ""}`,
      `  arch:      ${api.architecture}`,
      `  builder:   ${api.builder ?? "-"} (attempt ${api.attempt})`,
      `  requested: ${api.requestedAt}`,
      api.startedAt ? `  started:   ${api.startedAt}` : null,
      api.finishedAt ? `  finished:  ${api.finishedAt}` : null,
      `  log:       ${api.logSize} bytes`,
      ...api.files.map((f) => `  file:      ${f.name}  ${f.size} bytes  sha256 ${f.sha256}`),
    ].filter((l): l is string => l !== null);
    io.out(lines.join("\n"));
  },
};

export const listBuildsCommand: Command = {
  spec: {
    name: "list-builds",
    usage: "list-builds [--project P] [--state S] [--json]",
    summary: "Lists builds, newest first (at most 200).",
    positionals: [],
    options: ["project", "state"],
    json: true,
  },
  async run(args, io) {
    const projectName = args.options.get("project");
    const stateText = args.options.get("state");
    const state = stateText === undefined ? undefined : ruled(checkBuildState(stateText));
    let projectId: number | undefined;
    if (projectName !== undefined) {
      const p = await getProjectByName(io.pool(), projectName, SYSTEM_VIEWER);
      if (!p) throw new CommandError(`There is no project named ${projectName}.`);
      projectId = p.id;
    }
    const builds = await listBuilds(io.pool(), {
      viewer: SYSTEM_VIEWER,
      projectId,
      state,
      limit: 200,
    });
    if (args.flags.has("json")) {
      io.json(builds.map(toApiBuildListItem));
      return;
    }
    if (builds.length === 0) {
      io.out("No builds match.");
      return;
    }
    io.out(
      table(
        ["ID", "PROJECT", "STATE", "REASON", "BUILDER", "REQUESTED"],
        builds.map((b) => [
          String(b.id),
          b.projectName,
          b.state + (b.failureKind ? `/${b.failureKind}` : ""),
          b.reason,
          b.builderName ?? "-",
          b.requestedAt.toISOString(),
        ]),
      ),
    );
  },
};

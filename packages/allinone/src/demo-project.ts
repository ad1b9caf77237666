// The demo project: a bare git repository at <home>/demo-config.git whose branch `main` holds
// the repository's examples/ (a new commit whenever examples/ changed), and the project `demo`
// that builds it for this machine's architecture.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  createProject,
  getProjectByName,
  recordAudit,
  withTransaction,
  type Pool,
} from "@lexbuilder/shared-models/db";
import { validateProjectInput } from "@lexbuilder/shared-models/validation";

export const PROJECT_NAME = "demo";

/** Commits examples/ into the bare repository when it changed; returns its file:// URL. */
export function ensureDemoRepository(home: string, repo: string, say: (line: string) => void): string {
  const bare = join(home, "demo-config.git");
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: "lexbuilder demo",
    GIT_AUTHOR_EMAIL: "demo@localhost",
    GIT_COMMITTER_NAME: "lexbuilder demo",
    GIT_COMMITTER_EMAIL: "demo@localhost",
    // Its own index: the clone's working tree and index are never touched.
    GIT_INDEX_FILE: join(home, "demo-config.index"),
  };
  const run = (args: string[]) => spawnSync("git", args, { encoding: "utf8", cwd: repo, env });
  const git = (...args: string[]): string => {
    const r = run(args);
    if (r.error) throw new Error(`git could not be run (${r.error.message}); install git.`);
    if (r.status !== 0) throw new Error(`git ${args.join(" ")} failed: ${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  if (!existsSync(join(bare, "HEAD"))) git("init", "--quiet", "--bare", "--initial-branch=main", bare);
  git("--git-dir", bare, "--work-tree", join(repo, "examples"), "add", "--all", ".");
  const tree = git("--git-dir", bare, "write-tree");
  const head = run(["--git-dir", bare, "rev-parse", "--verify", "--quiet", "refs/heads/main"]).stdout.trim();
  const headTree = head ? git("--git-dir", bare, "rev-parse", `${head}^{tree}`) : "";
  if (tree !== headTree) {
    const commit = git("--git-dir", bare, "commit-tree", tree, ...(head ? ["-p", head] : []), "-m", "Demo configuration from lexbuilder's examples/");
    git("--git-dir", bare, "update-ref", "refs/heads/main", commit, ...(head ? [head] : []));
    say(`demo config branch: ${head ? "updated from" : "made from"} examples/ (commit ${commit.slice(0, 12)})`);
  }
  return `file://${bare}`;
}

/** This machine's Debian architecture name (dpkg's, or Node's translated). */
export function debArchitecture(): string {
  const r = spawnSync("dpkg", ["--print-architecture"], { encoding: "utf8" });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  const names: Record<string, string> = { x64: "amd64", arm64: "arm64", ia32: "i386", arm: "armhf", ppc64: "ppc64el", s390x: "s390x" };
  return names[process.arch] ?? process.arch;
}

/** Adds the project `demo` once. */
export async function ensureDemoProject(pool: Pool, configUrl: string, say: (line: string) => void): Promise<void> {
  if (await getProjectByName(pool, PROJECT_NAME)) return;
  const checked = validateProjectInput(
    { name: PROJECT_NAME, configUrl, configRef: "main", architecture: debArchitecture() },
    { allowedSchemes: ["file"] },
  );
  if (!checked.ok) throw new Error(`the demo project cannot be added: ${Object.values(checked.errors)[0]}`);
  await withTransaction(pool, async (c) => {
    const row = await createProject(c, checked.value);
    await recordAudit(c, { actor: "npm-start", action: "project.create", objectType: "project", objectId: row.id });
  });
  say(`added project "${PROJECT_NAME}" (config ${configUrl})`);
}

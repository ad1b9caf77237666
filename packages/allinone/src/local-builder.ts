// The one local slave: started with its state under <home>/slave, registered as the builder
// `local`, and what keeps it from building here (it needs root, live-build and debootstrap).
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import {
  addBuilder,
  getBuilderByName,
  recordAudit,
  withTransaction,
  type Pool,
} from "@lexbuilder/shared-models/db";
import { validateBuilderInput } from "@lexbuilder/shared-models/validation";
import { urlOf, type Settings } from "./settings.js";
import { waitUntilAnswering, type Supervisor } from "./supervisor.js";

export const BUILDER_NAME = "local";

export interface LocalSlave {
  url: string;
  token: string;
}

/** Starts the slave and waits until it answers. It never talks to the database. */
export async function startLocalSlave(supervisor: Supervisor, settings: Settings, baseEnv: NodeJS.ProcessEnv, schemes: string): Promise<LocalSlave> {
  const stateDir = join(settings.home, "slave");
  const tokenFile = join(settings.home, "slave.token");
  mkdirSync(stateDir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...baseEnv,
    LEXBUILDER_SLAVE_LISTEN: settings.slaveListen,
    LEXBUILDER_SLAVE_STATE_DIR: stateDir,
    // Made (0600) by the slave when absent.
    LEXBUILDER_SLAVE_TOKEN_FILE: tokenFile,
    LEXBUILDER_SLAVE_ALLOWED_SCHEMES: schemes,
  };
  delete env.DATABASE_URL;
  const url = urlOf(settings.slaveListen);
  const child = supervisor.start("slave", "packages/slave/bin/lexbuilder-slave.js", env);
  await waitUntilAnswering(child, `${url}/healthz`);
  return { url, token: readFileSync(tokenFile, "utf8").trim() };
}

/** Registers the slave as builder `local` once; says so when it was registered elsewhere. */
export async function registerLocalBuilder(pool: Pool, slave: LocalSlave, say: (line: string) => void): Promise<void> {
  const existing = await getBuilderByName(pool, BUILDER_NAME);
  if (existing) {
    if (existing.url.replace(/\/$/, "") !== slave.url) {
      say(`note: builder "${BUILDER_NAME}" is registered at ${existing.url}, not ${slave.url}; change it on the Builders page.`);
    }
    return;
  }
  const checked = validateBuilderInput({ name: BUILDER_NAME, url: slave.url, token: slave.token });
  if (!checked.ok) throw new Error(`the local slave cannot be registered: ${Object.values(checked.errors)[0]}`);
  await withTransaction(pool, async (c) => {
    const row = await addBuilder(c, checked.value);
    await recordAudit(c, { actor: "npm-start", action: "builder.add", objectType: "builder", objectId: row.id, details: { url: row.url } });
  });
  say(`registered the local slave as builder "${BUILDER_NAME}" at ${slave.url}`);
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, command)));
}

/** Why builds cannot run on this machine (empty when they can). */
export function localBuilderProblems(): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push("it is not running as root");
  if (!onPath("lb")) problems.push("live-build is not installed");
  if (!onPath("debootstrap")) problems.push("debootstrap is not installed");
  return problems;
}

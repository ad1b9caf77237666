// The secrets a project may hold: credentials in its config URL (https://user:token@host/…)
// and the values of its extra environment. Only those who manage the project (its builder
// members and admins) see them; everyone else, the API for them and the audit log get them
// masked. A form or request that sends the masked text back keeps the stored secret.
import type { Project, ProjectInput } from "@lexbuilder/shared-models/db";

export const MASKED_VALUE = "********";
const MASKED_USERINFO = "***";
const USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^@/?#]*)@/;

/** The URL with its user and password replaced by ***; an ssh user name alone is no secret. */
export function maskConfigUrl(url: string): string {
  const m = USERINFO.exec(url);
  if (!m) return url;
  const [, scheme, userinfo] = m;
  if (/^ssh:/i.test(scheme!) && !userinfo!.includes(":")) return url;
  return `${scheme}${MASKED_USERINFO}@${url.slice(m[0].length)}`;
}

export function maskExtraEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(env).map((k) => [k, MASKED_VALUE]));
}

/** The project as someone who may not see its secrets sees it. */
export function maskProject<P extends Pick<Project, "configUrl" | "extraEnv">>(project: P): P {
  return { ...project, configUrl: maskConfigUrl(project.configUrl), extraEnv: maskExtraEnv(project.extraEnv ?? {}) };
}

/**
 * The input with masked text sent back replaced by what `stored` holds: the config URL when it
 * is the stored one masked, and each variable whose value is the mask and which exists.
 * Null for configUrl when the URL keeps the mask but is otherwise changed (the credentials
 * cannot be carried over to another address: the caller asks for them again).
 */
export function keepMaskedSecrets(input: ProjectInput, stored: Project): { input: ProjectInput; lostCredentials: boolean } {
  let configUrl = input.configUrl;
  let lostCredentials = false;
  if (configUrl !== stored.configUrl && configUrl.includes(`://${MASKED_USERINFO}@`)) {
    if (maskConfigUrl(stored.configUrl) === configUrl) configUrl = stored.configUrl;
    else lostCredentials = true;
  }
  const env = input.extraEnv ?? {};
  const extraEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === MASKED_VALUE && k in (stored.extraEnv ?? {}) ? stored.extraEnv[k]! : v]));
  return { input: { ...input, configUrl, ...(input.extraEnv ? { extraEnv } : {}) }, lostCredentials };
}

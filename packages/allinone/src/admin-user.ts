// The web console's `admin` user, made on the first start. Its password is shown once and
// kept nowhere but as a hash; --reset-admin-password makes a new one.
import {
  createUser,
  getUserByName,
  recordAudit,
  setUserPassword,
  withTransaction,
  type Pool,
} from "@lexbuilder/shared-models/db";
import { generatePassword, hashPassword } from "@lexbuilder/shared-models/passwords";

export const ADMIN_NAME = "admin";
const ACTOR = "npm-start";

/** The new password to show, or null when the existing one stays. */
export async function ensureAdminUser(pool: Pool, resetPassword: boolean): Promise<string | null> {
  const existing = await getUserByName(pool, ADMIN_NAME);
  if (existing && !resetPassword) return null;
  const password = generatePassword();
  const passwordHash = await hashPassword(password);
  await withTransaction(pool, async (c) => {
    if (existing) {
      await setUserPassword(c, existing.id, passwordHash);
      await recordAudit(c, { actor: ACTOR, action: "user.password", objectType: "user", objectId: existing.id });
    } else {
      const user = await createUser(c, { name: ADMIN_NAME, role: "admin", passwordHash });
      await recordAudit(c, { actor: ACTOR, action: "user.create", objectType: "user", objectId: user.id, details: { role: user.role } });
    }
  });
  return password;
}

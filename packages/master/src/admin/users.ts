// lexbuilder-admin create-user / create-token.
import {
  createApiToken,
  createUser,
  getUserByName,
  recordAudit,
  setUserEmail,
  UserExistsError,
  withTransaction,
} from "@lexbuilder/shared-models/db";
import { generatePassword, hashPassword } from "@lexbuilder/shared-models/passwords";
import { checkEmail, checkTokenLabel } from "@lexbuilder/shared-models/rules";
import { validateUserInput } from "@lexbuilder/shared-models/validation";
import { CommandError, firstError, readSecretFile, ruled, type Command } from "./common.js";

export const createUserCommand: Command = {
  spec: {
    name: "create-user",
    usage: "create-user NAME --role admin|builder|viewer [--password-file F] [--email ADDRESS]",
    summary:
      "Creates a user of the web console. The password is read from the first line of --password-file;\nwithout it a random password is generated and printed once.",
    positionals: ["NAME"],
    options: ["role", "password-file", "email"],
    required: ["role"],
  },
  async run(args, io) {
    const file = args.options.get("password-file");
    const generated = file === undefined;
    const password = file !== undefined ? await readSecretFile(file, "password") : generatePassword();
    const checked = validateUserInput({ name: args.positionals[0], role: args.options.get("role"), password });
    if (!checked.ok) throw new CommandError(firstError(checked.errors));
    const email = args.options.has("email") ? ruled(checkEmail(args.options.get("email"))) : null;
    const passwordHash = await hashPassword(password);
    try {
      const user = await withTransaction(io.pool(), async (c) => {
        const u = await createUser(c, { name: checked.value.name, role: checked.value.role, passwordHash });
        if (email) await setUserEmail(c, u.id, email);
        await recordAudit(c, { actor: "admin-cli", action: "user.create", objectType: "user", objectId: u.id, details: { role: u.role, email } });
        return u;
      });
      io.out(generated ? `Created user ${user.name} (${user.role}) with password: ${password}` : `Created user ${user.name} (${user.role}).`);
    } catch (err) {
      if (err instanceof UserExistsError) throw new CommandError(err.message);
      throw err;
    }
  },
};

export const createTokenCommand: Command = {
  spec: {
    name: "create-token",
    usage: "create-token USER [--label TEXT]",
    summary: "Creates a personal API token for USER and prints it (it is shown only this once).",
    positionals: ["USER"],
    options: ["label"],
  },
  async run(args, io) {
    const name = args.positionals[0]!;
    const user = await getUserByName(io.pool(), name);
    if (!user) throw new CommandError(`There is no user named ${name}.`);
    const label = ruled(checkTokenLabel(args.options.get("label") ?? `created by lexbuilder-admin on ${new Date().toISOString().slice(0, 10)}`));
    const { token } = await withTransaction(io.pool(), async (c) => {
      const t = await createApiToken(c, user.id, label);
      await recordAudit(c, { actor: "admin-cli", action: "token.create", objectType: "user", objectId: user.id, details: { tokenId: t.id } });
      return t;
    });
    io.out(token);
  },
};

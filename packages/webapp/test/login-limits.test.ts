// Failed logins and password changes are limited per account as well as per address: one
// account's guesser waits while other accounts behind the same address log in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, loginAs, PASSWORD, startHarness, type Harness } from "./harness.js";

let h: Harness;
beforeAll(async () => {
  // The address limit is high here so that only the account limit can refuse.
  h = await startHarness({ loginAttempts: 1000, accountLoginAttempts: 3 });
});
afterAll(() => h?.close());

describe("per-account limits", () => {
  it("after 3 failures for one account its logins wait, with a sentence, while another account logs in", async () => {
    const c = new Client(h.base);
    await c.get("/login");
    for (let i = 0; i < 3; i++) expect((await c.post("/login", { name: "vera", password: `wrong-${i}` })).status).toBe(401);
    // The right password does not help now, and the name's spelling does not reset the count.
    const refused = await c.post("/login", { name: " Vera ", password: PASSWORD });
    expect(refused.status).toBe(429);
    expect(refused.text).toContain("Too many failed logins for this account");
    // Same address, another account: not affected.
    const other = new Client(h.base);
    await other.get("/login");
    expect((await other.post("/login", { name: "bob", password: PASSWORD })).status).toBe(303);
  });

  it("a wrong current password counts the same way on /account/password", async () => {
    const bob = await loginAs(h.base, "bob");
    for (let i = 0; i < 3; i++) expect((await bob.post("/account/password", { current: `wrong-${i}`, password: "a brand new passphrase" })).status).toBe(400);
    const r = await bob.post("/account/password", { current: PASSWORD, password: "a brand new passphrase" });
    expect(r.status).toBe(303);
    expect((await bob.get("/account")).text).toContain("Too many failed password changes for this account");
    // Nothing changed: the old password still opens the account.
    expect((await loginAs(h.base, "bob")).cookies.size).toBe(1);
  });
});

// The notification rules, table by table, with the exact sentences people read.
import { describe, expect, it } from "vitest";
import {
  checkEmail,
  checkSubscriptionMode,
  checkWebhookEvents,
  checkWebhookFormat,
  checkWebhookSecret,
  checkWebhookUrl,
  isNonPublicAddress,
} from "@lexbuilder/shared-models/rules";
import { checkWebhookTarget, targetPolicyFromEnv } from "@lexbuilder/shared-models/webhook-target";

describe("webhook URL", () => {
  it.each([
    ["https://ci.example.org/hook", null],
    ["http://10.0.0.1:8080/x", null],
    ["", "Give the URL the events are posted to, e.g. https://ci.example.org/hooks/lexbuilder."],
    ["ftp://example.org/x", "Webhooks are posted over http:// or https:// only, not ftp://."],
    ["javascript:alert(1)", "Webhooks are posted over http:// or https:// only, not javascript://."],
    ["https://user:pw@example.org/", "Leave user names and passwords out of the webhook URL; the receiver checks the signature made with the secret instead."],
    ["https://exa mple.org/", "The webhook URL may not contain spaces or control characters."],
    ["not a url", "The webhook URL may not contain spaces or control characters."],
    ["https//example.org", "The webhook URL is not a valid URL; give one such as https://ci.example.org/hooks/lexbuilder."],
    ["https://x/" + "a".repeat(2000), "The webhook URL may be at most 2000 characters long."],
  ])("%s", (input, error) => {
    const r = checkWebhookUrl(input);
    expect(r.error ?? null).toBe(error);
  });
});

describe("secret, events, format, mode, e-mail", () => {
  it.each([
    [checkWebhookSecret("short"), "The secret must be at least 16 characters long; the receiver uses it to check each delivery's signature."],
    [checkWebhookSecret("x".repeat(257)), "The secret may be at most 256 characters long."],
    [checkWebhookSecret("0123456789abcdef"), null],
    [checkWebhookEvents([], { farm: false }), "Choose at least one event for the webhook."],
    [checkWebhookEvents(["build.exploded"], { farm: false }), 'Unknown event "build.exploded"; choose from build.queued, build.started, build.succeeded, build.failed, build.cancelled, release.published, builder.disabled.'],
    [checkWebhookEvents(["builder.disabled"], { farm: false }), "builder.disabled is sent by farm-wide webhooks only; an administrator can add one on the builders page."],
    [checkWebhookEvents("build.failed, build.succeeded build.failed", { farm: false }), null],
    [checkWebhookFormat("xml"), 'The payload format is json (the default) or slack (a {"text": …} body for Slack and Mattermost).'],
    [checkSubscriptionMode("sometimes"), "Choose a subscription: all (every result), changes (failures and fixes), releases, or none."],
    [checkEmail("jane@example.org"), null],
    [checkEmail(""), null],
    [checkEmail("jane"), '"jane" is not an e-mail address; give one such as jane@example.org.'],
    [checkEmail("a@b.c\r\nBcc: x@y.z"), '"a@b.c\\r\\nBcc: x@y.z" is not an e-mail address; give one such as jane@example.org.'],
    [checkEmail("jane@localhost"), '"jane@localhost" is not an e-mail address; give one such as jane@example.org.'],
  ])("#%#", (r, error) => {
    expect(r.error ?? null).toBe(error);
  });

  it("keeps events in order without repeats", () => {
    expect(checkWebhookEvents("build.failed, build.succeeded build.failed", { farm: false }).value).toEqual(["build.failed", "build.succeeded"]);
  });
});

describe("addresses a webhook may not reach by default", () => {
  it.each([
    ["127.0.0.1", true],
    ["10.1.2.3", true],
    ["172.16.0.1", true],
    ["172.32.0.1", false],
    ["192.168.1.1", true],
    ["169.254.169.254", true],
    ["100.64.0.1", true],
    ["0.0.0.0", true],
    ["224.0.0.1", true],
    ["93.184.216.34", false],
    ["::1", true],
    ["::", true],
    ["fe80::1", true],
    ["fd00::1", true],
    ["::ffff:127.0.0.1", true],
    ["::ffff:93.184.216.34", false],
    ["2606:4700::1111", false],
    ["not-an-ip", true],
  ])("%s → %s", (ip, inward) => {
    expect(isNonPublicAddress(ip)).toBe(inward);
  });

  const closed = { allowPrivate: false, allowedHosts: [] as string[] };
  const resolvesTo =
    (address: string) =>
    (_h: string, _o: { all: true }, cb: (e: NodeJS.ErrnoException | null, a: { address: string; family: number }[]) => void) =>
      cb(null, [{ address, family: address.includes(":") ? 6 : 4 }]);

  it("refuses names that resolve inward, loopback names and literal private addresses, with the way out", async () => {
    const refusal = "webhooks may not reach; an administrator can allow it with LEXBUILDER_WEBHOOK_ALLOW_PRIVATE=true or LEXBUILDER_WEBHOOK_ALLOWED_HOSTS.";
    expect((await checkWebhookTarget(new URL("http://hooks.example.org/x"), closed, resolvesTo("10.0.0.5"))).error).toBe(
      `hooks.example.org is at 10.0.0.5 on a loopback, private or link-local network, which ${refusal}`,
    );
    expect((await checkWebhookTarget(new URL("http://localhost:9/x"), closed)).error).toContain(refusal);
    expect((await checkWebhookTarget(new URL("http://[::1]:9/x"), closed)).error).toBe(`::1 is an address on a loopback, private or link-local network, which ${refusal}`);
    expect((await checkWebhookTarget(new URL("http://hooks.example.org/x"), closed, resolvesTo("93.184.216.34"))).error).toBeUndefined();
    expect((await checkWebhookTarget(new URL("http://127.0.0.1:9/x"), { allowPrivate: true, allowedHosts: [] })).error).toBeUndefined();
    expect((await checkWebhookTarget(new URL("http://ci.internal/x"), { allowPrivate: false, allowedHosts: ["ci.internal"] }, resolvesTo("10.0.0.5"))).error).toBeUndefined();
  });

  it("reads the policy from the environment and refuses nonsense", () => {
    expect(targetPolicyFromEnv({ LEXBUILDER_WEBHOOK_ALLOW_PRIVATE: "true" }).value).toEqual({ allowPrivate: true, allowedHosts: [] });
    expect(targetPolicyFromEnv({ LEXBUILDER_WEBHOOK_ALLOWED_HOSTS: "ci.internal, 10.0.0.5" }).value).toEqual({ allowPrivate: false, allowedHosts: ["ci.internal", "10.0.0.5"] });
    expect(targetPolicyFromEnv({ LEXBUILDER_WEBHOOK_ALLOW_PRIVATE: "maybe" }).error).toBe("LEXBUILDER_WEBHOOK_ALLOW_PRIVATE must be true or false.");
  });
});

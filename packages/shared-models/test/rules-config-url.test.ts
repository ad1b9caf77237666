// The config-URL rule, as the project form, the admin CLI, the build call and the slave apply it.
import { describe, expect, it } from "vitest";
import { checkConfigUrl, checkSchemeList, KNOWN_CONFIG_URL_SCHEMES } from "../src/rules/index.js";

const DEFAULT = "https, http, git, ssh";
const DASH_HOST = "The host and user name of the configuration URL may not start with a dash.";
const SPACES = "The configuration URL may not contain spaces or control characters.";
const TRANSPORT = (list: string) => `Remote-helper transports such as ext:: and fd:: are not allowed; use a URL with one of: ${list}.`;

describe("checkConfigUrl accepts", () => {
  it.each([
    ["https://salsa.debian.org/live-team/config.git", undefined],
    ["http://example.org:8080/c", undefined],
    ["git://example.org/config", undefined],
    ["ssh://git@example.org/config.git", undefined],
    ["git@example.org:team/config.git", undefined],
    ["example.org:team/config.git", undefined],
    ["git@example.org:/srv/config.git", undefined],
    ["https://[::1]:8443/config.git", undefined],
    ["ssh://%E0%A4%A@host/repo", undefined],
    ["file:///srv/config.git", KNOWN_CONFIG_URL_SCHEMES],
    ["/srv/config.git", KNOWN_CONFIG_URL_SCHEMES],
    // git reads it as a local path; the clone fails and the slave scrubs the credentials.
    ["file://user:pw@/nonexistent/repo.git", KNOWN_CONFIG_URL_SCHEMES],
  ])("%s", (url, schemes) => {
    expect(checkConfigUrl(url, schemes)).toEqual({ value: url });
  });

  it("trims blanks around the URL", () => {
    expect(checkConfigUrl("  https://example.org/c.git \n")).toEqual({ value: "https://example.org/c.git" });
  });
});

describe("checkConfigUrl refuses", () => {
  it.each([
    ["", undefined, "Give the URL of the git repository that holds the live-build configuration."],
    [null, undefined, "Give the URL of the git repository that holds the live-build configuration."],
    ["https://" + "a".repeat(2000), undefined, "The configuration URL may be at most 2000 characters long."],
    ["ext::sh -c evil", undefined, SPACES],
    ["https://exa mple.org/", undefined, SPACES],
    ["https://example.org/a\nb", undefined, SPACES],
    ["https://example.org/\u0000", undefined, SPACES],
    ["ext::sh%20-c%20evil", undefined, TRANSPORT(DEFAULT)],
    ["fd::17", undefined, TRANSPORT(DEFAULT)],
    ["EXT::sh", ["file"], TRANSPORT("file")],
    ["--upload-pack=evil", undefined, "The configuration URL may not start with a dash; give a URL such as https://example.org/config.git."],
    ["-uoops", KNOWN_CONFIG_URL_SCHEMES, "The configuration URL may not start with a dash; give a URL such as https://example.org/config.git."],
    ["file:///srv/config.git", undefined, `The scheme file:// is not allowed for configuration URLs; use one of: ${DEFAULT}.`],
    ["ftp://example.org/config.git", ["https", "git"], "The scheme ftp:// is not allowed for configuration URLs; use one of: https, git."],
    ["HTTP://example.org/config.git", ["https"], "The scheme http:// is not allowed for configuration URLs; use one of: https."],
    ["git@example.org:c.git", ["https"], "The configuration URL must start with one of https://."],
    ["/srv/config.git", undefined, "The configuration URL must start with one of https://, http://, git://, ssh://."],
    ["config.git", undefined, "The configuration URL must start with one of https://, http://, git://, ssh://."],
    ["relative/path", undefined, "The configuration URL must start with one of https://, http://, git://, ssh://."],
    // scp-like syntax with a host or user that git or ssh could read as an option.
    ["git@-evil:repo", undefined, "The configuration URL must start with one of https://, http://, git://, ssh://."],
    ["-oProxyCommand=x@host:repo", undefined, "The configuration URL may not start with a dash; give a URL such as https://example.org/config.git."],
    ["u@-oProxyCommand=x:repo", undefined, "The configuration URL must start with one of https://, http://, git://, ssh://."],
    // ssh:// with a host or user beginning with a dash (CVE-2017-1000117), also percent-encoded.
    ["ssh://-oProxyCommand=touch%20x/repo", undefined, DASH_HOST],
    ["ssh://-oProxyCommand=x@host/repo", undefined, DASH_HOST],
    ["ssh://%2doProxyCommand=x@host/repo", undefined, DASH_HOST],
    ["ssh://%2DoProxyCommand=x/repo", undefined, DASH_HOST],
    ["git://-evil/repo", undefined, DASH_HOST],
    ["https://", undefined, "The configuration URL is not a valid URL; check it for typing mistakes."],
    ["ssh:///repo", undefined, "The configuration URL needs a host name, as in https://example.org/config.git."],
    ["file://", ["file"], "A file:// configuration URL needs a path to a repository."],
    ["file:///", ["file"], "A file:// configuration URL needs a path to a repository."],
  ])("%j (schemes %j)", (url, schemes, sentence) => {
    expect(checkConfigUrl(url, schemes)).toEqual({ error: sentence });
  });
});

describe("checkSchemeList", () => {
  it.each([
    [["HTTPS", " file"], { value: ["https", "file"] }],
    [["https", "ext"], { error: 'S may only name https, http, git, ssh, file, not "ext".' }],
    [[], { error: "S must name at least one scheme, for example https." }],
  ])("%j", (list, result) => {
    expect(checkSchemeList(list, "S")).toEqual(result);
  });
});

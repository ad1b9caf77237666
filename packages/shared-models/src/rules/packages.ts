// Debian package names and versions, as a build's manifest stores them and package search
// takes them: Debian policy §5.6.1 (names) and §5.6.12 (versions).
import { accept, quoted, refuse, trimmed, type Checked } from "./checked.js";

/** Lower-case letters, digits and + . -, starting with a letter or digit, two characters or more. */
export const PACKAGE_NAME_PATTERN = /^[a-z0-9][a-z0-9+.-]+$/;
/**
 * [epoch:]upstream[-revision]: the epoch a whole number; upstream starts with a letter or digit
 * and uses letters, digits and . + ~ (and - when a revision follows); the revision, after the
 * last dash, uses letters, digits and . + ~ and is never empty.
 */
export const PACKAGE_VERSION_PATTERN = /^(?:[0-9]+:)?[A-Za-z0-9](?:[A-Za-z0-9.+~-]*[A-Za-z0-9.+~])?$/;
const ARCH_QUALIFIER_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
const MAX_LENGTH = 256;

/** A package name, or name:arch as dpkg-query names one of several architectures of a package. */
export function checkPackageName(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give a package name such as bash.");
  const colon = s.indexOf(":");
  const name = colon === -1 ? s : s.slice(0, colon);
  const arch = colon === -1 ? null : s.slice(colon + 1);
  if (s.length > MAX_LENGTH || !PACKAGE_NAME_PATTERN.test(name) || (arch !== null && !ARCH_QUALIFIER_PATTERN.test(arch))) {
    return refuse(`${quoted(s)} is not a Debian package name: lower-case letters, digits and + . -, at least two characters, starting with a letter or digit (as in bash or libc6:i386).`);
  }
  return accept(s);
}

export function checkPackageVersion(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return refuse("Give a package version such as 5.2.15-2.");
  if (s.length > MAX_LENGTH || !PACKAGE_VERSION_PATTERN.test(s)) {
    return refuse(`${quoted(s)} is not a Debian version: [epoch:]upstream[-revision] of letters, digits and . + ~ (as in 5.2.15-2+b1 or 1:2.38-4).`);
  }
  return accept(s);
}

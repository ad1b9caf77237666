// Result files a builder reports: the master stores them under these names, so a name is one
// plain path component (live-image-<arch>.* and build.log), never "../x" or ".hidden".
import { SHA256_PATTERN } from "../protocol/types.js";
import { accept, quoted, refuse, type Checked } from "./checked.js";

export const RESULT_FILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/;
export const FILE_KINDS = ["image", "manifest", "files", "contents", "log", "other"] as const;

export function checkResultFileName(v: unknown): Checked<string> {
  if (typeof v !== "string" || !RESULT_FILE_NAME_PATTERN.test(v)) {
    return refuse(`${typeof v === "string" ? quoted(v) : "A name that is not text"} is not a plain file name (letters, digits and . _ + -, not starting with a dot).`);
  }
  return accept(v);
}

/** A file as a builder reports it: plain name, sha256, decimal size, known kind. */
export function checkResultFile(f: { name: unknown; sha256: unknown; size: unknown; kind: unknown }): Checked<string> {
  const name = checkResultFileName(f.name);
  if (name.error !== undefined) return name;
  if (typeof f.sha256 !== "string" || !SHA256_PATTERN.test(f.sha256)) return refuse(`The sha256 of ${name.value} is not 64 lower-case hexadecimal digits.`);
  if (!/^[0-9]{1,16}$/.test(String(f.size))) return refuse(`The size of ${name.value} is not a whole number of bytes.`);
  if (!(FILE_KINDS as readonly unknown[]).includes(f.kind)) return refuse(`The kind of ${name.value} is not one of ${FILE_KINDS.join(", ")}.`);
  return accept(name.value);
}

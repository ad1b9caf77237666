// A tiny argument parser for lexbuilder-admin: positionals, --flag VALUE, --flag=VALUE and
// boolean flags, with every unknown or missing piece refused in one sentence.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  positionals: string[];
  /** Flags taking a value. */
  options?: string[];
  /** Flags without a value (besides --help and --json). */
  booleans?: string[];
  required?: string[];
  json?: boolean;
}

export interface Parsed {
  positionals: string[];
  options: Map<string, string>;
  flags: Set<string>;
}

export function parseArgs(spec: CommandSpec, argv: string[]): Parsed {
  const positionals: string[] = [];
  const options = new Map<string, string>();
  const flags = new Set<string>();
  const takesValue = new Set(spec.options ?? []);
  const booleans = new Set([...(spec.booleans ?? []), "help", ...(spec.json ? ["json"] : [])]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq === -1 ? undefined : eq);
      if (booleans.has(name)) {
        if (eq !== -1) throw new UsageError(`--${name} takes no value.`);
        flags.add(name);
        continue;
      }
      if (!takesValue.has(name)) throw new UsageError(`${spec.name} has no option --${name}; see lexbuilder-admin ${spec.name} --help.`);
      const value = eq === -1 ? argv[++i] : a.slice(eq + 1);
      if (value === undefined) throw new UsageError(`--${name} needs a value.`);
      options.set(name, value);
      continue;
    }
    positionals.push(a);
  }
  if (flags.has("help")) return { positionals, options, flags };
  if (positionals.length !== spec.positionals.length) {
    const want = spec.positionals.length ? spec.positionals.join(" ") : "no arguments";
    throw new UsageError(`${spec.name} takes ${want}; usage: lexbuilder-admin ${spec.usage}`);
  }
  for (const r of spec.required ?? []) {
    if (!options.has(r)) throw new UsageError(`${spec.name} needs --${r}; usage: lexbuilder-admin ${spec.usage}`);
  }
  return { positionals, options, flags };
}

export function commandHelp(spec: CommandSpec): string {
  return `Usage: lexbuilder-admin ${spec.usage}\n\n${spec.summary}\n${spec.json ? "\n  --json   print JSON\n" : ""}`;
}

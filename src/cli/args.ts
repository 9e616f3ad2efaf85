/**
 * Argument parsing for the `tessera` command, kept tiny and strict: every command declares its flags,
 * and anything it does not declare is a usage error (exit code 2), never silently ignored.
 */

/** Where a command writes: captured by tests, process.stdout/stderr in the launcher. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

/** A mistake in the command line itself: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface FlagSpec {
  readonly name: string;
  /** Placeholder for the flag's value; absent for a boolean switch. */
  readonly value?: string;
  readonly repeat?: boolean;
  readonly help: string;
}

export interface Parsed {
  readonly positionals: readonly string[];
  /** Every value a flag was given, in order (a switch maps to ['true']). */
  readonly flags: ReadonlyMap<string, readonly string[]>;
}

/** Flags every command takes. */
export const COMMON_FLAGS: readonly FlagSpec[] = [
  { name: 'help', help: 'show this help' },
  { name: 'verbose', help: 'print stack traces with errors' },
];

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], command: string): Parsed {
  const byName = new Map([...COMMON_FLAGS, ...specs].map((s) => [s.name, s]));
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (arg === '-h') {
      flags.set('help', ['true']);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`unknown option '${arg}'`, command);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = byName.get(name);
    if (!spec) throw new UsageError(`unknown option '--${name}'`, command);
    let value: string;
    if (spec.value === undefined) {
      if (eq >= 0) throw new UsageError(`option '--${name}' takes no value`, command);
      value = 'true';
    } else if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`option '--${name}' needs a value (${spec.value})`, command);
      value = next;
      i++;
    }
    const prev = flags.get(name);
    if (prev && !spec.repeat && spec.value !== undefined) throw new UsageError(`option '--${name}' given more than once`, command);
    flags.set(name, [...(prev ?? []), value]);
  }
  return { positionals, flags };
}

export function flag(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return v ? v[v.length - 1] : undefined;
}

export function has(p: Parsed, name: string): boolean {
  return p.flags.has(name);
}

/** Every value of a repeatable flag, each also split on commas: `--target wgsl,js` == `--target wgsl --target js`. */
export function list(p: Parsed, name: string): string[] {
  return (p.flags.get(name) ?? []).flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
}

export function intFlag(p: Parsed, name: string, dflt: number, min: number, command: string): number {
  const v = flag(p, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} expects an integer >= ${min}, got '${v}'`, command);
  return n;
}

/** `k=v,k2=v2` (possibly over several flags) into integers: --dims and --params. */
export function keyValues(p: Parsed, name: string, command: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of list(p, name)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(-?\d+)$/.exec(item);
    if (!m) throw new UsageError(`--${name} expects name=integer pairs like M=64,N=128, got '${item}'`, command);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Help text for a command's flags, aligned. */
export function formatFlags(specs: readonly FlagSpec[]): string {
  const rows = [...specs, ...COMMON_FLAGS].map((s) => [`--${s.name}${s.value ? ` ${s.value}` : ''}`, s.help + (s.repeat ? ' (repeatable)' : '')] as const);
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`).join('\n');
}

/** One `tessera` subcommand. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Usage lines, without the leading `tessera`. */
  readonly usage: readonly string[];
  /** More help text after the flags: examples, what it prints. */
  readonly details?: string;
  readonly flags: readonly FlagSpec[];
  run(args: Parsed, io: CliIO): Promise<number>;
}

export function commandHelp(c: Command): string {
  return [
    `tessera ${c.name}: ${c.summary}`,
    '',
    'Usage:',
    ...c.usage.map((u) => `  tessera ${u}`),
    '',
    'Options:',
    formatFlags(c.flags),
    ...(c.details ? ['', c.details] : []),
  ].join('\n');
}

/**
 * The `tessera` command: argument parsing, dispatch, and the one place errors become text and exit
 * codes (0 ok, 1 error or mismatch, 2 bad command line). `main` takes its output streams as a
 * parameter so tests run it in-process; bin/tessera.mjs calls it with the real ones.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { formatLocation, isTesseraError } from '../errors.js';
import { commandHelp, parseArgs, UsageError, type CliIO, type Command } from './args.js';
import { compileCommand, displayPath } from './compile-cmd.js';
import { demoCommand } from './demo-cmd.js';
import { devicesCommand } from './devices-cmd.js';
import { tesseraVersion } from './manifest.js';
import { runCommand } from './run-cmd.js';
import { tuneCommand } from './tune-cmd.js';

export type { CliIO } from './args.js';

export const COMMANDS: readonly Command[] = [compileCommand, runCommand, tuneCommand, devicesCommand, demoCommand];

function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `tessera ${tesseraVersion()}: a TypeScript kernel DSL and compiler`,
    '',
    'Usage: tessera <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'tessera <command> --help' for a command's options. Exit codes: 0 ok, 1 error or mismatch, 2 bad usage.",
  ].join('\n');
}

export const processIO: CliIO = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
};

/** Runs one command line (without `node` and the script) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const verbose = argv.includes('--verbose');
  const [name, ...rest] = argv;
  try {
    if (name === undefined) {
      io.err(`${globalHelp()}\n`);
      return 2;
    }
    if (name === '--help' || name === '-h') {
      io.out(`${globalHelp()}\n`);
      return 0;
    }
    if (name === '--version' || name === '-v') {
      io.out(`${tesseraVersion()}\n`);
      return 0;
    }
    if (name === 'help') {
      const c = rest[0] === undefined ? undefined : COMMANDS.find((x) => x.name === rest[0]);
      if (rest[0] !== undefined && !c) throw new UsageError(`unknown command '${rest[0]}'`);
      io.out(`${c ? commandHelp(c) : globalHelp()}\n`);
      return 0;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) {
      throw new UsageError(name.startsWith('-') ? `expected a command before '${name}'` : `unknown command '${name}'; commands are ${COMMANDS.map((c) => c.name).join(', ')}`);
    }
    const args = parseArgs(rest, command.flags, command.name);
    if (args.flags.has('help')) {
      io.out(`${commandHelp(command)}\n`);
      return 0;
    }
    return await command.run(args, io);
  } catch (e) {
    return report(e, io, verbose);
  }
}

/** Error text and exit code: located Tessera errors without a stack (unless --verbose), usage errors with a hint. */
function report(e: unknown, io: CliIO, verbose: boolean): number {
  if (e instanceof UsageError) {
    io.err(`error: ${e.message}\n  see 'tessera ${e.command ? `${e.command} ` : ''}--help'\n`);
    return 2;
  }
  if (isTesseraError(e)) {
    io.err(`error[${e.code}]: ${e.detail}\n`);
    if (e.location) io.err(`  --> ${formatLocation({ ...e.location, ...(e.location.file ? { file: displayPath(e.location.file) } : {}) })}\n`);
    if (verbose && e.stack) io.err(`${e.stack}\n`);
    return 1;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  io.err(`error: ${err.message}\n`);
  if (verbose) {
    io.err(`${err.stack ?? ''}\n`);
    if (err.cause instanceof Error && err.cause.stack) io.err(`caused by: ${err.cause.stack}\n`);
  } else {
    io.err('  (run with --verbose for the stack trace)\n');
  }
  return 1;
}

/** True when this module is the process's entry script (`node --import tsx src/cli/main.ts ...`). */
function isEntry(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntry()) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}

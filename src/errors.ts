/**
 * One error family for everything Tessera reports. Every error has a stable `code` that tests and
 * tools can match on, and where possible a location: the DSL call site (file:line:column taken from
 * the stack) or a line:column in the text form.
 */

export type ErrorCode =
  | 'E_SHAPE' // shapes do not agree (broadcast, matmul, reshape, concat ...)
  | 'E_DTYPE' // dtypes do not agree or an op does not accept a dtype
  | 'E_AXIS' // an axis or permutation is out of range
  | 'E_ARG' // a bad argument to a DSL call (not a shape or dtype problem)
  | 'E_UNBOUND_DIM' // a symbolic dim has no value at dispatch
  | 'E_BUFFER' // a buffer at dispatch has the wrong size or type, or an input is missing
  | 'E_DEVICE_LIMIT' // a kernel cannot fit the device's limits even after splitting
  | 'E_PARSE' // malformed text form
  | 'E_UNKNOWN_OP' // an op name that does not exist
  | 'E_VERIFY' // IR that breaks an invariant
  | 'E_BACKEND' // a backend is unavailable or failed (adapter, driver, compiler)
  | 'E_UNSUPPORTED' // valid IR a backend or schedule cannot yet handle
  | 'E_INTERNAL'; // a bug in Tessera

export interface SourceLocation {
  file?: string;
  line: number;
  column: number;
}

export function formatLocation(loc: SourceLocation): string {
  return `${loc.file ?? '<input>'}:${loc.line}:${loc.column}`;
}

export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly location: SourceLocation | undefined;
  readonly detail: string;

  constructor(code: ErrorCode, message: string, location?: SourceLocation) {
    super(location ? `${code}: ${message}\n  at ${formatLocation(location)}` : `${code}: ${message}`);
    this.name = 'TesseraError';
    this.code = code;
    this.detail = message;
    this.location = location;
  }
}

export function isTesseraError(e: unknown): e is TesseraError {
  return e instanceof TesseraError;
}

/** Frames from Tessera's own source are skipped so the location names the user's DSL call. */
const INTERNAL_FRAME = /[\\/](src[\\/](dsl|ir|passes|backends|runtime|ref)|src[\\/]errors)[\\/.]|node:internal|node_modules/;

/** The first stack frame outside Tessera's compiler: the line of the DSL call that is being built. */
export function callSite(): SourceLocation | undefined {
  return siteOf(new Error());
}

/**
 * The call site recorded in `captured` (an Error made at the call). V8 formats a stack only when it
 * is read, so capturing is cheap and the parsing cost is paid only when an error needs a location.
 */
export function siteOf(captured: Error): SourceLocation | undefined {
  const stack = captured.stack?.split('\n').slice(1) ?? [];
  for (const frame of stack) {
    const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(frame);
    if (!m) continue;
    const file = m[1]!.replace(/^file:\/\//, '');
    if (INTERNAL_FRAME.test(file)) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return undefined;
}

export function fail(code: ErrorCode, message: string, location?: SourceLocation): never {
  throw new TesseraError(code, message, location);
}

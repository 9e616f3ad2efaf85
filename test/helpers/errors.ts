/** Catching the errors a test expects: a TesseraError (anything else fails the test), or just its code. */
import { TesseraError } from '../../src/errors.js';

export function caught(f: () => unknown): TesseraError {
  try {
    f();
  } catch (e) {
    if (e instanceof TesseraError) return e;
    throw new Error(`expected a TesseraError, got ${String(e)}`);
  }
  throw new Error('expected an error, none was thrown');
}

export async function caughtAsync(f: () => Promise<unknown>): Promise<TesseraError> {
  try {
    await f();
  } catch (e) {
    if (e instanceof TesseraError) return e;
    throw new Error(`expected a TesseraError, got ${String(e)}`);
  }
  throw new Error('expected an error, none was thrown');
}

/** The `code` of what `f` throws, or undefined when it does not throw. */
export function errorCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

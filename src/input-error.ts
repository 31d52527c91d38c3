/**
 * An error in what the user gave: an option, a config or space file, an environment variable,
 * a queue URL. The command line prints its message in one line and exits 2. A RangeError
 * because it says a value is out of range (callers that check `instanceof RangeError` keep
 * working); other RangeErrors (a wasm memory that cannot grow, a bug) are not input errors.
 */
export class InputError extends RangeError {
  override readonly name: string = 'InputError';
}

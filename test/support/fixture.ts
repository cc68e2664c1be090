import { afterAll, beforeAll } from 'vitest';

/**
 * A value a describe's tests share: made before its first test, disposed of after its last, and
 * usable by name in the describe body before it exists. Every property read goes to the value
 * `make` gave; one read before that (in the describe body itself, say) throws rather than
 * returning undefined. afterAll hooks run in reverse (vitest's `stack` order), so what was made
 * last is disposed of first: a server before the database under it.
 */
export function beforeAllValue<T extends object>(
  what: string,
  make: () => Promise<T> | T,
  { dispose, timeout }: { dispose?: (value: T) => Promise<unknown>; timeout?: number } = {},
): T {
  let value: T | undefined;
  beforeAll(async () => {
    value = await make();
  }, timeout);
  afterAll(async () => {
    const made = value;
    value = undefined;
    if (made && dispose) await dispose(made);
  }, timeout);
  const current = (): T => {
    if (value === undefined) throw new Error(`${what} is not there: it is made before the describe's first test and gone after its last`);
    return value;
  };
  // Spreading it (`{ ...database, db: other }`) copies the value's own properties.
  return new Proxy({} as T, {
    get: (_, key) => Reflect.get(current(), key),
    has: (_, key) => Reflect.has(current(), key),
    ownKeys: () => Reflect.ownKeys(current()),
    getOwnPropertyDescriptor: (_, key) => Reflect.getOwnPropertyDescriptor(current(), key),
  });
}

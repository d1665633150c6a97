/** Test helpers for values a test knows are there (noUncheckedIndexedAccess makes them explicit). */

/** The value, or a thrown error naming what was missing. */
export function defined<T>(value: T | undefined | null, what = 'value'): T {
  if (value === undefined || value === null) throw new Error(`expected ${what} to be present`);
  return value;
}

/** The i-th element of a list, or a thrown error saying the list was shorter. */
export function nth<T>(list: readonly T[], i: number): T {
  if (i < 0 || i >= list.length) {
    throw new Error(`expected an element at index ${i}, the list has ${list.length}`);
  }
  return list[i] as T;
}

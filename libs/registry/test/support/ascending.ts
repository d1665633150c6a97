/**
 * The values sorted ascending, repeats dropped: equal to the input exactly when the input is
 * strictly increasing, and on a mismatch jest's diff shows where the order broke.
 */
export function ascendingDistinct(values: readonly number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

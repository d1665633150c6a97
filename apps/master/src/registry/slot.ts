/** Which share of the commands this master takes: `id % count = slot`. */
export interface CommandSlot {
  readonly slot: number;
  readonly count: number;
}

/**
 * Every master sorts the same live list the same way (by address, plain string order), so they
 * all compute disjoint slots that cover every id. Undefined when this master is not (yet, or no
 * longer) in the list: then it must not consume at all.
 */
export function computeSlot(liveMasters: readonly string[], me: string): CommandSlot | undefined {
  const sorted = sortAddresses(liveMasters);
  const slot = sorted.indexOf(me);
  return slot === -1 ? undefined : { slot, count: sorted.length };
}

/** Deduplicated, code-unit order (locale-independent, so every node agrees). */
export function sortAddresses(addresses: Iterable<string>): string[] {
  return [...new Set(addresses)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Seeded randomness for the chaos tests: every random choice (which node to kill, when, how long
 * it stays down, how long a task sleeps) comes from one PRNG, so a failing run can be replayed
 * with CHAOS_SEED=<the printed seed>. Replays repeat the choices, not the timing of the machine.
 */

/** mulberry32: tiny, fast, good enough for picking victims; deterministic for a given seed. */
export class Prng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** A float in [min, max). */
  range(min: number, max: number): number {
    return min + this.next() * (max - min);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    const index = Math.floor(this.next() * items.length); // next() < 1: inside the list
    const item = items[index];
    if (item === undefined) throw new Error(`pick: nothing at index ${index} of ${items.length}`);
    return item;
  }

  /** A shuffled copy (Fisher-Yates: one int(0, i) for each i from the last index down to 1). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const [a, b] = [out[i], out[j]];
      if (a === undefined || b === undefined) throw new Error(`shuffle: nothing at index ${i} or ${j}`);
      [out[i], out[j]] = [b, a];
    }
    return out;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** An independent generator for one part of a scenario (so adding a choice elsewhere does not shift it). */
  fork(label: string): Prng {
    let h = this.seed ^ 0x9e3779b9;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
    return new Prng(h >>> 0);
  }
}

/**
 * The seed of this run: CHAOS_SEED when set (a replay), else a fresh random one. Printed as
 * `chaos seed: N` (with what it is for) so that a failure can be replayed.
 */
export function chaosSeed(
  what: string,
  log: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): number {
  const fromEnv = process.env.CHAOS_SEED;
  let seed: number;
  if (fromEnv !== undefined && fromEnv !== '') {
    seed = Number(fromEnv);
    if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new Error(`CHAOS_SEED must be an integer 0..4294967295, got ${JSON.stringify(fromEnv)}`);
    }
  } else {
    seed = Math.floor(Math.random() * 0xffffffff);
  }
  log(`chaos seed: ${seed} (${what}; replay with CHAOS_SEED=${seed})`);
  return seed;
}

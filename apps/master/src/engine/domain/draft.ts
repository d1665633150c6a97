/**
 * The working copy of one transition: reads see the changes made so far in the step, writes copy
 * the slot map once (the input state is never changed), and effects are collected in order.
 */
import type { Effect } from './run-effects';
import type { RunEnv, TimerKey } from './run-events';
import type { RunMode, RunState, Slot, SlotStatus } from './run-state';

export interface Step {
  readonly state: RunState;
  readonly effects: readonly Effect[];
}

export class Draft {
  mode: RunMode;
  private slotList: Slot[] | undefined;
  private readonly out: Effect[] = [];

  constructor(
    readonly base: RunState,
    readonly env: RunEnv,
  ) {
    this.mode = base.mode;
  }

  slot(name: string): Slot | undefined {
    const i = this.base.index.get(name);
    return i === undefined ? undefined : (this.slotList ?? this.base.slots)[i];
  }

  status(name: string): SlotStatus | undefined {
    return this.slot(name)?.status;
  }

  /** The slots as they are now (a copy: safe to change slots while walking it). */
  slots(): Slot[] {
    return [...(this.slotList ?? this.base.slots)];
  }

  /** The run as it stands in this step (for the pure decisions that read a whole state). */
  now(): RunState {
    return { ...this.base, mode: this.mode, slots: this.slotList ?? this.base.slots };
  }

  /** The task an attempt id belongs to. */
  taskOfRow(rowId: number): string | undefined {
    return this.base.rowIds.get(rowId);
  }

  set(name: string, status: SlotStatus, lastAttempt?: number): void {
    const i = this.base.index.get(name);
    const slot = this.slot(name);
    if (i === undefined || slot === undefined) return;
    this.slotList ??= this.base.slots.slice();
    this.slotList[i] = { ...slot, status, lastAttempt: Math.max(slot.lastAttempt, lastAttempt ?? 0) };
  }

  /** Remembers which task an attempt id belongs to (a fact shared by all states of the run). */
  knowRow(rowId: number, name: string): void {
    this.base.rowIds.add(rowId, name);
  }

  emit(...effects: Effect[]): void {
    this.out.push(...effects);
  }

  log(level: 'log' | 'warn' | 'error', message: string): void {
    this.out.push({ kind: 'log', level, message });
  }

  setTimer(key: TimerKey, ms: number): void {
    this.out.push({ kind: 'setTimer', key, ms });
  }

  clearTimer(key: TimerKey): void {
    this.out.push({ kind: 'clearTimer', key });
  }

  done(): Step {
    const changed = this.slotList !== undefined || this.mode !== this.base.mode;
    const state: RunState = changed
      ? { ...this.base, mode: this.mode, slots: this.slotList ?? this.base.slots }
      : this.base;
    return { state, effects: this.out };
  }
}

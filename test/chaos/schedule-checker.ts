/**
 * The schedule checker (the idea of Jepsen's Chronos test, from memory): given a schedule and what
 * the cluster recorded while masters were killed and restarted, every fire time of the cron from
 * the first fire to a cutoff must be matched to exactly one distinct run. Pure.
 *
 * Reported, each under its own kind:
 * - `gap`: a fire time up to the cutoff with no ledger row, or (RUN_ALL, or any policy's on-time
 *   fire) a FIRED row with no run;
 * - `duplicate`: two ledger rows, or two runs, for one fire time; one run claimed by two times;
 * - `off-grid`: a ledger row or a run whose time is not a fire time of the cron;
 * - `out-of-bounds`: a ledger row or a run before startTime or after endTime;
 * - `not-run`: a fire time recorded MISFIRE_SKIPPED under RUN_ALL;
 * - `wrong-run`: a run whose first command is not SCHEDULER, or that never reached a final state
 *   (when asked), or whose task did not see its own schedule time (the witness);
 * - `wrong-witness`: a task that saw a schedule time other than its run's.
 */
import { CronTime } from 'cron';

export interface ScheduleSpec {
  readonly cron: string;
  readonly timezone: string;
  readonly startMs?: number | null;
  readonly endMs?: number | null;
  readonly misfirePolicy: 'RUN_ONCE' | 'SKIP' | 'RUN_ALL';
}

export interface LedgerEntry {
  readonly fireMs: number;
  readonly outcome: 'FIRED' | 'MISFIRE_SKIPPED';
  readonly instanceId: number | null;
}

export interface ScheduledRun {
  readonly id: number;
  readonly scheduleMs: number;
  /** The type of the first command written for it (a failover writes others later). */
  readonly commandType: string;
  readonly state: string;
}

/** A line the scheduled task wrote: the run it belonged to and the `${porpoise.scheduleTime}` it saw. */
export interface ScheduleWitness {
  readonly instanceId: number;
  readonly scheduleMs: number;
}

export interface ScheduleHistory {
  readonly schedule: ScheduleSpec;
  /** Fire times up to here must all have been handled. */
  readonly cutoffMs: number;
  readonly ledger: readonly LedgerEntry[];
  /** Every instance with this schedule's id. */
  readonly runs: readonly ScheduledRun[];
  readonly witness: readonly ScheduleWitness[];
  /** Runs must have ended (SUCCESS, FAILURE, STOP, PAUSE) and their task must have seen its time. */
  readonly requireFinal: boolean;
}

export type ScheduleViolationKind =
  'gap' | 'duplicate' | 'off-grid' | 'out-of-bounds' | 'not-run' | 'wrong-run' | 'wrong-witness';

export interface ScheduleViolation {
  readonly kind: ScheduleViolationKind;
  readonly message: string;
}

const FINAL = new Set(['SUCCESS', 'FAILURE', 'STOP', 'PAUSE']);
const iso = (ms: number) => new Date(ms).toISOString();

/** The cron's fire times in [fromMs, toMs] (fromMs itself when it is one). */
export function fireTimesBetween(spec: ScheduleSpec, fromMs: number, toMs: number, max = 100_000): number[] {
  const cron = new CronTime(spec.cron, spec.timezone);
  const out: number[] = [];
  let t = fromMs - 1;
  for (;;) {
    t = cron.getNextDateFrom(new Date(t), spec.timezone).toJSDate().getTime();
    if (t > toMs || out.length >= max) return out;
    out.push(t);
  }
}

export function checkSchedule(h: ScheduleHistory): ScheduleViolation[] {
  const v: ScheduleViolation[] = [];
  const spec = h.schedule;
  const onGrid = (ms: number) => fireTimesBetween(spec, ms, ms).length === 1;
  const inBounds = (ms: number) =>
    (spec.startMs === null || spec.startMs === undefined || ms >= spec.startMs) &&
    (spec.endMs === null || spec.endMs === undefined || ms <= spec.endMs);

  const ledgerByTime = new Map<number, LedgerEntry[]>();
  for (const e of h.ledger) ledgerByTime.set(e.fireMs, [...(ledgerByTime.get(e.fireMs) ?? []), e]);
  const runsByTime = new Map<number, ScheduledRun[]>();
  for (const r of h.runs) runsByTime.set(r.scheduleMs, [...(runsByTime.get(r.scheduleMs) ?? []), r]);
  const runsById = new Map(h.runs.map((r) => [r.id, r]));

  // Every recorded time: on the grid, in bounds, once.
  for (const [ms, entries] of ledgerByTime) {
    if (!onGrid(ms)) {
      v.push({ kind: 'off-grid', message: `ledger row for ${iso(ms)}, not a fire time of ${spec.cron}` });
    }
    if (!inBounds(ms)) {
      v.push({ kind: 'out-of-bounds', message: `ledger row for ${iso(ms)}, outside the schedule's window` });
    }
    if (entries.length > 1) {
      v.push({ kind: 'duplicate', message: `${entries.length} ledger rows for ${iso(ms)}` });
    }
  }
  for (const [ms, runs] of runsByTime) {
    if (!onGrid(ms)) {
      v.push({
        kind: 'off-grid',
        message: `run(s) ${runs.map((r) => r.id).join(', ')} at ${iso(ms)}, not a fire time`,
      });
    }
    if (!inBounds(ms)) {
      v.push({
        kind: 'out-of-bounds',
        message: `run(s) ${runs.map((r) => r.id).join(', ')} at ${iso(ms)}, outside the window`,
      });
    }
    if (runs.length > 1) {
      v.push({
        kind: 'duplicate',
        message: `${runs.length} runs for ${iso(ms)}: ${runs.map((r) => r.id).join(', ')}`,
      });
    }
  }

  // Every fire time from the first to the cutoff: exactly one ledger row; a FIRED one exactly one run.
  const firsts = [...ledgerByTime.keys(), ...runsByTime.keys()];
  if (firsts.length === 0) {
    v.push({ kind: 'gap', message: `nothing fired at all up to ${iso(h.cutoffMs)}` });
    return v;
  }
  const first = Math.min(...firsts);
  const claimed = new Map<number, number>();
  for (const ms of fireTimesBetween(spec, first, h.cutoffMs)) {
    if (!inBounds(ms)) continue;
    const entries = ledgerByTime.get(ms) ?? [];
    const runs = runsByTime.get(ms) ?? [];
    const entry = entries[0];
    if (entry === undefined) {
      v.push({
        kind: 'gap',
        message: `no ledger row for fire time ${iso(ms)}${runs.length ? ' (but a run)' : ''}`,
      });
      continue;
    }
    if (entry.outcome === 'MISFIRE_SKIPPED') {
      if (spec.misfirePolicy === 'RUN_ALL') {
        v.push({ kind: 'not-run', message: `fire time ${iso(ms)} recorded MISFIRE_SKIPPED under RUN_ALL` });
      }
      if (runs.length > 0) {
        v.push({
          kind: 'duplicate',
          message: `fire time ${iso(ms)} skipped, yet run by ${runs.map((r) => r.id).join(', ')}`,
        });
      }
      continue;
    }
    const run = entry.instanceId === null ? undefined : runsById.get(entry.instanceId);
    if (run === undefined || run.scheduleMs !== ms) {
      v.push({
        kind: 'gap',
        message: `fire time ${iso(ms)} FIRED, but its run ${entry.instanceId} is missing or elsewhere`,
      });
      continue;
    }
    const other = claimed.get(run.id);
    if (other !== undefined) {
      v.push({ kind: 'duplicate', message: `run ${run.id} claimed by ${iso(other)} and ${iso(ms)}` });
    }
    claimed.set(run.id, ms);
  }

  // The runs themselves.
  const seen = new Map<number, ScheduleWitness[]>();
  for (const w of h.witness) seen.set(w.instanceId, [...(seen.get(w.instanceId) ?? []), w]);
  for (const r of h.runs) {
    if (r.commandType !== 'SCHEDULER') {
      v.push({
        kind: 'wrong-run',
        message: `run ${r.id} (${iso(r.scheduleMs)}) was started by a ${r.commandType} command`,
      });
    }
    const lines = seen.get(r.id) ?? [];
    for (const w of lines) {
      if (w.scheduleMs !== r.scheduleMs) {
        v.push({
          kind: 'wrong-witness',
          message: `run ${r.id}'s task saw schedule time ${iso(w.scheduleMs)}, not ${iso(r.scheduleMs)}`,
        });
      }
    }
    if (!h.requireFinal) continue;
    if (!FINAL.has(r.state)) {
      v.push({ kind: 'wrong-run', message: `run ${r.id} (${iso(r.scheduleMs)}) never ended: ${r.state}` });
    } else if (r.state === 'SUCCESS' && lines.length === 0) {
      v.push({
        kind: 'wrong-run',
        message: `run ${r.id} (${iso(r.scheduleMs)}) succeeded, but its task left no witness`,
      });
    }
  }
  for (const [id, lines] of seen) {
    if (!runsById.has(id)) {
      v.push({
        kind: 'wrong-witness',
        message: `a task saw ${iso(lines[0]?.scheduleMs ?? 0)} in run ${id}, not a run of this schedule`,
      });
    }
  }
  return v;
}

/** The witness lines `sched <instance id> <schedule time ISO>` of the scheduled task. */
export function parseScheduleWitness(text: string): ScheduleWitness[] {
  const out: ScheduleWitness[] = [];
  for (const line of text.split('\n')) {
    const m = /^sched (\d+) (\S+)$/.exec(line.trim());
    if (!m) continue;
    out.push({ instanceId: Number(m[1]), scheduleMs: Date.parse(m[2] ?? '') });
  }
  return out;
}

export function formatScheduleViolations(list: readonly ScheduleViolation[], max = 15): string {
  if (list.length === 0) return 'every fire time ran exactly once';
  const shown = list.slice(0, max).map((x) => `  - ${x.kind}: ${x.message}`);
  return [
    `${list.length} schedule violation(s):`,
    ...shown,
    list.length > max ? `  ... and ${list.length - max} more` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

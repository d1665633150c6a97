/**
 * Provable death (docs/failover.md, "Provable death"): when may a master treat another node as
 * dead before the registry says so (one session timeout after its last heartbeat)?
 *
 * Only when the node's process is gone: its gRPC port refused a connection (ECONNREFUSED: the
 * host is up and answered the SYN with a RST, so no process listens there), and refused again
 * on a second probe at least a confirmation interval later, while the registry entry is still the
 * one the first probe was about (same start time: not a new process that took the port over).
 * Nodes listen before they register and deregister before they close their port, so a registered
 * node whose port refuses is not starting up or stopping. Everything else spares the node:
 *
 * - a connection accepted: the process is there (a frozen process too: the kernel completes the
 *   handshake for a SIGSTOPped listener; a slow one, a draining worker, which keeps its port open
 *   until its last task ended);
 * - no answer (timeout, unreachable host, any other error): a partition or a frozen host proves
 *   nothing, so such a node waits for its session like before;
 * - an entry that says serving=false (draining, or its session suspended): never judged here;
 * - the entry gone or replaced meanwhile: the registry already decided, or a new process runs.
 *
 * For a worker this matters most: a live worker declared dead would have its running tasks
 * started twice, and no epoch fences a worker. Pure: the probes and the registry reads are the
 * caller's (DeathWatchService).
 */

/** What one TCP connect to the node's gRPC port gave. */
export type ProbeOutcome = 'refused' | 'accepted' | 'timeout' | 'error';

/** A registry entry as the master saw it. */
export interface ProbedEntry {
  readonly key: string;
  readonly startTime: number;
  readonly serving: boolean;
}

export interface DeathEvidence {
  /** The entry (from this master's registry view) the first probe was about. */
  readonly seen: ProbedEntry;
  readonly first: ProbeOutcome;
  /** The confirmation probe; absent until it ran. */
  readonly second?: ProbeOutcome;
  /** Measured time between the two probes' starts (ms). */
  readonly gapMs?: number;
  /**
   * The entry read from the registry after the second probe: null when the key is gone,
   * undefined when not read yet. startTime undefined: its value did not parse.
   */
  readonly current?: { readonly startTime: number | undefined; readonly serving: boolean } | null;
}

export type DeathVerdict =
  | { readonly kind: 'dead' }
  /** The first probe was refused: probe again after confirmMs, then read the entry. */
  | { readonly kind: 'confirm' }
  | { readonly kind: 'spared'; readonly why: string };

export function judgeDeath(evidence: DeathEvidence, confirmMs: number): DeathVerdict {
  const { seen, first, second, gapMs, current } = evidence;
  if (!seen.serving) return spared('it is draining or its session is suspended: it waits for its session');
  if (first !== 'refused') return spared(notRefused(first));
  if (second === undefined) return { kind: 'confirm' };
  if (gapMs === undefined || gapMs < confirmMs) {
    return spared('the refusal was not confirmed after the interval');
  }
  if (second !== 'refused') return spared(notRefused(second));
  if (current === undefined) return spared('its registry entry was not read after the probes');
  if (current === null) return spared('its registry entry is gone already');
  if (current.startTime !== seen.startTime) return spared('a new process registered at that address');
  if (!current.serving) return spared('it is draining or its session is suspended: it waits for its session');
  return { kind: 'dead' };
}

function notRefused(outcome: Exclude<ProbeOutcome, 'refused'>): string {
  return outcome === 'accepted'
    ? 'its port accepted a connection: the process is there'
    : `its port gave no proof (${outcome}): only a refused connection proves death`;
}

function spared(why: string): DeathVerdict {
  return { kind: 'spared', why };
}

import { Inject, Injectable, Logger } from '@nestjs/common';
import { REGISTRY, type Registry } from '@porpoise/registry';
import { CLOCK, type Clock, type TimerHandle, unrefTimer } from '@porpoise/common';
import {
  MASTER_IDENTITY,
  MASTER_OPTIONS,
  type MasterIdentity,
  type MasterOptions,
} from '../master.constants';
import { MasterMembershipService } from './master-membership.service';
import type { LiveNode } from './node-directory';
import { PortProber } from './port-prober';
import { judgeDeath } from './provable-death';
import { SessionStateService } from './session-state.service';
import { WorkerDirectoryService } from './worker-directory.service';

export const DEFAULT_DEATH_PROBE = { intervalMs: 200, confirmMs: 100, timeoutMs: 1000 } as const;

/**
 * Fails over a node whose process is provably gone without waiting for its registry session to
 * expire (docs/failover.md, "Provable death"). Every probe interval it connects to the gRPC port
 * of every registered master (but itself) and worker; a refused connection is probed again after
 * the confirmation interval and the entry re-read (domain: provable-death.ts). A node judged dead
 * has its registry entry deleted: every master then sees the same REMOVE a session expiry gives,
 * and the existing failover runs (the lock and the epoch fence for a master, re-dispatch of a
 * worker's tasks as new attempts). The entry's start time is compared just before the deletion,
 * so a new process that took the address over is not removed.
 *
 * Only while this master's session is CONNECTED (it acts on the registry). Off when the probe
 * interval is 0.
 */
@Injectable()
export class DeathWatchService {
  private readonly logger = new Logger('DeathWatch');
  private timer: TimerHandle | undefined;
  private readonly inFlight = new Set<string>();
  private stopped = true;
  private readonly intervalMs: number;
  private readonly confirmMs: number;
  private readonly timeoutMs: number;

  constructor(
    @Inject(REGISTRY) private readonly registry: Registry,
    @Inject(MasterMembershipService) private readonly masters: MasterMembershipService,
    @Inject(WorkerDirectoryService) private readonly workers: WorkerDirectoryService,
    @Inject(SessionStateService) private readonly session: SessionStateService,
    @Inject(MASTER_IDENTITY) private readonly identity: MasterIdentity,
    @Inject(PortProber) private readonly prober: PortProber,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(MASTER_OPTIONS) options: MasterOptions,
  ) {
    this.intervalMs = options.deathProbeIntervalMs ?? DEFAULT_DEATH_PROBE.intervalMs;
    this.confirmMs = options.deathConfirmMs ?? DEFAULT_DEATH_PROBE.confirmMs;
    this.timeoutMs = options.deathProbeTimeoutMs ?? DEFAULT_DEATH_PROBE.timeoutMs;
  }

  start(): void {
    if (this.intervalMs <= 0 || !this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = unrefTimer(
      this.clock.setTimeout(() => {
        this.round();
        this.schedule();
      }, this.intervalMs),
    );
  }

  /** One look at every registered node; a node already being judged is not probed again. */
  private round(): void {
    if (!this.session.canStartWork()) return;
    const nodes = [
      ...this.masters.entries().filter((n) => n.address !== this.identity.address),
      ...this.workers.entries(),
    ];
    for (const node of nodes) {
      if (this.inFlight.has(node.key)) continue;
      this.inFlight.add(node.key);
      void this.judge(node)
        .catch((err: Error) => this.logger.warn(`probing ${node.address} failed: ${err.message}`))
        .finally(() => this.inFlight.delete(node.key));
    }
  }

  private async judge(node: LiveNode): Promise<void> {
    const target = splitAddress(node.address);
    if (target === undefined) return;
    const seen = { key: node.key, startTime: node.heartbeat.startTime, serving: node.heartbeat.serving };
    // A monotonic clock for the gap: a wall clock that jumps must not shorten the confirmation.
    const firstAt = this.clock.monotonic();
    const first = await this.prober.probe(target.host, target.port, this.timeoutMs);
    if (judgeDeath({ seen, first }, this.confirmMs).kind !== 'confirm') return;
    // A few ms over: a timer may fire a millisecond early, and the gap is checked against it.
    await this.clock.sleep(this.confirmMs + 5);
    const secondAt = this.clock.monotonic();
    const second = await this.prober.probe(target.host, target.port, this.timeoutMs);
    const evidence = { seen, first, second, gapMs: Math.floor(secondAt - firstAt) };
    if (second !== 'refused') {
      this.logger.log(`${node.address} refused a connection once, then not (${second}): left alone`);
      return;
    }
    if (this.stopped || !this.session.canStartWork()) return;
    const current = readEntry(await this.registry.get(node.key));
    const verdict = judgeDeath({ ...evidence, current }, this.confirmMs);
    if (verdict.kind !== 'dead') {
      const why = verdict.kind === 'spared' ? verdict.why : 'not confirmed';
      this.logger.log(`${node.address} refused connections but is not judged dead: ${why}`);
      return;
    }
    // The entry was compared one registry round trip ago: a new process registering on the same
    // address within it would lose its key until its next heartbeat (docs/failover.md).
    if (this.stopped) return;
    this.logger.warn(
      `${node.key}: its process is gone (gRPC port refused twice, ${evidence.gapMs} ms apart, ` +
        `same start time ${seen.startTime}): removing its registry entry so failover starts now`,
    );
    await this.registry.delete(node.key);
  }
}

function readEntry(value: string | null): { startTime: number | undefined; serving: boolean } | null {
  if (value === null) return null;
  try {
    const parsed = JSON.parse(value) as { startTime?: unknown; serving?: unknown };
    return {
      startTime: typeof parsed.startTime === 'number' ? parsed.startTime : undefined,
      serving: parsed.serving === true,
    };
  } catch {
    return { startTime: undefined, serving: false };
  }
}

function splitAddress(address: string): { host: string; port: number } | undefined {
  const at = address.lastIndexOf(':');
  if (at <= 0) return undefined;
  const port = Number(address.slice(at + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

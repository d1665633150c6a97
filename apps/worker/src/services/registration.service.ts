import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  CLOCK,
  HostLoadSampler,
  PORPOISE_CONFIG,
  REGISTRY_PATHS,
  type Clock,
  type TimerHandle,
  type WorkerConfig,
  unrefTimer,
} from '@porpoise/common';
import { REGISTRY, type ConnectionState, type Registry } from '@porpoise/registry';
import { buildHeartbeat } from '../domain/heartbeat';
import { livenessTimings, suspendedKillDelayMs, type LivenessTimings } from '../domain/liveness';
import { RESULT_MESSAGES } from '../worker.constants';
import { AdmissionService } from './admission.service';
import { TaskExecutorService } from './task-executor.service';

const KEY_DELETE_TIMEOUT_MS = 2_000;

/**
 * Membership: the ephemeral key /nodes/worker/{group}/{host}:{port} with a NodeHeartbeat, refreshed
 * every HEARTBEAT_INTERVAL_MS, and the reaction to the registry session (DESIGN.md section 6):
 * - SUSPENDED: stop taking tasks (the masters may think we are gone), and unless the session is
 *   back in time, kill every running task at the liveness deadline (session timeout minus a margin,
 *   domain/liveness.ts) counted from the last proof that the session was alive: a worker cut off
 *   from the registry (a partition, not a freeze, which the watchdogs handle) must end its tasks
 *   before the server can expire its session and the masters run them again elsewhere;
 * - LOST: kill every running task's process group at once: the masters saw this worker vanish and
 *   dispatch its tasks again elsewhere, and a stalled worker that kept running them would run a
 *   task twice (a DolphinScheduler bug). Their results report KILL, never SUCCESS;
 * - RECONNECTED / CONNECTED after LOST: take tasks again and register anew.
 * After a stall of the worker longer than the liveness deadline (AdmissionService) it heartbeats at
 * once: the first put sent after the stall that succeeds while connected (or a CONNECTED /
 * RECONNECTED) confirms the session, and Dispatch is accepted again.
 */
@Injectable()
export class RegistrationService {
  private readonly logger = new Logger('WorkerRegistration');
  readonly key: string;
  /** Host load for the heartbeat: the sampler masters use too (libs/common). */
  private sampler: HostLoadSampler | undefined;
  private timer: TimerHandle | undefined;
  private removeListener: (() => void) | undefined;
  private removeStallListener: (() => void) | undefined;
  private publishing: Promise<void> | undefined;
  private publishAgain = false;
  private failing = false;
  private stopped = false;
  private registered = false;
  private readonly timings: LivenessTimings;
  /**
   * performance.now() of the last proof that the session was alive: the send time of the last
   * heartbeat put that succeeded while connected, or the last CONNECTED / RECONNECTED.
   */
  private lastAliveAt = 0;
  private suspendTimer: TimerHandle | undefined;

  constructor(
    @Inject(PORPOISE_CONFIG) private readonly config: WorkerConfig,
    @Inject(REGISTRY) private readonly registry: Registry,
    private readonly admission: AdmissionService,
    private readonly executor: TaskExecutorService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.key = REGISTRY_PATHS.worker(config.workerGroup, config.nodeHost, config.workerPort);
    this.timings = livenessTimings(config.registry.sessionTimeoutMs, config.registry.heartbeatIntervalMs);
  }

  /** Registers (failing loudly if the first put fails) and starts the heartbeat. */
  async start(): Promise<void> {
    this.removeListener = this.registry.onConnectionStateChange((state) => this.onConnectionState(state));
    // After a stall Dispatch is refused until a registry operation proves the session alive: ask now.
    this.removeStallListener = this.admission.onStall(() => void this.publish());
    this.sampler = new HostLoadSampler(this.clock);
    const sentAt = performance.now();
    await this.registry.put(this.key, this.heartbeatJson(), { ephemeral: true });
    this.lastAliveAt = Math.max(this.lastAliveAt, sentAt);
    this.admission.confirmSession(sentAt);
    this.registered = true;
    this.logger.log(`registered ${this.key}`);
    this.timer = unrefTimer(
      this.clock.setInterval(() => void this.publish(), this.config.registry.heartbeatIntervalMs),
    );
  }

  /** Writes the heartbeat now (coalesced: at most one put in flight, one more queued). */
  publish(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.publishing) {
      this.publishAgain = true;
      return this.publishing;
    }
    this.publishing = (async () => {
      do {
        this.publishAgain = false;
        await this.putOnce();
      } while (this.publishAgain && !this.stopped);
    })().finally(() => {
      this.publishing = undefined;
    });
    return this.publishing;
  }

  /** Stops the heartbeat and removes our key at once (not only when the session ends). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clock.clearInterval(this.timer);
    this.clearSuspendTimer();
    this.removeListener?.();
    this.removeStallListener?.();
    await this.publishing;
    // Never registered (start failed, e.g. the port is taken): the key may be another node's.
    if (!this.registered) return;
    const deleted = this.registry.delete(this.key).then(
      () => true,
      (err: Error) => {
        this.logger.warn(`could not remove ${this.key}: ${err.message}`);
        return false;
      },
    );
    const timeout = this.clock.sleep(KEY_DELETE_TIMEOUT_MS).then(() => false);
    if (await Promise.race([deleted, timeout])) this.logger.log(`unregistered ${this.key}`);
  }

  private async putOnce(): Promise<void> {
    // Without a session an ephemeral put cannot succeed; CONNECTED will publish.
    if (this.admission.sessionState === 'lost') return;
    try {
      const sentAt = performance.now();
      await this.registry.put(this.key, this.heartbeatJson(), { ephemeral: true });
      // Proof of life only while connected: during SUSPENDED the put may have gone through a
      // connection other than the one that keeps the session.
      // It also confirms the session after a stall (if sent after the stall was noticed); the
      // heartbeat just written said serving: false, so write it again at once.
      if (this.admission.sessionState === 'connected') {
        this.lastAliveAt = Math.max(this.lastAliveAt, sentAt);
        if (this.admission.confirmSession(sentAt)) this.publishAgain = true;
      }
      if (this.failing) this.logger.log(`heartbeat to ${this.key} works again`);
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.warn(`heartbeat to ${this.key} failed: ${(err as Error).message}`);
      this.failing = true;
    }
  }

  private heartbeatJson(): string {
    this.sampler ??= new HostLoadSampler(this.clock);
    const heartbeat = buildHeartbeat(
      {
        host: this.config.nodeHost,
        port: this.config.workerPort,
        group: this.config.workerGroup,
        startTime: this.admission.startTimeMs,
        registration: this.admission.registration,
        runningTasks: this.executor.runningCount,
        capacity: this.config.workerCapacity,
        serving: this.admission.serving,
      },
      this.sampler.sample(),
    );
    return JSON.stringify(heartbeat);
  }

  private onConnectionState(state: ConnectionState): void {
    if (this.stopped) return;
    switch (state) {
      case 'SUSPENDED':
        this.admission.setSession('suspended');
        this.armSuspendTimer();
        return;
      case 'LOST':
        this.clearSuspendTimer();
        this.admission.setSession('lost');
        this.logger.error('registry session lost: killing running tasks, not taking tasks');
        void this.executor.stopAll({ state: 'KILL', message: RESULT_MESSAGES.sessionLost }, 0);
        return;
      case 'RECONNECTED':
      case 'CONNECTED':
        this.clearSuspendTimer();
        this.lastAliveAt = performance.now();
        if (this.admission.sessionState !== 'connected') {
          this.logger.log(`registry ${state.toLowerCase()}: taking tasks again`);
        }
        this.admission.setSession('connected');
        this.admission.confirmSession(this.lastAliveAt);
        void this.publish();
        return;
    }
  }

  /**
   * SUSPENDED: the running tasks die at the liveness deadline after the last proof of life unless
   * the session comes back first (RECONNECTED, or LOST, which kills them anyway).
   */
  private armSuspendTimer(): void {
    if (this.suspendTimer) return;
    const delay = Math.round(
      suspendedKillDelayMs(this.lastAliveAt, performance.now(), this.timings.deadlineMs),
    );
    this.logger.warn(
      `registry session suspended: not taking tasks; running tasks are killed in ${delay} ms unless it reconnects`,
    );
    this.suspendTimer = unrefTimer(
      this.clock.setTimeout(() => {
        this.suspendTimer = undefined;
        if (this.stopped || this.admission.sessionState !== 'suspended') return;
        this.logger.error(
          `registry session suspended for too long (${this.timings.deadlineMs} ms since the last sign of ` +
            `a live session, session timeout ${this.timings.sessionTimeoutMs} ms): killing running tasks ` +
            'before the session can expire',
        );
        this.admission.endRegistration('suspended past the liveness deadline');
        void this.executor.stopAll({ state: 'KILL', message: RESULT_MESSAGES.sessionLost }, 0);
      }, delay),
    );
  }

  private clearSuspendTimer(): void {
    this.clock.clearTimeout(this.suspendTimer);
    this.suspendTimer = undefined;
  }
}

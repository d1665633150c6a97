/**
 * A stand-in for the worker *process* in master tests: it registers /nodes/worker/{group}/{addr}
 * in the real registry, serves the real WorkerTaskService over gRPC (libs/rpc GrpcServer, same
 * secret check), and reports TaskStarted / TaskFinished back through the real MasterEventClient
 * to the master address in each TaskSpec. What a task does is scripted per test.
 */
import { REGISTRY_PATHS, type NodeHeartbeat } from '@porpoise/common';
import { createRegistry, type Registry } from '@porpoise/registry';
import {
  GrpcServer,
  MasterEventClient,
  TASK_RESULT_MESSAGES,
  type EventAck,
  type TakeOverResponse,
  type TaskFinishedEvent,
  type TaskSpec,
} from '@porpoise/rpc';
import { freePort } from '@porpoise/test-harness';

export type Behaviour =
  | { kind: 'succeed'; outputs?: Record<string, string> }
  | { kind: 'fail'; exitCode?: number }
  /** Starts, then waits until release(taskInstanceId) (or a Kill) before finishing. */
  | { kind: 'hold'; then: 'SUCCESS' | 'FAILURE' }
  /** Starts and runs until killed. */
  | { kind: 'hang' }
  /** Starts, then ends the run itself (session lost, stopping, ...): a KILL with that message. */
  | { kind: 'selfKill'; message: string }
  | { kind: 'refuse'; reason: string }
  /**
   * Starts (held, like 'hold'), then fails the Dispatch call itself, as if the connection dropped
   * after the worker took the task: the master cannot tell whether it started.
   */
  | { kind: 'startThenError'; then: 'SUCCESS' | 'FAILURE' };

export interface JournalEntry {
  what: 'dispatch' | 'started' | 'finished' | 'kill' | 'takeOver';
  worker: string;
  taskName?: string;
  taskInstanceId: number;
  attempt?: number;
  ack?: EventAck;
  /** A dispatch's effective params (TaskSpec.params). */
  params?: Record<string, string>;
}

/** Shared by all fake workers of a test so one journal orders everything they saw and did. */
export class Journal {
  readonly entries: JournalEntry[] = [];
  add(e: JournalEntry): void {
    this.entries.push(e);
  }
  indexOf(
    what: JournalEntry['what'],
    taskName: string,
    pred: (e: JournalEntry) => boolean = () => true,
  ): number {
    return this.entries.findIndex((e) => e.what === what && e.taskName === taskName && pred(e));
  }
  dispatches(taskName?: string): JournalEntry[] {
    return this.entries.filter(
      (e) => e.what === 'dispatch' && (taskName === undefined || e.taskName === taskName),
    );
  }
}

export interface FakeWorkerOptions {
  databaseUrl: string;
  secret: string;
  journal: Journal;
  group?: string;
  capacity?: number;
  behaviour?: (spec: TaskSpec) => Behaviour;
  /** What TakeOver answers (default UNKNOWN). */
  takeOver?: (taskInstanceId: number) => TakeOverResponse;
}

export class FakeWorker {
  readonly address: string;
  readonly group: string;
  behaviour: (spec: TaskSpec) => Behaviour;
  takeOverAnswer: (taskInstanceId: number) => TakeOverResponse;
  private readonly held = new Map<
    number,
    { spec: TaskSpec; then: 'SUCCESS' | 'FAILURE' | 'KILL'; message?: string }
  >();
  private readonly seen = new Set<number>();
  private readonly events: MasterEventClient;
  private readonly pending = new Set<Promise<unknown>>();
  private registry: Registry | undefined;
  private server: GrpcServer | undefined;
  /**
   * This incarnation's start time, the same in every heartbeat: a master reads a changed start
   * time as a worker restart (its running tasks lost), like a real worker's.
   */
  private readonly startTime = Date.now();

  private constructor(
    private readonly options: FakeWorkerOptions,
    readonly port: number,
  ) {
    this.address = `127.0.0.1:${port}`;
    this.group = options.group ?? 'default';
    this.behaviour = options.behaviour ?? (() => ({ kind: 'succeed' }));
    this.takeOverAnswer = options.takeOver ?? (() => ({ status: 'UNKNOWN', result: null, startTimeMs: 0 }));
    this.events = new MasterEventClient(options.secret);
  }

  static async start(options: FakeWorkerOptions): Promise<FakeWorker> {
    const worker = new FakeWorker(options, await freePort());
    await worker.open();
    return worker;
  }

  private async open(): Promise<void> {
    const journal = this.options.journal;
    this.server = new GrpcServer({
      bindHost: '127.0.0.1',
      port: this.port,
      clusterSecret: this.options.secret,
      logger: { warn: () => undefined, error: () => undefined },
      worker: {
        dispatch: async ({ task }) => {
          journal.add({
            what: 'dispatch',
            worker: this.address,
            taskName: task.taskName,
            taskInstanceId: task.taskInstanceId,
            attempt: task.attempt,
            params: task.params,
          });
          const b = this.behaviour(task);
          if (b.kind === 'refuse') return { accepted: false, reason: b.reason };
          // Idempotent per task instance id, like the real worker.
          if (this.seen.has(task.taskInstanceId)) return { accepted: true, reason: '' };
          this.seen.add(task.taskInstanceId);
          if (b.kind === 'startThenError') {
            this.track(this.run(task, { kind: 'hold', then: b.then }));
            throw new Error('connection dropped after the task started (simulated)');
          }
          this.track(this.run(task, b));
          return { accepted: true, reason: '' };
        },
        kill: async ({ taskInstanceId }) => {
          journal.add({ what: 'kill', worker: this.address, taskInstanceId });
          const h = this.held.get(taskInstanceId);
          if (!h) return { killed: false };
          h.then = 'KILL';
          h.message = TASK_RESULT_MESSAGES.killed;
          this.release(taskInstanceId);
          return { killed: true };
        },
        takeOver: async ({ taskInstanceId, newMasterAddress, epoch }) => {
          journal.add({ what: 'takeOver', worker: this.address, taskInstanceId });
          const answer = this.takeOverAnswer(taskInstanceId);
          // Like the real worker: a run it still has reports to the new owner from now on.
          const h = this.held.get(taskInstanceId);
          if (answer.status === 'RUNNING' && h) {
            h.spec = { ...h.spec, masterAddress: newMasterAddress, epoch };
          }
          return answer;
        },
        readLog: async () => ({ found: false, content: Buffer.alloc(0), nextOffset: 0, eof: true }),
      },
    });
    await this.server.start();
    this.registry = createRegistry({
      type: 'jdbc',
      databaseUrl: this.options.databaseUrl,
      sessionTimeoutMs: 3000,
      heartbeatIntervalMs: 300,
    });
    await this.registry.start();
    await this.beat();
  }

  /** Puts the heartbeat (an UPDATE event wakes masters waiting for a worker of the group). */
  async beat(overrides: Partial<NodeHeartbeat> = {}): Promise<void> {
    const hb: NodeHeartbeat = {
      host: '127.0.0.1',
      port: this.port,
      startTime: this.startTime,
      heartbeatTime: Date.now(),
      cpuUsage: 0,
      memoryUsage: 0,
      loadAverage: 0,
      group: this.group,
      runningTasks: this.held.size,
      capacity: this.options.capacity ?? 100,
      serving: true,
      ...overrides,
    };
    await this.registry!.put(REGISTRY_PATHS.worker(this.group, '127.0.0.1', this.port), JSON.stringify(hb), {
      ephemeral: true,
    });
  }

  /** Lets a held task finish with its scripted result. */
  release(taskInstanceId: number): void {
    const h = this.held.get(taskInstanceId);
    if (!h) return;
    this.held.delete(taskInstanceId);
    this.track(this.finish(h.spec, h.then, undefined, h.message));
  }

  heldTasks(): number[] {
    return [...this.held.keys()];
  }

  /** Sends an event to a master directly (tests of the master's answers). */
  sendFinished(masterAddress: string, ev: TaskFinishedEvent): Promise<EventAck> {
    return this.events.taskFinished(masterAddress, ev);
  }

  /** Stops like a worker that dies: the registry key disappears, the port closes. */
  async close(): Promise<void> {
    await this.registry?.close();
    this.registry = undefined;
    await this.server?.stop(1000);
    this.server = undefined;
    await Promise.allSettled([...this.pending]);
    this.events.close();
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Has a Dispatch of this task instance started it here? */
  started(taskInstanceId: number): boolean {
    return this.seen.has(taskInstanceId);
  }

  private async run(
    spec: TaskSpec,
    b: Exclude<Behaviour, { kind: 'refuse' } | { kind: 'startThenError' }>,
  ): Promise<void> {
    await new Promise((r) => setImmediate(r));
    const started = await this.events
      .taskStarted(spec.masterAddress, {
        taskInstanceId: spec.taskInstanceId,
        workflowInstanceId: spec.workflowInstanceId,
        attempt: spec.attempt,
        startTimeMs: Date.now(),
        workerAddress: this.address,
        epoch: spec.epoch,
      })
      .catch((err: Error) => ({ status: 'ERROR', reason: err.message }) as unknown as EventAck);
    this.options.journal.add({
      what: 'started',
      worker: this.address,
      taskName: spec.taskName,
      taskInstanceId: spec.taskInstanceId,
      attempt: spec.attempt,
      ack: started,
    });
    if (b.kind === 'hold' || b.kind === 'hang') {
      this.held.set(spec.taskInstanceId, { spec, then: b.kind === 'hold' ? b.then : 'KILL' });
      return;
    }
    if (b.kind === 'selfKill') return this.finish(spec, 'KILL', -1, b.message);
    await this.finish(
      spec,
      b.kind === 'succeed' ? 'SUCCESS' : 'FAILURE',
      b.kind === 'fail' ? (b.exitCode ?? 1) : 0,
      '',
      b.kind === 'succeed' ? b.outputs : undefined,
    );
  }

  private async finish(
    spec: TaskSpec,
    state: 'SUCCESS' | 'FAILURE' | 'KILL',
    exitCode = state === 'SUCCESS' ? 0 : state === 'KILL' ? -1 : 1,
    message = '',
    outputs: Record<string, string> = {},
  ): Promise<void> {
    const ack = await this.events
      .taskFinished(spec.masterAddress, {
        taskInstanceId: spec.taskInstanceId,
        workflowInstanceId: spec.workflowInstanceId,
        attempt: spec.attempt,
        state,
        exitCode,
        startTimeMs: Date.now() - 1,
        endTimeMs: Date.now(),
        workerAddress: this.address,
        epoch: spec.epoch,
        message,
        outputs,
      })
      .catch((err: Error) => ({ status: 'ERROR', reason: err.message }) as unknown as EventAck);
    this.options.journal.add({
      what: 'finished',
      worker: this.address,
      taskName: spec.taskName,
      taskInstanceId: spec.taskInstanceId,
      attempt: spec.attempt,
      ack,
    });
  }
}

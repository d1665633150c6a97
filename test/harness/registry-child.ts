import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { ConnectionState, RegistryConfig, RegistryEvent } from '@porpoise/registry';

const ROOT = join(__dirname, '..', '..');

/**
 * A Registry client in a child process (run with tsx), driven over stdin/stdout, so a test
 * can SIGKILL it the way a crashed node dies: no close(), no goodbye to the server.
 */
export class RegistryChild {
  readonly events: RegistryEvent[] = [];
  readonly states: ConnectionState[] = [];
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {}

  get pid(): number {
    return this.child.pid ?? -1;
  }

  static async spawn(config: RegistryConfig): Promise<RegistryChild> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(__dirname, 'registry-child-main.ts'), JSON.stringify(config)],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const rc = new RegistryChild(child);
    child.stderr?.on('data', (d: Buffer) => (rc.stderr = (rc.stderr + d.toString()).slice(-8000)));
    const ready = new Promise<void>((resolve, reject) => {
      child.once('exit', (code, signal) =>
        reject(new Error(`registry child exited (${code ?? signal}) before ready: ${rc.stderr}`)),
      );
      createInterface({ input: child.stdout }).on('line', (line) => {
        const msg = JSON.parse(line) as {
          ready?: boolean;
          id?: number;
          ok?: boolean;
          result?: unknown;
          error?: { name: string; message: string };
          event?: RegistryEvent;
          state?: ConnectionState;
        };
        if (msg.ready) resolve();
        else if (msg.event) rc.events.push(msg.event);
        else if (msg.state) rc.states.push(msg.state);
        else if (msg.id !== undefined) {
          const p = rc.pending.get(msg.id);
          rc.pending.delete(msg.id);
          if (!p) return;
          if (msg.ok) p.resolve(msg.result);
          else p.reject(Object.assign(new Error(msg.error?.message), { name: msg.error?.name }));
        }
      });
    });
    child.once('exit', () => {
      for (const p of rc.pending.values()) p.reject(new Error(`registry child exited: ${rc.stderr}`));
      rc.pending.clear();
    });
    await ready;
    return rc;
  }

  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin?.write(JSON.stringify({ id, op, args }) + '\n');
    });
  }

  /** Sends signal and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill(signal);
    await exited;
  }
}

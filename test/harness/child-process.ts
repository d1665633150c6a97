import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** Spawns a process and resolves when a line of its stdout matches ready; rejects if it exits first. */
export function spawnUntilReady(
  command: string,
  args: string[],
  ready: RegExp,
  /** input: written to the child's stdin (stdio[0] 'pipe'), which is then closed: for secrets. */
  options: SpawnOptions & { timeoutMs?: number; name?: string; input?: string } = {},
): Promise<ChildProcess> {
  const { timeoutMs = 60_000, name = command, input, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
    if (input !== undefined) child.stdin?.end(input);
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${output.slice(-4000)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        resolve(child);
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(
        new Error(`${name} exited (code ${code}, signal ${signal}) before ready:\n${output.slice(-4000)}`),
      );
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Sends signal and resolves once the process has exited (SIGKILL after graceMs). */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Runs one Registry client in its own process for tests that SIGKILL it. Reads JSON
 * commands, one a line, on stdin: { id, op, args }. Writes one JSON line per reply
 * ({ id, ok, result } or { id, ok: false, error: { name, message } }) and per pushed
 * message ({ event } / { state }). argv[2] is the RegistryConfig as JSON.
 */
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRegistry, type RegistryConfig, type RegistryLock } from '@porpoise/registry';

const config = JSON.parse(process.argv[2] ?? '{}') as RegistryConfig;
const registry = createRegistry(config, {
  log: () => undefined,
  warn: (m) => process.stderr.write(`warn: ${m}\n`),
  error: (m) => process.stderr.write(`error: ${m}\n`),
});
const locks = new Map<string, RegistryLock>();
const send = (message: unknown) => process.stdout.write(JSON.stringify(message) + '\n');

registry.onConnectionStateChange((state) => send({ state }));

type Handler = (...args: never[]) => Promise<unknown>;
const ops: Record<string, Handler> = {
  put: (key: string, value: string, ephemeral: boolean) => registry.put(key, value, { ephemeral }),
  get: (key: string) => registry.get(key),
  delete: (key: string) => registry.delete(key),
  children: (key: string) => registry.children(key),
  subscribe: async (prefix: string) => {
    await registry.subscribe(prefix, (event) => send({ event }));
  },
  lock: async (path: string, timeoutMs?: number) => {
    const lock = await registry.acquireLock(path, { timeoutMs });
    locks.set(path, lock);
  },
  unlock: async (path: string) => {
    await locks.get(path)?.release();
    locks.delete(path);
  },
  /** n times: take the lock, read the counter file, pause, write it back plus one, release. */
  incrementUnderLock: async (path: string, file: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const lock = await registry.acquireLock(path, { timeoutMs: 60_000 });
      try {
        const value = Number(readFileSync(file, 'utf8'));
        await new Promise((r) => setTimeout(r, 2));
        writeFileSync(file, String(value + 1));
      } finally {
        await lock.release();
      }
    }
  },
  close: () => registry.close(),
};

async function main() {
  await registry.start();
  send({ ready: true, pid: process.pid });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const { id, op, args } = JSON.parse(line) as { id: number; op: string; args: unknown[] };
    const handler = ops[op];
    if (!handler) {
      send({ id, ok: false, error: { name: 'UnknownOp', message: op } });
      continue;
    }
    handler(...(args as never[])).then(
      (result) => send({ id, ok: true, result: result ?? null }),
      (err: Error) => send({ id, ok: false, error: { name: err.name, message: err.message } }),
    );
  }
}

main().catch((err: Error) => {
  process.stderr.write(`registry child failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

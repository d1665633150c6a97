/**
 * What provable death's probe loop costs an idle cluster (docs/failover.md, "Provable death"):
 * the CPU of one probe — a TCP connect to a real gRPC server's port and a close, both ends in
 * this process — and from it the share of a core a master spends at the default 200 ms interval
 * for a cluster of a given size.
 *
 *   npx tsx bench/death-probe.bench.ts [--probes 3000] [--nodes 5,20,50]
 */
import * as grpc from '@grpc/grpc-js';
import { TcpPortProber } from '../apps/master/src/registry/port-prober';
import { DEFAULT_DEATH_PROBE } from '../apps/master/src/registry/death-watch.service';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return (i > 0 ? process.argv[i + 1] : undefined) ?? fallback;
}

async function main(): Promise<void> {
  const probes = Number(arg('--probes', '3000'));
  const nodes = arg('--nodes', '5,20,50').split(',').map(Number);
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const prober = new TcpPortProber();
  try {
    // Warm-up: the first connects pay for code loading.
    for (let i = 0; i < 200; i++) await prober.probe('127.0.0.1', port, 1000);
    const before = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < probes; i++) {
      const outcome = await prober.probe('127.0.0.1', port, 1000);
      if (outcome !== 'accepted') throw new Error(`probe ${i}: ${outcome}`);
    }
    const cpu = process.cpuUsage(before);
    const wallMs = performance.now() - started;
    const cpuPerProbeUs = (cpu.user + cpu.system) / probes;
    const perSecond = 1000 / DEFAULT_DEATH_PROBE.intervalMs;
    console.log(
      `${probes} probes in ${wallMs.toFixed(0)} ms wall; CPU per probe (both ends): ${cpuPerProbeUs.toFixed(0)} µs`,
    );
    console.log('other nodes seen by a master | probes/s | share of one core (prober + the probed ends)');
    for (const n of nodes) {
      const rate = n * perSecond;
      console.log(
        `${String(n).padStart(28)} | ${String(rate).padStart(8)} | ${((rate * cpuPerProbeUs) / 1e4).toFixed(2)} %`,
      );
    }
  } finally {
    server.forceShutdown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

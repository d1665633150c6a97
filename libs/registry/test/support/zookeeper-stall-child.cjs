// Child process of zookeeper.fd-reuse.int-spec.ts (plain JS: it exercises the native binding).
//
// Each cycle: a fresh ZooKeeper handle connects, the event loop stalls past 2/3 of the session
// timeout (as after a SIGSTOP or a long GC: the C client then closes its socket on the next
// zookeeper_interest), and right after the stall TCP connections are opened to a local echo
// server and kept for a while, so they can take the fd number the C client just released. Every
// connection must then answer an echo. Before the binding fix, the binding later closed its
// stale poll handle on that number and libuv dropped the connection from epoll: no echo ever.
// Prints one JSON line: {"cycles":N,"ok":N,"hung":N}.
const net = require('node:net');
const ZooKeeper = require('zookeeper');

const [connect, cyclesArg, timeoutArg] = process.argv.slice(2);
const cycles = Number(cyclesArg);
const sessionTimeoutMs = Number(timeoutArg);
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
let ok = 0;
let hung = 0;

function echoServer() {
  const server = net.createServer((s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Connects, holds the connection 3 s (longer than the C client's next reconnect), then expects an echo. */
function probe(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      hung++;
      s.destroy();
      resolve();
    }, 7000);
    s.on('connect', () => setTimeout(() => s.write('x'), 3000));
    s.on('data', () => {
      clearTimeout(timer);
      ok++;
      s.destroy();
      resolve();
    });
    s.on('error', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function connected() {
  const zk = new ZooKeeper({
    connect,
    timeout: sessionTimeoutMs,
    debug_level: 0,
    host_order_deterministic: false,
  });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('zookeeper did not connect in 20 s')), 20_000);
    zk.once('connect', () => {
      clearTimeout(t);
      resolve(zk);
    });
    zk.init({});
  });
}

(async () => {
  const server = await echoServer();
  const { port } = server.address();
  for (let c = 0; c < cycles; c++) {
    const zk = await connected();
    // Past 2/3 of the negotiated timeout, below the whole of it.
    sleepSync(Math.round(zk.timeout * 0.8));
    const probes = [];
    for (let i = 0; i < 30; i++) {
      probes.push(probe(port));
      await new Promise((r) => (i % 3 ? setImmediate(r) : setTimeout(r, 5)));
    }
    await Promise.all(probes);
    zk.close();
    await pause(100);
  }
  console.log(JSON.stringify({ cycles, ok, hung }));
  server.close();
  process.exit(0);
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});

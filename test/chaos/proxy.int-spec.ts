/**
 * The partition proxy (proxy.ts) on real loopback sockets: a black-holed link still accepts
 * connects (never a refusal, never a reset, even with nothing behind it) and carries nothing until
 * the heal, then everything it held; a delayed link delivers after a direct one; cutting one pair
 * leaves the others flowing; the initiator of a connection is identified through /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { sleep, waitFor } from '../harness';
import { itUnless } from '../harness/skip';
import {
  BLACKHOLE,
  delayOf,
  findSocketInode,
  identifyPeer,
  OPEN,
  PartitionNet,
  procTcpAddress,
  partitionSkipReason,
  type Proxy,
} from './proxy';

/** An echo server that counts the connections it accepted. */
async function echoServer(): Promise<{ server: Server; port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port, accepted: () => accepted };
}

/** A client with everything it received, and whether it saw an error or a close. */
interface Client {
  socket: Socket;
  received: () => string;
  errors: string[];
  closed: () => boolean;
}
async function client(port: number, host = '127.0.0.1'): Promise<Client> {
  const socket = connect({ port, host });
  let data = '';
  let closed = false;
  const errors: string[] = [];
  socket.on('data', (c: Buffer) => (data += c.toString()));
  socket.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => data, errors, closed: () => closed };
}

describe('partition proxy', () => {
  let net: PartitionNet;
  let echo: Awaited<ReturnType<typeof echoServer>>;
  const clients: Client[] = [];
  const children: ChildProcess[] = [];
  const open = async (proxy: Proxy) => {
    const c = await client(proxy.address.port, proxy.address.host);
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    net = new PartitionNet();
    echo = await echoServer();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    for (const child of children.splice(0)) child.kill('SIGKILL');
    await net.close();
    await new Promise<void>((r) => echo.server.close(() => r()));
  });

  const proxyFrom = (from: string, port = echo.port) =>
    net.proxy({
      to: 'echo',
      target: { host: '127.0.0.1', port },
      listen: { host: '127.0.0.1', port: 0 },
      from,
    });

  it('forwards both ways while open', async () => {
    const c = await open(await proxyFrom('a'));
    c.socket.write('ping');
    await waitFor('the echo', async () => c.received() === 'ping', 5_000, 10);
  });

  it('black-holed: keeps accepting connects and holding them open, carries nothing, then everything at the heal', async () => {
    const proxy = await proxyFrom('a');
    const before = await open(proxy);
    before.socket.write('one');
    await waitFor('the first echo', async () => before.received() === 'one', 5_000, 10);

    net.set('a', 'echo', BLACKHOLE);
    expect(net.mode('a', 'echo')).toEqual(BLACKHOLE);
    before.socket.write('two');
    // A new connection is accepted (no refusal) but does not reach the target yet.
    const during = await open(proxy);
    during.socket.write('three');
    await sleep(400);
    expect(before.received()).toBe('one');
    expect(during.received()).toBe('');
    expect(echo.accepted()).toBe(1);
    expect([...before.errors, ...during.errors]).toEqual([]);
    expect(before.closed() || during.closed()).toBe(false);
    // Even a client that gives up is not told anything: the close is held too.
    during.socket.end();
    await sleep(100);

    net.healAll();
    expect(net.mode('a', 'echo')).toEqual(OPEN);
    await waitFor('the held bytes to flow', async () => before.received() === 'onetwo', 5_000, 10);
    await waitFor('the held connection to reach the target', async () => echo.accepted() === 2, 5_000, 10);
    await waitFor(
      'the held bytes of the late connection',
      async () => during.received() === 'three',
      5_000,
      10,
    );
    before.socket.write('four');
    await waitFor('traffic after the heal', async () => before.received() === 'onetwofour', 5_000, 10);
    expect([...before.errors, ...during.errors]).toEqual([]);
  });

  it('black-holed with nothing behind it: the connect is still accepted, never refused or reset', async () => {
    const dead = await echoServer();
    const port = dead.port;
    await new Promise<void>((r) => dead.server.close(() => r()));
    const proxy = await proxyFrom('a', port);
    net.set('a', 'echo', BLACKHOLE);
    const c = await open(proxy);
    c.socket.write('x');
    await sleep(400);
    expect(c.errors).toEqual([]);
    expect(c.closed()).toBe(false);
    // Open again: the target refuses, and the proxy hangs up with a FIN, not a reset.
    net.healAll();
    await waitFor('the hang-up', async () => c.closed(), 5_000, 10);
    expect(c.errors).toEqual([]);
  });

  it('delayed: a reply through the delayed link arrives after one sent later on an open link', async () => {
    const slow = await open(await proxyFrom('slow'));
    const fast = await open(await proxyFrom('fast'));
    net.set('slow', 'echo', delayOf(300));
    const order: string[] = [];
    slow.socket.on('data', () => order.push('slow'));
    fast.socket.on('data', () => order.push('fast'));
    slow.socket.write('s');
    await sleep(20);
    fast.socket.write('f');
    await waitFor('both replies', async () => order.length === 2, 5_000, 10);
    expect(order).toEqual(['fast', 'slow']);
    expect(slow.received()).toBe('s');
  });

  it('delayed one way: only what the initiator sends waits', async () => {
    const oneWay = await open(await proxyFrom('oneway'));
    const both = await open(await proxyFrom('both'));
    net.set('oneway', 'echo', delayOf(300, true));
    net.set('both', 'echo', delayOf(300));
    const order: string[] = [];
    oneWay.socket.on('data', () => order.push('oneway'));
    both.socket.on('data', () => order.push('both'));
    both.socket.write('b');
    await sleep(50);
    oneWay.socket.write('o');
    await waitFor('both replies', async () => order.length === 2, 5_000, 10);
    // Sent later, but its answer is not delayed on the way back.
    expect(order).toEqual(['oneway', 'both']);
  });

  it('cutting one pair leaves the other pairs flowing', async () => {
    const a = await open(await proxyFrom('a'));
    const b = await open(await proxyFrom('b'));
    net.cut('a', ['echo']);
    a.socket.write('a1');
    b.socket.write('b1');
    await waitFor('b to flow', async () => b.received() === 'b1', 5_000, 10);
    await sleep(200);
    expect(a.received()).toBe('');
    expect(net.connections('a', 'echo')).toBe(1);
    net.healAll();
    await waitFor('a after the heal', async () => a.received() === 'a1', 5_000, 10);
  });

  itUnless(partitionSkipReason())(
    'identifies the process that opened a connection through /proc, and applies that link',
    async () => {
      const candidates: Array<{ name: string; pid: number | undefined }> = [
        { name: 'self', pid: process.pid },
      ];
      const proxy = await net.proxy({
        to: 'echo',
        target: { host: '127.0.0.1', port: echo.port },
        listen: { host: '127.0.0.1', port: 0 },
        from: (socket) => identifyPeer(socket, () => candidates),
      });
      // A child process that connects, writes a line and prints what comes back.
      const child = spawn(
        process.execPath,
        [
          '-e',
          `const s = require('net').connect(${proxy.address.port}, '127.0.0.1', () => s.write('child'));
         s.on('data', (d) => process.stdout.write(d.toString()));`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(child);
      candidates.push({ name: 'child', pid: child.pid });
      let childOut = '';
      child.stdout?.on('data', (d: Buffer) => (childOut += d.toString()));
      net.set('child', 'echo', BLACKHOLE);
      const self = await open(proxy);
      self.socket.write('self');
      await waitFor('the connection from this process', async () => self.received() === 'self', 5_000, 10);
      await waitFor('the child to connect', async () => net.connections('child', 'echo') === 1, 5_000, 10);
      expect(net.connections('self', 'echo')).toBe(1);
      await sleep(200);
      expect(childOut).toBe('');
      net.healAll();
      await waitFor('the child after the heal', async () => childOut === 'child', 5_000, 10);
    },
  );

  it('reads /proc/net/tcp addresses', () => {
    expect(procTcpAddress('127.0.0.1', 8080)).toBe('0100007F:1F90');
    expect(procTcpAddress('127.1.0.5', 5)).toBe('0500017F:0005');
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1062 1 0 100 0 0 10 0',
      '   1: 0100007F:C6D4 0500017F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1',
    ].join('\n');
    expect(
      findSocketInode(table, { host: '127.0.0.1', port: 0xc6d4 }, { host: '127.1.0.5', port: 8080 }),
    ).toBe(4242);
    expect(
      findSocketInode(table, { host: '127.0.0.1', port: 1 }, { host: '127.1.0.5', port: 8080 }),
    ).toBeUndefined();
  });
});

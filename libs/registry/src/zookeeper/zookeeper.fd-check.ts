import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/**
 * Linux only, best effort: file descriptors of this process that are TCP connections to one
 * of `ports` and lack close-on-exec.
 *
 * Why: the `zookeeper` package builds its C client without SOCK_CLOEXEC unless told to, so
 * every child process spawned afterwards inherits the client's socket. Once the client
 * reconnects, the inherited old socket keeps a stale epoll registration under the same fd
 * number; its events wake the new connection for nothing, and the binding, after ten empty
 * reads in a row, kills the session. Rebuilding the package with
 * `CPPFLAGS=-DSOCK_CLOEXEC_ENABLED=1` fixes it; this check only makes the problem visible.
 */
export function inheritableSockets(ports: ReadonlySet<number>): number[] {
  try {
    const inodes = new Set<string>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text: string;
      try {
        text = readFileSync(table, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
        const fields = line.trim().split(/\s+/);
        const remote = fields[2];
        const inode = fields[9];
        if (remote === undefined || inode === undefined) continue;
        const remotePort = parseInt(remote.split(':')[1] ?? '', 16);
        if (ports.has(remotePort)) inodes.add(inode);
      }
    }
    const leaking: number[] = [];
    for (const name of readdirSync('/proc/self/fd')) {
      let target: string;
      try {
        target = readlinkSync(`/proc/self/fd/${name}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (!inode || !inodes.has(inode)) continue;
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${name}`, 'utf8'))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) leaking.push(Number(name));
    }
    return leaking;
  } catch {
    return []; // Not Linux, or /proc unavailable: nothing to say.
  }
}

/** The ports named in a ZooKeeper connect string (host:port[,host:port...][/chroot]). */
export function connectPorts(connect: string): Set<number> {
  const [hosts = ''] = connect.split('/');
  const ports = new Set<number>();
  for (const host of hosts.split(',')) {
    const port = Number(host.slice(host.lastIndexOf(':') + 1));
    ports.add(Number.isInteger(port) && port > 0 ? port : 2181);
  }
  return ports;
}

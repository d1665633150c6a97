import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

let probe: Promise<boolean> | undefined;
let known: boolean | undefined;

/** No DOCKER_HOST and no socket: certainly no Docker engine (the usual case here). */
const noDockerSocket = () => !process.env.DOCKER_HOST && !existsSync('/var/run/docker.sock');

/**
 * True when a Docker engine answers, so testcontainers can be used. Cheap when there is no
 * socket at all (the usual case here); otherwise asks testcontainers once per process.
 */
export function dockerAvailable(): Promise<boolean> {
  probe ??=
    known !== undefined
      ? Promise.resolve(known)
      : (async () => {
          if (noDockerSocket()) return false;
          try {
            const { getContainerRuntimeClient } = await import('testcontainers');
            await getContainerRuntimeClient();
            return true;
          } catch {
            return false;
          }
        })();
  return probe;
}

/**
 * dockerAvailable(), answered synchronously, for deciding at collection time whether a test can
 * run (tests are declared synchronously): where a socket exists, a child process asks
 * testcontainers. Once answered, dockerAvailable() gives the same answer, so the server a test
 * then starts is the kind it was declared for.
 */
export function dockerAvailableSync(): boolean {
  if (known !== undefined) return known;
  if (noDockerSocket()) {
    known = false;
  } else {
    const child = spawnSync(
      process.execPath,
      [
        '-e',
        "require('testcontainers').getContainerRuntimeClient().then(() => process.exit(0), () => process.exit(1))",
      ],
      { cwd: __dirname, stdio: 'ignore', timeout: 60_000 },
    );
    known = child.status === 0;
  }
  return known;
}

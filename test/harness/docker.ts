import { existsSync } from 'node:fs';

let probe: Promise<boolean> | undefined;

/**
 * True when a Docker engine answers, so testcontainers can be used. Cheap when there is no
 * socket at all (the usual case here); otherwise asks testcontainers once per process.
 */
export function dockerAvailable(): Promise<boolean> {
  probe ??= (async () => {
    const host = process.env.DOCKER_HOST;
    if (!host && !existsSync('/var/run/docker.sock')) return false;
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

import { connect } from 'node:net';
import { Injectable } from '@nestjs/common';
import type { ProbeOutcome } from './provable-death';

/** One TCP connect to a node's gRPC port (behind an abstract class, so tests can stand in). */
export abstract class PortProber {
  abstract probe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome>;
}

@Injectable()
export class TcpPortProber extends PortProber {
  probe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
    return new Promise((resolve) => {
      const socket = connect({ host, port });
      let done = false;
      const finish = (outcome: ProbeOutcome) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(outcome);
      };
      // Only ECONNREFUSED is a RST from a host that is up; EHOSTUNREACH, ENETUNREACH, a reset
      // after the handshake and the rest prove nothing.
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      socket.once('connect', () => finish('accepted'));
      socket.once('error', (err: NodeJS.ErrnoException) =>
        finish(err.code === 'ECONNREFUSED' ? 'refused' : 'error'),
      );
    });
  }
}

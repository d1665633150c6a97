import { readFileSync } from 'node:fs';
import {
  livenessTimings,
  MAX_WATCHDOG_POLL_MS,
  MIN_WATCHDOG_POLL_MS,
  parseUptimeCentis,
  suspendedKillDelayMs,
} from '../src/domain/liveness';

describe('livenessTimings', () => {
  it('at the defaults (10 s session, 2 s heartbeat): margin 4 s, deadline 6 s', () => {
    expect(livenessTimings(10_000, 2_000)).toEqual({
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 2_000,
      marginMs: 4_000,
      deadlineMs: 6_000,
      touchIntervalMs: 2_000,
      pollMs: 500,
    });
  });

  it('takes two heartbeats as the margin when that is under 40 % of the session timeout', () => {
    expect(livenessTimings(30_000, 2_000)).toMatchObject({ marginMs: 4_000, deadlineMs: 26_000 });
    expect(livenessTimings(3_000, 500)).toMatchObject({
      marginMs: 1_000,
      deadlineMs: 2_000,
      touchIntervalMs: 500,
      pollMs: 250,
    });
  });

  it('caps the margin at 40 % of the session timeout', () => {
    expect(livenessTimings(5_000, 2_000)).toMatchObject({ marginMs: 2_000, deadlineMs: 3_000 });
    expect(livenessTimings(10_000, 9_000)).toMatchObject({ marginMs: 4_000, deadlineMs: 6_000 });
  });

  it('touches at least three times per deadline, however long the heartbeat', () => {
    // A 9 s heartbeat against a 6 s deadline would kill the tasks of a healthy worker.
    expect(livenessTimings(10_000, 9_000).touchIntervalMs).toBe(2_000);
    expect(livenessTimings(5_000, 2_000).touchIntervalMs).toBe(1_000);
  });

  it('bounds the watchdog poll interval', () => {
    expect(livenessTimings(600_000, 60_000).pollMs).toBe(MAX_WATCHDOG_POLL_MS);
    expect(livenessTimings(400, 50).pollMs).toBe(MIN_WATCHDOG_POLL_MS);
  });

  it('kills before the session can expire for every configuration the loader accepts', () => {
    for (const session of [400, 1_000, 3_000, 5_000, 10_000, 60_000, 600_000]) {
      for (const heartbeat of [50, 200, 500, 1_000, 2_000, 5_000, 30_000]) {
        if (heartbeat >= session) continue;
        const t = livenessTimings(session, heartbeat);
        expect(t.marginMs).toBeGreaterThan(0);
        expect(t.marginMs).toBeLessThanOrEqual(0.4 * session);
        expect(t.deadlineMs).toBe(session - t.marginMs);
        // Killed at the latest one poll after the deadline: still before the session timeout.
        expect(t.deadlineMs + t.pollMs).toBeLessThan(session);
        // A healthy worker touches well within the deadline.
        expect(t.touchIntervalMs).toBeLessThanOrEqual(heartbeat);
        expect(t.touchIntervalMs * 3).toBeLessThanOrEqual(t.deadlineMs);
      }
    }
  });

  it('refuses nonsense', () => {
    expect(() => livenessTimings(0, 100)).toThrow(RangeError);
    expect(() => livenessTimings(1_000, Number.NaN)).toThrow(RangeError);
  });
});

describe('suspendedKillDelayMs', () => {
  it('counts the deadline from the last proof of life, not from the SUSPENDED event', () => {
    expect(suspendedKillDelayMs(1_000, 2_500, 6_000)).toBe(4_500);
    expect(suspendedKillDelayMs(1_000, 7_000, 6_000)).toBe(0);
    expect(suspendedKillDelayMs(1_000, 20_000, 6_000)).toBe(0);
  });
});

describe('parseUptimeCentis', () => {
  it('reads /proc/uptime as centiseconds', () => {
    expect(parseUptimeCentis('12345.67 54321.09\n')).toBe(1_234_567);
    expect(parseUptimeCentis('1.05 0.00\n')).toBe(105);
    expect(parseUptimeCentis('12345 1\n')).toBeNull();
    expect(parseUptimeCentis('')).toBeNull();
  });

  it('understands this host', () => {
    expect(parseUptimeCentis(readFileSync('/proc/uptime', 'utf8'))).toBeGreaterThan(0);
  });
});

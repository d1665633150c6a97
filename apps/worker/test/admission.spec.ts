import { Logger } from '@nestjs/common';
import { ManualClock } from '@porpoise/test-harness/manual-clock';
import { isSuperseded, SessionConfirmation } from '../src/domain/admission';
import { AdmissionService } from '../src/services/admission.service';
import { workerConfig } from './support/worker-config';

beforeAll(() => Logger.overrideLogger(false));

describe('isSuperseded', () => {
  it('refuses the epoch of a TakeOver answered UNKNOWN and older ones, not newer ones', () => {
    expect(isSuperseded(4, 5)).toBe(true);
    expect(isSuperseded(5, 5)).toBe(true);
    expect(isSuperseded(6, 5)).toBe(false);
    expect(isSuperseded(0, 0)).toBe(true);
  });

  it('refuses nothing without such a TakeOver', () => {
    expect(isSuperseded(0, undefined)).toBe(false);
    expect(isSuperseded(7, undefined)).toBe(false);
  });
});

describe('SessionConfirmation', () => {
  const DEADLINE = 2_000;

  it('stays confirmed while the loop is seen within the deadline', () => {
    const c = new SessionConfirmation(DEADLINE, 1_000);
    expect(c.observe(2_500)).toBeNull();
    expect(c.confirmedAt(4_500)).toBe(true);
    expect(c.observe(6_500)).toBeNull();
    expect(c.unconfirmed).toBe(false);
  });

  it('a gap over the deadline, seen first by a check (a queued Dispatch on waking), unconfirms at once', () => {
    const c = new SessionConfirmation(DEADLINE, 1_000);
    expect(c.confirmedAt(5_060)).toBe(false);
    expect(c.unconfirmed).toBe(true);
    // The liveness tick right after does not see (nor report) the same stall again.
    expect(c.observe(5_070)).toBeNull();
    // Still unconfirmed, however long the loop now runs normally.
    expect(c.confirmedAt(5_500)).toBe(false);
    expect(c.confirmedAt(6_000)).toBe(false);
  });

  it('a gap over the deadline seen by a tick reports its length', () => {
    const c = new SessionConfirmation(DEADLINE, 1_000);
    expect(c.observe(5_060)).toBe(4_060);
    expect(c.confirmedAt(5_061)).toBe(false);
  });

  it('is confirmed again only by proof obtained after the stall was noticed', () => {
    const c = new SessionConfirmation(DEADLINE, 1_000);
    expect(c.confirmedAt(5_000)).toBe(false);
    // A heartbeat sent before the stall (its answer waited in the socket) proves nothing.
    expect(c.confirm(900)).toBe(false);
    expect(c.confirm(4_999)).toBe(false);
    expect(c.confirmedAt(5_100)).toBe(false);
    // One sent after it (or CONNECTED / RECONNECTED now) does.
    expect(c.confirm(5_050)).toBe(true);
    expect(c.confirmedAt(5_200)).toBe(true);
    expect(c.confirm(5_300)).toBe(false);
  });

  it('a second stall before confirmation keeps the first moment (proof must postdate it)', () => {
    const c = new SessionConfirmation(DEADLINE, 0);
    expect(c.observe(3_000)).toBe(3_000);
    expect(c.observe(6_000)).toBe(3_000);
    expect(c.confirm(3_500)).toBe(true);
  });

  it('restart forgets the time before the worker started', () => {
    const c = new SessionConfirmation(DEADLINE, 0);
    c.restart(10_000);
    expect(c.confirmedAt(10_500)).toBe(true);
  });
});

describe('AdmissionService', () => {
  // Session timeout 3 s, heartbeat 0.5 s: deadline 2 s.
  const config = workerConfig({ REGISTRY_SESSION_TIMEOUT_MS: '3000', HEARTBEAT_INTERVAL_MS: '500' });
  let t0: number;
  let admission: AdmissionService;

  beforeEach(() => {
    admission = new AdmissionService(config, new ManualClock());
    t0 = performance.now();
    admission.loopStarted(t0);
    admission.markRegistered();
  });

  it('refuses "not registered yet" until its registry key exists, while already serving', () => {
    const fresh = new AdmissionService(config, new ManualClock());
    fresh.loopStarted(t0);
    expect(fresh.refusal(t0 + 100)).toBe('not registered yet');
    // The first heartbeat (the registration itself) must advertise the worker as serving.
    expect(fresh.serving).toBe(true);
    fresh.markRegistered();
    expect(fresh.refusal(t0 + 200)).toBeNull();
    fresh.startDraining();
    expect(fresh.refusal(t0 + 300)).toBe('draining');
  });

  it("takes this incarnation's start time from the clock", () => {
    expect(new AdmissionService(config, new ManualClock(1_700_000_000_000)).startTimeMs).toBe(
      1_700_000_000_000,
    );
  });

  it('takes tasks while connected and the loop runs', () => {
    expect(admission.refusal(t0 + 400)).toBeNull();
    expect(admission.refusal(t0 + 800)).toBeNull();
  });

  it('refuses "session unconfirmed" after a stall, until a registry operation sent after it succeeds', async () => {
    let stalls = 0;
    admission.onStall(() => stalls++);
    expect(admission.refusal(t0 + 4_000)).toBe('session unconfirmed');
    expect(admission.serving).toBe(false);
    await Promise.resolve();
    expect(stalls).toBe(1);
    expect(admission.confirmSession(t0 + 100)).toBe(false);
    expect(admission.refusal(t0 + 4_100)).toBe('session unconfirmed');
    expect(admission.confirmSession(t0 + 4_050)).toBe(true);
    expect(admission.refusal(t0 + 4_200)).toBeNull();
    expect(stalls).toBe(1);
  });

  it('is not confirmed by proof while the session is suspended or lost', () => {
    expect(admission.refusal(t0 + 4_000)).toBe('session unconfirmed');
    admission.setSession('suspended');
    expect(admission.confirmSession(t0 + 4_100)).toBe(false);
    expect(admission.refusal(t0 + 4_200)).toBe('session suspended');
    admission.setSession('lost');
    expect(admission.refusal(t0 + 4_300)).toBe('session lost');
    admission.setSession('connected');
    expect(admission.refusal(t0 + 4_400)).toBe('session unconfirmed');
    expect(admission.confirmSession(t0 + 4_400)).toBe(true);
    expect(admission.refusal(t0 + 4_500)).toBeNull();
  });

  it('draining wins over the session, and a stall is still noticed while draining', () => {
    admission.startDraining();
    expect(admission.refusal(t0 + 4_000)).toBe('draining');
    expect(admission.sessionRefusal(t0 + 4_100)).toBe('session unconfirmed');
  });

  describe('registrations (a Dispatch names the one it was meant for)', () => {
    const to = (registration: number, startTimeMs = admission.startTimeMs) => ({ startTimeMs, registration });

    it('takes a Dispatch addressed to this registration, or to none (a master from before)', () => {
      expect(admission.registration).toBe(1);
      expect(admission.refusal(t0 + 100, to(1))).toBeNull();
      expect(admission.refusal(t0 + 100, { startTimeMs: 0, registration: 0 })).toBeNull();
    });

    it('refuses one addressed to another process on this address', () => {
      expect(admission.refusal(t0 + 100, to(1, admission.startTimeMs - 1))).toMatch(
        /^stale registration: .*process/,
      );
    });

    it('begins a new registration when the session is lost, and refuses Dispatches meant for the old one', () => {
      admission.setSession('lost');
      admission.setSession('lost');
      expect(admission.registration).toBe(2);
      admission.setSession('connected');
      admission.confirmSession(t0 + 200);
      expect(admission.refusal(t0 + 300, to(1))).toBe(
        'stale registration: addressed to registration 1, this worker is at 2',
      );
      expect(admission.refusal(t0 + 300, to(2))).toBeNull();
    });

    it('begins a new registration after a stall past the deadline (its session may have expired meanwhile)', () => {
      expect(admission.refusal(t0 + 4_000, to(1))).toBe('session unconfirmed');
      expect(admission.registration).toBe(2);
      admission.confirmSession(t0 + 4_000);
      expect(admission.refusal(t0 + 4_100, to(1))).toMatch(/^stale registration/);
      expect(admission.refusal(t0 + 4_100, to(2))).toBeNull();
    });
  });
});

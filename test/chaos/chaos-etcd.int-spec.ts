/**
 * The chaos suite on etcd: three masters, three workers, one api-server;
 * a shorter stream of runs while masters and workers are SIGKILLed (sometimes stopped with SIGTERM
 * or frozen with SIGSTOP past the session timeout) at random and started again; then every master
 * killed and one started again. Every invariant of DESIGN.md section 7 is checked from the
 * database and the witness file. Then an every-second RUN_ALL schedule while two masters are
 * SIGKILLed and one restarted: every second runs exactly once (schedule-checker.ts).
 * Besides the random seed, a short stream per regression seed (REGRESSION_SEEDS); every stream
 * must hit running work (a takeover, a re-run after a worker fault, a frozen master fenced).
 * Replay: CHAOS_SEED=<printed seed>.
 */
import { describeChaos } from './scenario';

describeChaos({
  registry: 'etcd',
  stream: {
    runs: 16,
    runGapMs: [400, 1000],
    faultGapMs: [1500, 3000],
    downMs: [300, 5000],
    termChance: 0.15,
    freezeChance: 0.15,
  },
  allMasters: { runs: 6 },
  settleMs: 90_000,
  schedule: { durationMs: 35_000 },
});

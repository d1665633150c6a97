/**
 * Schedules end to end (DESIGN.md section 10) on real processes from the built code (npm run
 * build): an API server, two masters and a worker on a real Postgres and the JDBC registry, with
 * SCHEDULE_MISFIRE_THRESHOLD_MS=2000. Three every-second schedules, one per misfire policy, fire
 * on time; then every master is SIGKILLed for several fire times and one master is started again.
 * Read from the schedule_fire ledger (whose decided_at says which times were misfires):
 * RUN_ONCE runs the latest missed time once and records the others MISFIRE_SKIPPED, SKIP runs
 * none of them, RUN_ALL runs each; every fire time between the first and the last is handled
 * exactly once, and each run's task saw its own `${porpoise.scheduleTime}` and the schedule's
 * params.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, startPostgres, stopProcess, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { Client } from 'pg';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'schedules-e2e-secret-0123456789';
const THRESHOLD_MS = 2000;
const POLICIES = ['RUN_ONCE', 'SKIP', 'RUN_ALL'] as const;
type Policy = (typeof POLICIES)[number];

interface LedgerRow {
  fireMs: number;
  decidedMs: number;
  outcome: 'FIRED' | 'MISFIRE_SKIPPED';
  instanceId: number | null;
}

describe('schedules: misfire policies with every master down (api-server, masters, worker processes; Postgres; JDBC registry)', () => {
  let pg: TestServer;
  let db: Client;
  let scratch = '';
  const nodes: NodeProcess[] = [];
  let env: Record<string, string> = {};
  let api = '';

  const call = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api}/api/v1${path}`, {
      method,
      headers: authHeaders(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const registered = (kind: 'masters' | 'workers') => async (port: number) => {
    const res = await call<Record<typeof kind, Array<{ port: number }>>>('GET', '/cluster/nodes');
    return res.body[kind].some((n) => n.port === port);
  };
  const startMaster = async () => {
    const node = await startNode('master', env, registered('masters'));
    nodes.push(node);
    return node;
  };
  const ledger = async (scheduleId: number): Promise<LedgerRow[]> =>
    (
      await db.query<{
        fire_ms: string;
        decided_ms: string;
        outcome: LedgerRow['outcome'];
        wid: string | null;
      }>(
        `SELECT floor(extract(epoch FROM fire_time) * 1000)::bigint AS fire_ms,
                floor(extract(epoch FROM decided_at) * 1000)::bigint AS decided_ms,
                outcome, workflow_instance_id AS wid
         FROM schedule_fire WHERE schedule_id = $1 ORDER BY fire_time`,
        [scheduleId],
      )
    ).rows.map((r) => ({
      fireMs: Number(r.fire_ms),
      decidedMs: Number(r.decided_ms),
      outcome: r.outcome,
      instanceId: r.wid === null ? null : Number(r.wid),
    }));
  const dbNowMs = async () =>
    Number(
      (await db.query<{ ms: string }>('SELECT floor(extract(epoch FROM now()) * 1000)::bigint AS ms')).rows[0]
        ?.ms,
    );

  beforeAll(async () => {
    pg = await startPostgres();
    scratch = mkdtempSync(join(tmpdir(), 'porpoise-schedules-e2e-'));
    env = {
      DATABASE_URL: pg.endpoint,
      REGISTRY_TYPE: 'jdbc',
      CLUSTER_SECRET: SECRET,
      REGISTRY_SESSION_TIMEOUT_MS: '3000',
      HEARTBEAT_INTERVAL_MS: '500',
      SCHEDULE_MISFIRE_THRESHOLD_MS: String(THRESHOLD_MS),
    };
    const apiNode = await startNode('api-server', env, async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
      return res?.status === 200;
    });
    nodes.push(apiNode);
    api = `http://127.0.0.1:${apiNode.port}`;
    db = new Client({ connectionString: pg.endpoint });
    await db.connect();
    nodes.push(await startNode('worker', { ...env, WORKER_CAPACITY: '64' }, registered('workers')));
    await Promise.all([startMaster(), startMaster()]);
  }, 180_000);

  afterAll(async () => {
    await stopNodes(nodes);
    await db?.end();
    await pg?.dispose();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('RUN_ONCE, SKIP and RUN_ALL each handle the fire times missed while no master ran, each time once', async () => {
    const witness = join(scratch, 'witness.txt');
    const schedules = new Map<Policy, number>();
    for (const policy of POLICIES) {
      const wf = await call<{ code: string }>('POST', '/workflows', {
        name: `every-second-${policy}`,
        tasks: [
          {
            name: 'echo',
            type: 'SHELL',
            command: `echo "\${porpoise.scheduleTime} $PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_PARAM_POLICY" >> ${witness}`,
          },
        ],
      });
      expect(wf.status).toBe(201);
      const s = await call<{ id: number; misfirePolicy: string }>('POST', '/schedules', {
        workflowCode: wf.body.code,
        cron: '* * * * * *',
        params: { POLICY: policy },
        misfirePolicy: policy,
      });
      expect(s.status).toBe(201);
      expect(s.body.misfirePolicy).toBe(policy);
      schedules.set(policy, s.body.id);
    }
    const ids = [...schedules.values()];

    // On time first.
    await waitFor(
      'every schedule to fire twice',
      async () => {
        for (const id of ids) {
          if ((await ledger(id)).filter((r) => r.outcome === 'FIRED').length < 2) return false;
        }
        return true;
      },
      60_000,
      200,
    );

    // Every master down for several fire times.
    const masters = nodes.filter((n) => n.role === 'master' && n.child.exitCode === null);
    await Promise.all(masters.map((m) => stopProcess(m.child, 'SIGKILL')));
    const killedAt = await dbNowMs();
    await sleep(6000);
    const restarted = await startMaster();
    expect(restarted.child.exitCode).toBeNull();

    // Fires after the restart, on time again (two whole seconds past the first fire after it).
    await waitFor(
      'every schedule to fire on time again after the restart',
      async () => {
        for (const id of ids) {
          const after = (await ledger(id)).filter((r) => r.decidedMs > killedAt);
          const first = after[0];
          if (!first || !after.some((r) => r.fireMs >= first.decidedMs + 2000)) return false;
        }
        return true;
      },
      90_000,
      200,
    );
    for (const id of ids) {
      expect((await call('PATCH', `/schedules/${id}`, { enabled: false })).status).toBe(200);
    }
    // The runs end (those the killed masters held, by failover).
    const instances = await waitFor(
      'every scheduled run to end',
      async () => {
        const { rows } = await db.query<{
          id: string;
          schedule_id: string;
          schedule_ms: string;
          state: string;
          command_type: string;
        }>(
          `SELECT id, schedule_id, floor(extract(epoch FROM schedule_time) * 1000)::bigint AS schedule_ms, state,
                  command_type
           FROM workflow_instance WHERE schedule_id = ANY($1::bigint[])`,
          [ids],
        );
        return rows.every((r) => ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'].includes(r.state))
          ? rows
          : undefined;
      },
      120_000,
      500,
    );
    const witnessed = new Set(readFileSync(witness, 'utf8').trim().split('\n'));

    for (const [policy, id] of schedules) {
      const rows = await ledger(id);
      const late = (r: LedgerRow) => r.fireMs < r.decidedMs - THRESHOLD_MS;
      const shown = rows
        .map(
          (r) => `${new Date(r.fireMs).toISOString().slice(17, 23)}:${r.outcome}${late(r) ? '(late)' : ''}`,
        )
        .join(' ');
      // Every second from the first fire time to the last, each once.
      rows.forEach((r, i) => i > 0 && expect(r.fireMs - (rows[i - 1]?.fireMs ?? 0)).toBe(1000));
      // The outage: several fire times found late.
      expect({ policy, late: rows.filter(late).length >= 3, shown }).toMatchObject({ late: true });
      for (const r of rows) {
        const expected =
          policy === 'RUN_ALL' || !late(r)
            ? 'FIRED'
            : policy === 'SKIP'
              ? 'MISFIRE_SKIPPED'
              : // RUN_ONCE: only the latest late time of the fire that handled it runs.
                rows.some((o) => o.decidedMs === r.decidedMs && late(o) && o.fireMs > r.fireMs)
                ? 'MISFIRE_SKIPPED'
                : 'FIRED';
        expect({ policy, fire: new Date(r.fireMs).toISOString(), outcome: r.outcome, shown }).toEqual({
          policy,
          fire: new Date(r.fireMs).toISOString(),
          outcome: expected,
          shown,
        });
      }
      if (policy === 'RUN_ONCE') {
        expect(rows.filter((r) => late(r) && r.outcome === 'FIRED').length).toBeGreaterThanOrEqual(1);
      }
      // One run per FIRED time, none else; each ran and saw its schedule time and the schedule's params.
      const fired = rows.filter((r) => r.outcome === 'FIRED');
      const runs = instances.filter((i) => Number(i.schedule_id) === id);
      expect(runs.map((i) => Number(i.schedule_ms)).sort((a, b) => a - b)).toEqual(
        fired.map((r) => r.fireMs),
      );
      for (const run of runs) {
        // SCHEDULER, or the failover command of a run a killed master held.
        expect({
          state: run.state,
          scheduler: ['SCHEDULER', 'RECOVER_TOLERANCE_FAULT_PROCESS'].includes(run.command_type),
        }).toEqual({
          state: 'SUCCESS',
          scheduler: true,
        });
        expect(witnessed).toContain(`${new Date(Number(run.schedule_ms)).toISOString()} ${run.id} ${policy}`);
      }
    }
  }, 420_000);
});

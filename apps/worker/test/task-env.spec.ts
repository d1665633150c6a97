import { buildTaskEnv } from '../src/domain/task-env';
import { TASK_DEFAULT_PATH } from '../src/worker.constants';

const spec = {
  workflowInstanceId: 42,
  taskInstanceId: 7,
  taskName: 'load',
  attempt: 2,
  params: { DATE: '2024-01-01', lower_case: 'a b $HOME "q"' },
};
const who = { user: 'nobody', home: undefined, cwd: '/tmp/porpoise-tasks/w/7-2-abc' };

describe('buildTaskEnv', () => {
  it('builds the environment from nothing: the harmless inherited variables, the user and the documented ones', () => {
    const env = buildTaskEnv(
      { PATH: '/usr/bin', HOME: '/root', USER: 'root', LANG: 'C.UTF-8', LC_TIME: 'C', TZ: 'UTC' },
      who,
      spec,
    );
    expect(env).toEqual({
      PATH: '/usr/bin',
      LANG: 'C.UTF-8',
      LC_TIME: 'C',
      TZ: 'UTC',
      // nobody has no home: the task's own directory.
      HOME: who.cwd,
      USER: 'nobody',
      LOGNAME: 'nobody',
      PWD: who.cwd,
      PORPOISE_WORKFLOW_INSTANCE_ID: '42',
      PORPOISE_TASK_INSTANCE_ID: '7',
      PORPOISE_TASK_NAME: 'load',
      PORPOISE_ATTEMPT: '2',
      PORPOISE_PARAM_DATE: '2024-01-01',
      PORPOISE_PARAM_lower_case: 'a b $HOME "q"',
      PORPOISE_PARAM_LOWER_CASE: 'a b $HOME "q"',
    });
  });

  it("gives the user's own home when it has one, and a PATH when the worker has none", () => {
    const env = buildTaskEnv({}, { ...who, user: 'etl', home: '/home/etl' }, spec);
    expect([env.HOME, env.USER, env.PATH]).toEqual(['/home/etl', 'etl', TASK_DEFAULT_PATH]);
  });

  it('lets an explicit upper-case param win over the upper-cased spelling of another', () => {
    const env = buildTaskEnv({}, who, { ...spec, params: { day: 'lower', DAY: 'upper' } });
    expect(env.PORPOISE_PARAM_day).toBe('lower');
    expect(env.PORPOISE_PARAM_DAY).toBe('upper');
  });

  it("passes on the worker's environment but none of Porpoise's variables, its secrets above all", () => {
    const env = buildTaskEnv(
      {
        PATH: '/bin',
        CLUSTER_SECRET: 'secret-secret-secret',
        CLUSTER_SECRET_FILE: '/run/secrets/cluster',
        DATABASE_URL: 'postgres://u:p@h/db',
        DATASOURCE_KEY: 'ab'.repeat(32),
        ADMIN_TOKEN: 'admin-token-admin-token-admin-token',
        PGPASSWORD: 'p',
        AWS_SECRET_ACCESS_KEY: 'k',
        WORKER_ENV_MARKER: 'inherited?',
        PORPOISE_PARAM_STRAY: 'from the parent',
        PORPOISE_TASK_NAME: 'parent task',
        LC_ALL: 'C',
        UNSET: undefined,
      },
      who,
      spec,
    );
    expect(Object.keys(env).sort()).toEqual(
      [
        'AWS_SECRET_ACCESS_KEY',
        'HOME',
        'LC_ALL',
        'LOGNAME',
        'PATH',
        'PGPASSWORD',
        'WORKER_ENV_MARKER',
        'PORPOISE_ATTEMPT',
        'PORPOISE_PARAM_DATE',
        'PORPOISE_PARAM_LOWER_CASE',
        'PORPOISE_PARAM_lower_case',
        'PORPOISE_TASK_INSTANCE_ID',
        'PORPOISE_TASK_NAME',
        'PORPOISE_WORKFLOW_INSTANCE_ID',
        'PWD',
        'USER',
      ].sort(),
    );
    expect(env.PORPOISE_TASK_NAME).toBe('load');
  });

  it('does not modify the environment it was given', () => {
    const base = { PATH: '/bin', CLUSTER_SECRET: 's' };
    buildTaskEnv(base, who, spec);
    expect(base).toEqual({ PATH: '/bin', CLUSTER_SECRET: 's' });
  });
});

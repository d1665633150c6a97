import { buildTaskEnv } from '../src/domain/task-env';

const spec = {
  workflowInstanceId: 42,
  taskInstanceId: 7,
  taskName: 'load',
  attempt: 2,
  params: { DATE: '2024-01-01', lower_case: 'a b $HOME "q"' },
};

describe('buildTaskEnv', () => {
  it("adds exactly the documented variables to the worker's environment", () => {
    const env = buildTaskEnv({ PATH: '/usr/bin', HOME: '/root', LANG: 'C' }, spec);
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/root',
      LANG: 'C',
      PORPOISE_WORKFLOW_INSTANCE_ID: '42',
      PORPOISE_TASK_INSTANCE_ID: '7',
      PORPOISE_TASK_NAME: 'load',
      PORPOISE_ATTEMPT: '2',
      PORPOISE_PARAM_DATE: '2024-01-01',
      PORPOISE_PARAM_lower_case: 'a b $HOME "q"',
      PORPOISE_PARAM_LOWER_CASE: 'a b $HOME "q"',
    });
  });

  it('lets an explicit upper-case param win over the upper-cased spelling of another', () => {
    const env = buildTaskEnv({}, { ...spec, params: { day: 'lower', DAY: 'upper' } });
    expect(env.PORPOISE_PARAM_day).toBe('lower');
    expect(env.PORPOISE_PARAM_DAY).toBe('upper');
  });

  it('strips the cluster secret, the database URL and inherited PORPOISE_ variables', () => {
    const env = buildTaskEnv(
      {
        PATH: '/bin',
        CLUSTER_SECRET: 'secret-secret-secret',
        DATABASE_URL: 'postgres://u:p@h/db',
        PORPOISE_PARAM_STRAY: 'from the parent',
        PORPOISE_TASK_NAME: 'parent task',
        UNSET: undefined,
      },
      spec,
    );
    expect(env.CLUSTER_SECRET).toBeUndefined();
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.PORPOISE_PARAM_STRAY).toBeUndefined();
    expect('UNSET' in env).toBe(false);
    expect(env.PORPOISE_TASK_NAME).toBe('load');
    expect(
      Object.keys(env)
        .filter((k) => k.startsWith('PORPOISE_'))
        .sort(),
    ).toEqual([
      'PORPOISE_ATTEMPT',
      'PORPOISE_PARAM_DATE',
      'PORPOISE_PARAM_LOWER_CASE',
      'PORPOISE_PARAM_lower_case',
      'PORPOISE_TASK_INSTANCE_ID',
      'PORPOISE_TASK_NAME',
      'PORPOISE_WORKFLOW_INSTANCE_ID',
    ]);
  });

  it('does not modify the environment it was given', () => {
    const base = { PATH: '/bin', CLUSTER_SECRET: 's' };
    buildTaskEnv(base, spec);
    expect(base).toEqual({ PATH: '/bin', CLUSTER_SECRET: 's' });
  });
});

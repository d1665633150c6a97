import { ConfigError } from '@porpoise/common';
import { decideTaskUser, decideTenants, parsePasswdLine, type PasswdEntry } from '../src/domain/task-user';

const users: Record<string, PasswdEntry> = {
  root: { name: 'root', uid: 0, gid: 0, home: '/root' },
  nobody: { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' },
  etl: { name: 'etl', uid: 1001, gid: 1001, home: '/home/etl' },
  dev: { name: 'dev', uid: 1000, gid: 1000, home: '/home/dev' },
};
const lookup = (key: string) => Object.values(users).find((u) => u.name === key || String(u.uid) === key);
const unset = { name: 'nobody', explicit: false };

describe('parsePasswdLine', () => {
  it('reads name, uid, gid and home', () => {
    expect(parsePasswdLine('nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n')).toEqual({
      name: 'nobody',
      uid: 65534,
      gid: 65534,
      home: '/nonexistent',
    });
    expect(parsePasswdLine('etl:x:1001:100:ETL, batch:/home/etl:')).toMatchObject({ uid: 1001, gid: 100 });
  });

  it.each([
    '',
    'nobody',
    'a:x:1:2:g:/h',
    'a:x:one:2:g:/h:/bin/sh',
    ':x:1:2:g:/h:/bin/sh',
    'a:x:1:2:g:/h:/bin/sh:extra',
  ])('refuses %j', (line) => expect(parsePasswdLine(line)).toBeUndefined());
});

describe('decideTaskUser', () => {
  it('runs tasks as nobody by default when the worker is root, switching user, without a warning', () => {
    const d = decideTaskUser({ workerUid: 0, workerGid: 0, setting: unset, lookup });
    expect(d).toEqual({
      identity: { name: 'nobody', uid: 65534, gid: 65534, home: undefined, switchUser: true },
      warning: undefined,
    });
  });

  it('runs tasks as TASK_USER, with its home', () => {
    const d = decideTaskUser({
      workerUid: 0,
      workerGid: 0,
      setting: { name: 'etl', explicit: true },
      lookup,
    });
    expect(d.identity).toEqual({ name: 'etl', uid: 1001, gid: 1001, home: '/home/etl', switchUser: true });
  });

  it('allows root only when set explicitly, with a warning', () => {
    const d = decideTaskUser({
      workerUid: 0,
      workerGid: 0,
      setting: { name: 'root', explicit: true },
      lookup,
    });
    expect(d.identity.uid).toBe(0);
    expect(d.warning).toMatch(/^TASK_USER=root: tasks run as root and can read every file and secret/);
  });

  it('stops the start when the user does not exist', () => {
    const decide = () =>
      decideTaskUser({ workerUid: 0, workerGid: 0, setting: { name: 'ghost', explicit: true }, lookup });
    expect(decide).toThrow(ConfigError);
    expect(decide).toThrow(/^TASK_USER: no such user: "ghost"/);
    // The default too: a system without nobody must say so, not run tasks as root.
    expect(() =>
      decideTaskUser({ workerUid: 0, workerGid: 0, setting: unset, lookup: () => undefined }),
    ).toThrow(/^TASK_USER: no such user: "nobody"/);
  });

  it("runs tasks as the worker's own user when it is not root, and warns once", () => {
    const d = decideTaskUser({ workerUid: 1000, workerGid: 1000, setting: unset, lookup });
    expect(d.identity).toEqual({ name: 'dev', uid: 1000, gid: 1000, home: '/home/dev', switchUser: false });
    expect(d.warning).toMatch(
      /^the worker runs as dev \(uid 1000\), not root: tasks run as that same user and can read/,
    );
    // A uid the user database does not know (a container's): named by number.
    const anonymous = decideTaskUser({ workerUid: 4242, workerGid: 7, setting: unset, lookup });
    expect(anonymous.identity).toEqual({
      name: '4242',
      uid: 4242,
      gid: 7,
      home: undefined,
      switchUser: false,
    });
  });

  it('refuses an explicit TASK_USER a non-root worker cannot switch to, and accepts its own', () => {
    expect(() =>
      decideTaskUser({ workerUid: 1000, workerGid: 1000, setting: { name: 'etl', explicit: true }, lookup }),
    ).toThrow(/^TASK_USER: the worker runs as dev \(uid 1000\), not root, so it cannot run tasks as "etl"/);
    const own = decideTaskUser({
      workerUid: 1000,
      workerGid: 1000,
      setting: { name: 'dev', explicit: true },
      lookup,
    });
    expect(own.identity.switchUser).toBe(false);
  });
});

describe('decideTenants', () => {
  it('resolves each tenant to a user to switch to', () => {
    const tenants = decideTenants({ workerUid: 0, tenants: ['etl', 'nobody'], lookup });
    expect([...tenants.entries()]).toEqual([
      ['etl', { name: 'etl', uid: 1001, gid: 1001, home: '/home/etl', switchUser: true }],
      ['nobody', { name: 'nobody', uid: 65534, gid: 65534, home: undefined, switchUser: true }],
    ]);
    expect(decideTenants({ workerUid: 1000, tenants: [], lookup }).size).toBe(0);
  });

  it.each<[number, string[], RegExp]>([
    [0, ['ghost'], /^TASK_TENANTS: no such user: "ghost"$/],
    [0, ['root'], /^TASK_TENANTS: "root" is root: a tenant must not be$/],
    [1000, ['etl'], /^TASK_TENANTS: tenants need the worker to run as root \(it runs as uid 1000\)/],
  ])('refuses (worker uid %d) %j', (workerUid, tenants, message) => {
    expect(() => decideTenants({ workerUid, tenants, lookup })).toThrow(message);
  });
});

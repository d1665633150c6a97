/**
 * deploy/: no Docker engine runs here, so the files themselves are checked. Debian's
 * `docker-compose` validates the compose file (`docker-compose config`), and the file is read
 * to check that every service's command exists, every variable is one the configuration knows,
 * and ports and dependencies line up. The Dockerfile is checked the same way.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import * as yaml from 'js-yaml';
import { CONFIG_VARIABLES } from '@porpoise/common';
import { itUnless } from '@porpoise/test-harness';

const ROOT = join(__dirname, '..', '..');
const COMPOSE_FILE = join(ROOT, 'deploy', 'docker-compose.yml');
const DOCKERFILE = join(ROOT, 'deploy', 'Dockerfile');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

type Role = 'api-server' | 'master' | 'worker';
const PORT_VARIABLE: Record<Role, string> = {
  'api-server': 'API_PORT',
  master: 'MASTER_PORT',
  worker: 'WORKER_PORT',
};
const DEFAULT_PORT: Record<Role, number> = { 'api-server': 12345, master: 5678, worker: 1234 };
/** Where /health and /metrics answer (DESIGN.md section 12): the API on its port, the others on METRICS_PORT. */
const DEFAULT_METRICS_PORT: Record<Role, number> = { 'api-server': 12345, master: 5679, worker: 1235 };

interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: Record<string, { condition: string }> | string[];
  ports?: Array<string | { target: number; published?: number | string }>;
  expose?: Array<string | number>;
  volumes?: Array<string | { source?: string; target: string }>;
  healthcheck?: { test: string[] | string; disable?: boolean };
  restart?: string;
  secrets?: Array<string | { source: string; target?: string }>;
  security_opt?: string[];
  cpus?: number | string;
  mem_limit?: string | number;
  pids_limit?: number;
  user?: string;
  cap_drop?: string[];
  cap_add?: string[];
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string; environment?: string }>;
}

/** YAML with merge keys (<<): js-yaml 5 leaves them out of its default schema, js-yaml 4 has them. */
function load(text: string): unknown {
  const y = yaml as unknown as {
    CORE_SCHEMA?: { withTags(tag: unknown): unknown };
    mergeTag?: unknown;
    load(text: string, options?: object): unknown;
  };
  return y.CORE_SCHEMA && y.mergeTag
    ? y.load(text, { schema: y.CORE_SCHEMA.withTags(y.mergeTag) })
    : y.load(text);
}

const raw = readFileSync(COMPOSE_FILE, 'utf8');
const compose = load(raw) as ComposeFile;
const services = Object.entries(compose.services);

const env = (s: Service): Record<string, string> => {
  if (Array.isArray(s.environment)) {
    return Object.fromEntries(
      s.environment.map((e) => [e.split('=')[0], e.includes('=') ? e.slice(e.indexOf('=') + 1) : '']),
    );
  }
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
};
/** A variable the service must set; a missing one fails the test that needs it, naming both. */
const variable = (vars: Record<string, string>, name: string, service: string): string => {
  const value = vars[name];
  if (value === undefined) throw new Error(`service ${service} does not set ${name}`);
  return value;
};
/** The service of that name; a missing one is a broken compose file. */
const serviceNamed = (file: ComposeFile, name: string): Service => {
  const s = file.services[name];
  if (!s) throw new Error(`the compose file has no service ${name}`);
  return s;
};
const command = (s: Service): string[] =>
  Array.isArray(s.command) ? s.command : (s.command ?? '').split(/\s+/).filter(Boolean);
const dependsOn = (s: Service): Record<string, string> =>
  Array.isArray(s.depends_on)
    ? Object.fromEntries(s.depends_on.map((d) => [d, 'service_started']))
    : Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([k, v]) => [k, v.condition]));
const isPorpoise = (s: Service) => (s.image ?? '').startsWith('porpoise:') || s.build !== undefined;
/** The app a Porpoise service runs, from its command. */
const roleOf = (s: Service): Role | 'migrate' | undefined => {
  const script = command(s).find((part) => part.startsWith('dist/'));
  const m = /^dist\/apps\/(api-server|master|worker)\/src\/main\.js$/.exec(script ?? '');
  if (m) return m[1] as Role;
  if (script === 'dist/libs/dao/src/cli/migration-run.js') return 'migrate';
  if (command(s).join(' ') === 'npm run migration:run') return 'migrate';
  return undefined;
};
const nodes = services.filter(([, s]) => isPorpoise(s) && roleOf(s) !== 'migrate' && roleOf(s));

/** dist/x/y.js → x/y.ts: the source the build turns into that file. */
const sourceOf = (distPath: string) => distPath.replace(/^dist\//, '').replace(/\.js$/, '.ts');

function which(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, binary);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

describe('deploy/docker-compose.yml', () => {
  it('has Postgres, ZooKeeper, a migration step, two API servers, three masters, three workers', () => {
    const images = services.map(([, s]) => s.image ?? '');
    expect(images.filter((i) => i.startsWith('postgres:'))).toHaveLength(1);
    expect(images.filter((i) => i.startsWith('zookeeper:'))).toHaveLength(1);
    const roles = services.filter(([, s]) => isPorpoise(s)).map(([, s]) => roleOf(s));
    expect(roles.filter((r) => r === 'migrate')).toHaveLength(1);
    expect(roles.filter((r) => r === 'api-server')).toHaveLength(2);
    expect(roles.filter((r) => r === 'master')).toHaveLength(3);
    expect(roles.filter((r) => r === 'worker')).toHaveLength(3);
    expect(roles.filter((r) => r === undefined)).toEqual([]);
  });

  it('runs every Porpoise service from one image, with a command that exists', () => {
    const porpoise = services.filter(([, s]) => isPorpoise(s));
    expect(new Set(porpoise.map(([, s]) => s.image)).size).toBe(1);
    for (const [name, s] of porpoise) {
      const [program, script, npmScript] = command(s);
      if (program === 'npm') {
        const body = npmScript === undefined ? undefined : PACKAGE.scripts[npmScript];
        expect({ name, script: body }).toEqual({ name, script: expect.any(String) });
        continue;
      }
      expect({ name, program }).toEqual({ name, program: 'node' });
      if (script === undefined) throw new Error(`service ${name} runs node without a script`);
      // The build turns the source into this file; after `npm run build` it is there.
      expect({ name, source: existsSync(join(ROOT, sourceOf(script))) }).toEqual({ name, source: true });
      if (existsSync(join(ROOT, 'dist'))) {
        expect({ name, built: existsSync(join(ROOT, script)) }).toEqual({ name, built: true });
      }
    }
  });

  it('configures the nodes only through variables the configuration knows', () => {
    const known = new Set<string>(CONFIG_VARIABLES);
    for (const [name, s] of services.filter(([, svc]) => isPorpoise(svc))) {
      const unknown = Object.keys(env(s)).filter((k) => !known.has(k));
      expect({ name, unknown }).toEqual({ name, unknown: [] });
    }
    const [, postgres] = services.find(([, s]) => s.image?.startsWith('postgres:')) as [string, Service];
    expect(Object.keys(env(postgres)).filter((k) => !/^(POSTGRES_[A-Z_]+|PGDATA)$/.test(k))).toEqual([]);
    const [, zookeeper] = services.find(([, s]) => s.image?.startsWith('zookeeper:')) as [string, Service];
    expect(Object.keys(env(zookeeper)).filter((k) => !/^(ZOO_[A-Z0-9_]+|JVMFLAGS)$/.test(k))).toEqual([]);
  });

  it('gives every node what it needs to join, every secret as a file of compose secrets', () => {
    const serviceNames = new Set(Object.keys(compose.services));
    const [zookeeperName] = services.find(([, s]) => s.image?.startsWith('zookeeper:')) as [string, Service];
    const declared = compose.secrets ?? {};
    const secretsOf = (s: Service) => (s.secrets ?? []).map((x) => (typeof x === 'string' ? x : x.source));
    /** The compose secret a *_FILE variable names; it must be the service's, and a file. */
    const secretFile = (name: string, s: Service, variableName: string): string => {
      const path = variable(env(s), variableName, name);
      const m = /^\/run\/secrets\/([a-z_]+)$/.exec(path);
      expect({ name, variableName, path: m !== null }).toEqual({ name, variableName, path: true });
      const secret = m?.[1] ?? '';
      expect({ name, secret, mounted: secretsOf(s).includes(secret) }).toEqual({
        name,
        secret,
        mounted: true,
      });
      expect({ name, secret, file: declared[secret]?.file }).toEqual({
        name,
        secret,
        file: `./secrets/${secret}`,
      });
      return secret;
    };
    for (const [name, s] of services.filter(([, svc]) => isPorpoise(svc))) {
      const e = env(s);
      // No secret as a variable: it would be in the container's environment, and in `docker inspect`.
      for (const secretVariable of [
        'DATABASE_URL',
        'CLUSTER_SECRET',
        'ADMIN_TOKEN',
        'ZOOKEEPER_AUTH',
        'ETCD_PASSWORD',
      ]) {
        expect({ name, secretVariable, set: e[secretVariable] !== undefined }).toEqual({
          name,
          secretVariable,
          set: false,
        });
      }
      const role = roleOf(s);
      if (role === 'migrate') {
        expect(secretFile(name, s, 'DATABASE_URL_FILE')).toBe('migrate_database_url');
        continue;
      }
      if (role === 'worker') {
        // Workers get no database credentials: the registry is ZooKeeper.
        expect({
          name,
          database: e.DATABASE_URL_FILE,
          secrets: secretsOf(s).some((x) => x.includes('database')),
        }).toEqual({
          name,
          database: undefined,
          secrets: false,
        });
      } else {
        expect(secretFile(name, s, 'DATABASE_URL_FILE')).toBe('app_database_url');
        // The application role cannot change the schema: the migrate service did.
        expect({ name, migrations: e.MIGRATIONS }).toEqual({ name, migrations: 'off' });
      }
      expect(secretFile(name, s, 'CLUSTER_SECRET_FILE')).toBe('cluster_secret');
      expect(secretFile(name, s, 'ZOOKEEPER_AUTH_FILE')).toBe('zookeeper_auth');
      if (role === 'api-server') expect(secretFile(name, s, 'ADMIN_TOKEN_FILE')).toBe('admin_token');
      expect({ name, registry: e.REGISTRY_TYPE }).toEqual({ name, registry: 'zookeeper' });
      // host:port,host:port[/chroot]
      const servers = variable(e, 'ZOOKEEPER_CONNECT', name).replace(/\/.*$/, '');
      for (const hostPort of servers.split(',')) {
        const [host = '', port] = hostPort.split(':'); // split() yields at least one part
        expect({ name, zk: serviceNames.has(host) && port === '2181' }).toEqual({ name, zk: true });
        expect(host).toBe(zookeeperName);
      }
      expect({ name, nodeHost: e.NODE_HOST }).toEqual({ name, nodeHost: name });
    }
    const [, postgres] = services.find(([, s]) => s.image?.startsWith('postgres:')) as [string, Service];
    expect(env(postgres).POSTGRES_PASSWORD).toBeUndefined();
    expect(env(postgres).POSTGRES_PASSWORD_FILE).toBe('/run/secrets/postgres_password');
    expect(secretsOf(postgres).sort()).toEqual([
      'db_app_password',
      'db_migrate_password',
      'postgres_password',
    ]);
    // Every declared secret is a file that deploy/make-secrets.sh makes, and somebody uses it.
    const makeSecrets = readFileSync(join(ROOT, 'deploy', 'make-secrets.sh'), 'utf8');
    const used = new Set(services.flatMap(([, s]) => secretsOf(s)));
    for (const [secret, spec] of Object.entries(declared)) {
      expect({ secret, file: spec.file, used: used.has(secret) }).toEqual({
        secret,
        file: `./secrets/${secret}`,
        used: true,
      });
      expect({ secret, made: new RegExp(`^put ${secret} `, 'm').test(makeSecrets) }).toEqual({
        secret,
        made: true,
      });
    }
    expect(raw).not.toMatch(/postgres:\/\/[^\s:]+:[^\s@$]+@/);
    expect(raw).not.toMatch(/CLUSTER_SECRET:\s*['"]?[A-Za-z0-9+/_-]{16,}/);
  });

  it('hardens every service: no-new-privileges, CPU, memory and process limits, Porpoise not as root but to run tasks as TASK_USER', () => {
    for (const [name, s] of services) {
      expect({ name, securityOpt: s.security_opt }).toEqual({
        name,
        securityOpt: ['no-new-privileges:true'],
      });
      expect({ name, cpus: Number(s.cpus) > 0, memory: /^\d+[mg]$/.test(String(s.mem_limit)) }).toEqual({
        name,
        cpus: true,
        memory: true,
      });
      expect({ name, pids: typeof s.pids_limit === 'number' && s.pids_limit > 0 }).toEqual({
        name,
        pids: true,
      });
      // The image's user (deploy/Dockerfile: USER porpoise), never overridden to root, except the
      // workers: root with the capabilities to run tasks as TASK_USER, nothing else, so that a
      // task (untrusted) is not the user the worker's secrets belong to.
      const worker = isPorpoise(s) && command(s).some((part) => part.includes('apps/worker/'));
      if (isPorpoise(s)) {
        expect({ name, user: s.user, capDrop: s.cap_drop, capAdd: [...(s.cap_add ?? [])].sort() }).toEqual(
          worker
            ? {
                name,
                user: 'root',
                capDrop: ['ALL'],
                capAdd: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'KILL', 'SETGID', 'SETUID'],
              }
            : { name, user: undefined, capDrop: undefined, capAdd: [] },
        );
        if (worker) expect({ name, taskUser: env(s).TASK_USER }).not.toEqual({ name, taskUser: 'root' });
      }
    }
  });

  it('creates database roles without superuser: the schema owned by the migration role', () => {
    const sql = readFileSync(join(ROOT, 'deploy', 'postgres', 'porpoise-roles.sql'), 'utf8');
    for (const role of ['porpoise_migrate', 'porpoise_app']) {
      expect(sql).toMatch(new RegExp(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`));
    }
    expect(sql).toMatch(/ALTER SCHEMA public OWNER TO porpoise_migrate;/);
    expect(sql).toMatch(
      /ALTER DEFAULT PRIVILEGES FOR ROLE porpoise_migrate IN SCHEMA public\s+GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO porpoise_app;/,
    );
    const [, postgres] = services.find(([, s]) => s.image?.startsWith('postgres:')) as [string, Service];
    const mounts = (postgres.volumes ?? []).map(String);
    expect(mounts).toContain(
      './postgres/10-porpoise-roles.sh:/docker-entrypoint-initdb.d/10-porpoise-roles.sh:ro',
    );
    expect(mounts).toContain('./postgres/porpoise-roles.sql:/etc/porpoise/porpoise-roles.sql:ro');
  });

  it('has ports that line up: the port variable, published and exposed ports, unique addresses', () => {
    const published = new Map<string, string>();
    const addresses = new Set<string>();
    for (const [name, s] of nodes) {
      const role = roleOf(s) as Role;
      const port = Number(env(s)[PORT_VARIABLE[role]] ?? DEFAULT_PORT[role]);
      const address = `${env(s).NODE_HOST}:${port}`;
      expect({ name, unique: !addresses.has(address) }).toEqual({ name, unique: true });
      addresses.add(address);
      for (const p of s.ports ?? []) {
        const spec = typeof p === 'string' ? p : `${p.published ?? ''}:${p.target}`;
        const parts = spec.replace(/\/tcp$/, '').split(':');
        const target = Number(parts[parts.length - 1]);
        const hostSide = parts.slice(0, -1).join(':');
        expect({ name, target }).toEqual({ name, target: port });
        expect({ name, taken: published.get(hostSide) }).toEqual({ name, taken: undefined });
        published.set(hostSide, name);
      }
      // Exposed on the network: the node's port, and a master's or worker's metrics port.
      const metrics =
        role === 'api-server' ? port : Number(env(s).METRICS_PORT ?? DEFAULT_METRICS_PORT[role]);
      if (role !== 'api-server') {
        expect({ name, metricsPortOwn: metrics !== port && metrics > 0 }).toEqual({
          name,
          metricsPortOwn: true,
        });
      }
      const exposed = (s.expose ?? []).map(Number).sort((a, b) => a - b);
      expect({ name, exposed }).toEqual({
        name,
        exposed:
          role === 'api-server' && exposed.length === 0
            ? []
            : [...new Set([port, metrics])].sort((a, b) => a - b),
      });
    }
    // The API servers are reachable from the host; masters and workers only on the network.
    for (const [name, s] of nodes) {
      expect({ name, published: (s.ports ?? []).length > 0 }).toEqual({
        name,
        published: roleOf(s) === 'api-server',
      });
    }
  });

  it('has dependencies that exist, with conditions the targets can meet, and no cycle', () => {
    const names = new Set(Object.keys(compose.services));
    for (const [name, s] of services) {
      for (const [target, condition] of Object.entries(dependsOn(s))) {
        expect({ name, target, exists: names.has(target) }).toEqual({ name, target, exists: true });
        const t = serviceNamed(compose, target);
        if (condition === 'service_healthy') {
          expect({ name, target, healthcheck: t.healthcheck !== undefined }).toEqual({
            name,
            target,
            healthcheck: true,
          });
        } else if (condition === 'service_completed_successfully') {
          expect({ name, target, oneShot: roleOf(t) === 'migrate' && String(t.restart) === 'no' }).toEqual({
            name,
            target,
            oneShot: true,
          });
        } else expect(condition).toBe('service_started');
      }
    }
    for (const [name, s] of nodes) {
      expect({ name, deps: Object.keys(dependsOn(s)).sort() }).toEqual({
        name,
        deps: ['migrate', 'postgres', 'zookeeper'],
      });
    }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (n: string) => {
      if (done.has(n)) return;
      if (visiting.has(n)) throw new Error(`depends_on cycle through ${n}`);
      visiting.add(n);
      for (const d of Object.keys(dependsOn(serviceNamed(compose, n)))) visit(d);
      visiting.delete(n);
      done.add(n);
    };
    for (const n of names) visit(n);
  });

  it('has a health check and a restart policy on every long-running service', () => {
    for (const [name, s] of services) {
      if (roleOf(s) === 'migrate') {
        expect({ name, restart: String(s.restart) }).toEqual({ name, restart: 'no' });
        continue;
      }
      expect({ name, restart: s.restart }).toEqual({
        name,
        restart: expect.stringMatching(/^(always|unless-stopped|on-failure)/),
      });
      expect({ name, healthcheck: s.healthcheck?.test !== undefined }).toEqual({ name, healthcheck: true });
    }
    for (const [name, s] of nodes) {
      const test = s.healthcheck?.test as string[];
      expect({ name, test }).toEqual({ name, test: ['CMD', 'node', 'deploy/healthcheck.js', roleOf(s)] });
    }
    expect(existsSync(join(ROOT, 'deploy', 'healthcheck.js'))).toBe(true);
  });

  it('keeps data in declared volumes: Postgres, ZooKeeper, and each worker its own DATA_DIR', () => {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    const mounts = (s: Service) =>
      (s.volumes ?? []).map((v) => {
        if (typeof v !== 'string') return { source: v.source ?? '', target: v.target };
        const [source = '', target] = v.split(':'); // split() yields at least one part
        return { source, target };
      });
    for (const [name, s] of services) {
      for (const { source } of mounts(s)) {
        if (!source.startsWith('.') && !source.startsWith('/')) {
          expect({ name, source, declared: declared.has(source) }).toEqual({ name, source, declared: true });
        }
      }
    }
    const pg = services.find(([, s]) => s.image?.startsWith('postgres:'))?.[1] as Service;
    expect(mounts(pg).map((m) => m.target)).toContain('/var/lib/postgresql/data');
    const zk = services.find(([, s]) => s.image?.startsWith('zookeeper:'))?.[1] as Service;
    expect(mounts(zk).map((m) => m.target)).toContain('/data');
    const workerVolumes = new Set<string>();
    for (const [name, s] of nodes.filter(([, svc]) => roleOf(svc) === 'worker')) {
      const mount = mounts(s).find((m) => m.target === env(s).DATA_DIR);
      expect({ name, mounted: mount !== undefined }).toEqual({ name, mounted: true });
      expect(workerVolumes.has(mount?.source as string)).toBe(false);
      workerVolumes.add(mount?.source as string);
    }
  });

  describe('docker-compose config (Debian package docker-compose)', () => {
    const binary = which('docker-compose');
    // Without docker-compose the file is not validated by it: skipped, and counted as such.
    const itWithCompose = itUnless(
      binary
        ? undefined
        : 'docker-compose is not installed: the Debian package docker-compose, which scripts/install-test-deps.sh installs',
    );
    let scratch = '';
    const run = (variables: Record<string, string>, ...args: string[]) => {
      // An empty env file: a developer's own deploy/.env must not change the result.
      const envFile = join(scratch, 'empty.env');
      writeFileSync(envFile, '');
      const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...variables };
      return spawnSync(binary as string, ['--env-file', envFile, '-f', COMPOSE_FILE, 'config', ...args], {
        cwd: scratch,
        env: childEnv,
        encoding: 'utf8',
        timeout: 60_000,
      });
    };

    beforeAll(() => {
      scratch = mkdtempSync(join(tmpdir(), 'porpoise-compose-'));
    });
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));

    itWithCompose(
      'validates the file and resolves it to the same services, hardening and secrets kept',
      () => {
        const result = run({});
        expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
        const resolved = load(result.stdout) as ComposeFile;
        expect(Object.keys(resolved.services).sort()).toEqual(Object.keys(compose.services).sort());
        for (const name of Object.keys(compose.services)) {
          const r = serviceNamed(resolved, name);
          expect(Object.keys(env(r)).sort()).toEqual(Object.keys(env(serviceNamed(compose, name))).sort());
          expect({ name, securityOpt: r.security_opt }).toEqual({
            name,
            securityOpt: ['no-new-privileges:true'],
          });
          expect({ name, limits: [r.cpus !== undefined, r.mem_limit !== undefined, r.pids_limit] }).toEqual({
            name,
            limits: [true, true, 512],
          });
        }
        for (const [secret, spec] of Object.entries(resolved.secrets ?? {})) {
          expect({ secret, file: spec.file }).toEqual({
            secret,
            file: join(ROOT, 'deploy', 'secrets', secret),
          });
        }
        expect(env(serviceNamed(resolved, 'master-1')).DATABASE_URL_FILE).toBe(
          '/run/secrets/app_database_url',
        );
      },
    );
  });
});

describe('deploy/Dockerfile', () => {
  const text = readFileSync(DOCKERFILE, 'utf8').replace(/\\\n/g, ' ');
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = lines.filter((l) => /^FROM\s/i.test(l));
  const lastFrom = stages.at(-1);
  if (lastFrom === undefined) throw new Error(`${DOCKERFILE} has no FROM line`);
  const lastStage = lines.slice(lines.lastIndexOf(lastFrom));

  it('builds in one stage and runs from another, on Node 20', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/ARG NODE_IMAGE=node:20[-\w.]*/);
    const build = lines.slice(0, lines.indexOf(lastFrom)).join('\n');
    expect(build).toMatch(/apt-get install[^\n]*python3[^\n]*make[^\n]*g\+\+/);
    expect(build).toMatch(/npm ci\b/);
    expect(build).toMatch(/npm run build\b/);
    expect(build).toMatch(/npm prune --omit=dev\b/);
  });

  it('runs as a user that is not root', () => {
    const user = lastStage.filter((l) => /^USER\s/i.test(l)).pop();
    expect(user).toBeDefined();
    expect(user?.split(/\s+/)[1]?.split(':')[0]).not.toMatch(/^(root|0)$/);
  });

  it('copies only what exists, and its default command exists', () => {
    for (const line of lines.filter((l) => /^COPY\s/i.test(l))) {
      const parts = line.split(/\s+/).slice(1);
      const fromStage = parts.some((p) => p.startsWith('--from='));
      const sources = parts.filter((p) => !p.startsWith('--')).slice(0, -1);
      for (const source of sources) {
        const inRepo = fromStage ? source.replace(/^\/app\//, '') : source;
        if (fromStage && /^(node_modules|dist)(\/|$)/.test(inRepo)) continue; // made by the build
        expect({ line, exists: existsSync(join(ROOT, inRepo)) }).toEqual({ line, exists: true });
      }
    }
    const cmd = lastStage.filter((l) => /^CMD\s/i.test(l)).pop() as string;
    const [program, script] = JSON.parse(cmd.replace(/^CMD\s+/i, '')) as string[];
    expect(program).toBe('node');
    expect(script !== undefined && existsSync(join(ROOT, sourceOf(script)))).toBe(true);
  });

  it('copies what the install scripts of package.json run before npm ci runs them', () => {
    const scripts = PACKAGE.scripts;
    const install = ['preinstall', 'install', 'postinstall', 'prepare']
      .map((name) => scripts[name] ?? '')
      .join(' ');
    const needed = install.match(/scripts\/[\w./-]+/g) ?? [];
    const npmCi = lines.findIndex((l) => /^RUN\s.*\bnpm ci\b/.test(l));
    expect(npmCi).toBeGreaterThan(0);
    const copied = lines
      .slice(0, npmCi)
      .filter((l) => /^COPY\s/i.test(l) && !l.includes('--from='))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    for (const file of needed) {
      expect({
        file,
        copied: copied.some((c) => file === c || file.startsWith(`${c.replace(/\/$/, '')}/`)),
      }).toEqual({
        file,
        copied: true,
      });
    }
  });

  it('keeps secrets, dependencies and build output out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', '.porpoise', '.env']) expect(ignored).toContain(entry);
  });
});

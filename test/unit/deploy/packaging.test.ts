import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../../src/config/config-loader.js';
import { configSchema } from '../../../src/config/config-schema.js';
import type { CredentialStore } from '../../../src/core/credential-store.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { OpsServer } from '../../../src/observability/ops-server.js';

/*
 * The deployment files cannot run here (no Docker daemon, no cluster, no systemd as PID 1). This checks what can
 * be checked: they parse, they point at what the build produces, their ports and probe paths are the ones
 * passgate serves, and every PASSGATE_* variable they set is a real configuration key (the loader refuses
 * unknown keys and names them).
 */

const ROOT = resolve(import.meta.dirname, '../../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
type Tree = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const defaults = configSchema.parse({});
const MAIL_PORTS = [...defaults.smtp.listeners, ...defaults.imap.listeners].map((l) => l.port).sort((a, b) => a - b);
const OPS_PORT = defaults.ops.port;

const scratch = mkdtempSync(join(tmpdir(), 'passgate-deploy-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** ENV lines of the Dockerfile's last stage (what every container starts with). */
function dockerfileEnv(): Record<string, string> {
  const text = read('Dockerfile').replace(/\\\n/g, ' ');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const line of runtime.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const [, name, value] of line.slice(4).matchAll(/([A-Z0-9_]+)=(\S+)/g)) env[name!] = value!;
  }
  return env;
}

/**
 * Loads the configuration a container would load: `files` maps a path inside the container (the config file,
 * secret files) to its content here; *_FILE and PASSGATE_CONFIG values are redirected to those copies.
 */
function loadAsContainer(env: Record<string, string>, files: Record<string, string>) {
  const dir = mkdtempSync(join(scratch, 'c-'));
  const local = new Map<string, string>();
  for (const [path, content] of Object.entries(files)) {
    const copy = join(dir, `${local.size}-${basename(path)}`);
    writeFileSync(copy, content);
    local.set(path, copy);
  }
  const redirected: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name === 'PASSGATE_CONFIG' || name.endsWith('_FILE')) {
      assert.ok(local.has(value), `${name}=${value}: no such file is mounted`);
      redirected[name] = local.get(value)!;
    } else {
      redirected[name] = value;
    }
  }
  return loadConfig({ env: redirected, cwd: dir }).config;
}

const passgateVars = (env: Record<string, string>) => Object.keys(env).filter((n) => n.startsWith('PASSGATE_'));
const SECRET = 'a-secret-value-for-the-test-0123456789';
const KEY = Buffer.alloc(32, 7).toString('base64');

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const froms = [...text.matchAll(/^FROM (\S+)(?: AS (\S+))?/gm)];

  it('builds in one stage and runs on node:22-bookworm-slim in another, as a non-root user', () => {
    assert.ok(froms.length >= 2, 'multi-stage');
    for (const [, image] of froms) assert.match(image!, /^node:22-/, 'Node 22 LTS');
    assert.equal(froms.at(-1)![1], 'node:22-bookworm-slim');
    assert.match(text, /npm run build/);
    assert.match(text, /g\+\+/, 'the build stage can compile argon2 and better-sqlite3');
    const user = /^USER (\S+)/m.exec(text.slice(text.lastIndexOf('\nFROM ')))?.[1];
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user}`);
  });

  it('exposes the default ports, checks /healthz, keeps data in a volume, and runs `passgate serve`', () => {
    const exposed = /^EXPOSE (.+)$/m.exec(text)![1]!.split(/\s+/).map(Number).sort((a, b) => a - b);
    assert.deepEqual(exposed, [...MAIL_PORTS, OPS_PORT].sort((a, b) => a - b));
    assert.match(text, /^HEALTHCHECK .*\n?.*\/healthz/m);
    assert.match(text, /^VOLUME \["\/var\/lib\/passgate"\]/m);
    const entrypoint = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(text)![1]!) as string[];
    const pkg = JSON.parse(read('package.json')) as { bin: { passgate: string } };
    assert.equal(entrypoint.at(-1), `/app/${pkg.bin.passgate}`);
    assert.match(text, /^COPY bin \.\/bin$/m);
    assert.match(text, /^COPY --from=build \/build\/dist \.\/dist$/m);
    assert.deepEqual(JSON.parse(/^CMD (.+)$/m.exec(text)![1]!), ['serve']);
  });

  it('sets only real configuration keys, and opens the ops port beyond the container\'s loopback', () => {
    const env = dockerfileEnv();
    assert.ok(passgateVars(env).length > 0);
    const config = loadAsContainer({ ...env, PASSGATE_SECURITY__PEPPER: SECRET }, {});
    assert.equal(config.ops.host, '0.0.0.0');
    assert.equal(config.data_dir, '/var/lib/passgate');
  });

  it('.dockerignore keeps node_modules and dist out, and what the build copies in', () => {
    const ignored = read('.dockerignore').split('\n').filter((l) => l && !l.startsWith('#'));
    for (const path of ['node_modules', 'dist', '.git', 'data']) assert.ok(ignored.includes(path), path);
    for (const [, source] of text.matchAll(/^COPY (?!--from)(\S+)/gm)) {
      assert.ok(!ignored.includes(source!.split('/')[0]!), `${source} is copied but ignored`);
      assert.ok(existsSync(join(ROOT, source!)), `${source} exists`);
    }
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as Tree;
  const passgate = compose.services.passgate as Tree;

  it('runs Redis with persistence and noeviction', () => {
    const command = (compose.services.redis.command as string[]).join(' ');
    assert.match(command, /--appendonly yes/);
    assert.match(command, /--maxmemory-policy noeviction/);
    assert.ok((compose.services.redis.volumes as string[]).some((v) => v.endsWith(':/data')), 'Redis data in a volume');
  });

  it('passes the mounted config file and *_file secrets that exist, and every variable is a real key', () => {
    const env = passgate.environment as Record<string, string>;
    const files: Record<string, string> = {};
    for (const volume of passgate.volumes as string[]) {
      const [source, target] = volume.split(':');
      if (source!.startsWith('./')) files[target!] = read(source!);
    }
    assert.ok(files[env.PASSGATE_CONFIG!], 'PASSGATE_CONFIG is a mounted file');
    for (const name of passgate.secrets as string[]) {
      assert.ok(compose.secrets[name]?.file, `secret ${name} is defined`);
      files[`/run/secrets/${name}`] = name.includes('key') ? KEY : SECRET;
    }
    const config = loadAsContainer({ ...dockerfileEnv(), ...env }, files);
    assert.equal(config.redisEnabled, true);
    assert.equal(config.security.pepper, SECRET);
    assert.equal(config.ops.host, '0.0.0.0');
  });

  it('publishes the default ports (ops on the host\'s loopback only) and waits longer than the grace period', () => {
    const ports = (passgate.ports as string[]).map((p) => p.split(':'));
    assert.deepEqual(ports.map((p) => Number(p.at(-1))).sort((a, b) => a - b), [...MAIL_PORTS, OPS_PORT].sort((a, b) => a - b));
    assert.deepEqual(ports.find((p) => Number(p.at(-1)) === OPS_PORT)?.[0], '127.0.0.1');
    const grace = (parse(read('deploy/compose/passgate.yaml')) as Tree).shutdown_grace_seconds as number;
    assert.ok(parseInt(passgate.stop_grace_period as string, 10) > grace + 5, 'stop_grace_period leaves room to drain');
  });
});

describe('open-file limits', () => {
  it('compose and the systemd unit allow two descriptors per session at the default connection caps, and agree', () => {
    const compose = parse(read('docker-compose.yml')) as Tree;
    const nofile = (compose.services.passgate as Tree).ulimits.nofile as { soft: number; hard: number };
    const unit = Number(/^LimitNOFILE=(\d+)$/m.exec(read('deploy/systemd/passgate.service'))![1]);
    assert.deepEqual([nofile.soft, nofile.hard], [unit, unit]);
    const defaults = parse(read('config/passgate.example.yaml')) as Tree;
    const sessions = (defaults.smtp.max_connections as number) + (defaults.imap.max_connections as number);
    assert.ok(unit > 2 * sessions + 1000, `${unit} descriptors for ${sessions} sessions`);
  });
});

describe('deploy/systemd', () => {
  const unit = read('deploy/systemd/passgate.service');
  const directives = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) directives.set(match[1]!, [...(directives.get(match[1]!) ?? []), match[2]!]);
  }
  const one = (name: string) => directives.get(name)?.[0];

  it('ExecStart runs the built CLI of package.json with the launcher\'s flags and the documented config path', () => {
    const [node, ...args] = one('ExecStart')!.split(/\s+/);
    assert.equal(node, '/usr/bin/node');
    const script = args.find((a) => a.endsWith('.js'))!;
    const pkg = JSON.parse(read('package.json')) as { bin: { passgate: string } };
    assert.equal(script, `/opt/passgate/${pkg.bin.passgate}`);
    const launcher = read(pkg.bin.passgate);
    assert.ok(args.includes('--max-semi-space-size=2') && launcher.includes('--max-semi-space-size=2'), 'same V8 flag as bin/passgate.js');
    // The launcher runs dist/cli.js, which `npm run build` (tsc, outDir dist, rootDir src) makes from src/cli.ts.
    assert.match(launcher, /import '\.\.\/dist\/cli\.js'/);
    const tsconfig = JSON.parse(read('tsconfig.json')) as { compilerOptions: { outDir: string; rootDir: string } };
    assert.deepEqual([tsconfig.compilerOptions.outDir, tsconfig.compilerOptions.rootDir], ['dist', 'src']);
    assert.ok(existsSync(join(ROOT, 'src/cli.ts')));
    // npm ci builds dist (the prepare script): in CI it must be there; a checkout that never ran it may lack it.
    if (existsSync(join(ROOT, 'dist')) || process.env['CI']) assert.ok(existsSync(join(ROOT, 'dist/cli.js')), 'built by npm ci: dist/cli.js');
    assert.deepEqual(args.slice(args.indexOf(script) + 1), ['--config', '/etc/passgate/passgate.yaml', 'serve']);
  });

  it('its example config keeps data in the StateDirectory and loads', () => {
    const example = read('deploy/systemd/passgate.yaml');
    assert.equal((parse(example) as Tree).data_dir, `/var/lib/${one('StateDirectory')}`);
    assert.equal(one('WorkingDirectory'), `/var/lib/${one('StateDirectory')}`);
    const config = loadAsContainer(
      { PASSGATE_CONFIG: '/etc/passgate/passgate.yaml', PASSGATE_OAUTH__CLIENT_SECRET_FILE: '/etc/passgate/client-secret' },
      { '/etc/passgate/passgate.yaml': example, '/etc/passgate/client-secret': SECRET },
    );
    assert.equal(config.data_dir, '/var/lib/passgate');
    assert.ok(parseInt(one('TimeoutStopSec')!, 10) > config.shutdown_grace_seconds + 5, 'TimeoutStopSec leaves room to drain');
  });

  it('is hardened, runs as the passgate user, binds ports < 1024 by capability, and reloads with SIGHUP', () => {
    assert.equal(one('User'), 'passgate');
    assert.match(read('deploy/systemd/passgate.sysusers.conf'), /^u passgate - .* \/var\/lib\/passgate/m);
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
    assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(one('MemoryDenyWriteExecute'), undefined, 'V8 needs W+X memory');
  });
});

describe('deploy/kubernetes', () => {
  const dir = 'deploy/kubernetes';
  const kustomization = parse(read(`${dir}/kustomization.yaml`)) as { resources: string[] };
  const documents = (file: string) =>
    parseAllDocuments(read(`${dir}/${file}`)).map((doc) => {
      assert.deepEqual(doc.errors, [], `${file} parses`);
      return doc.toJS() as Tree;
    });
  const all = [...kustomization.resources, 'secret.example.yaml'].flatMap((file) => documents(file));
  const find = (kind: string, name: string) => all.find((d) => d.kind === kind && d.metadata?.name === name)!;
  const deployment = find('Deployment', 'passgate');
  const pod = deployment.spec.template.spec as Tree;
  const container = pod.containers[0] as Tree;
  const containerPort = (name: string | number) =>
    typeof name === 'number' ? name : (container.ports as Tree[]).find((p) => p.name === name)?.containerPort;
  const configMap = find('ConfigMap', 'passgate-config');

  it('every manifest parses and is a named object', () => {
    for (const file of kustomization.resources) assert.ok(existsSync(join(ROOT, dir, file)), file);
    for (const doc of all) assert.ok(doc.apiVersion && doc.kind && doc.metadata?.name, JSON.stringify(doc).slice(0, 80));
  });

  it('two replicas, probes on the ops port: readiness /readyz, liveness /healthz', () => {
    assert.equal(deployment.spec.replicas, 2);
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.equal(containerPort(container.readinessProbe.httpGet.port), OPS_PORT);
    assert.equal(containerPort(container.livenessProbe.httpGet.port), OPS_PORT);
  });

  it('container ports are the default listener ports, and the Services point at them', () => {
    const ports = (container.ports as Tree[]).map((p) => p.containerPort as number).sort((a, b) => a - b);
    assert.deepEqual(ports, [...MAIL_PORTS, OPS_PORT].sort((a, b) => a - b));
    for (const service of all.filter((d) => d.kind === 'Service' && d.metadata.name.startsWith('passgate'))) {
      for (const port of service.spec.ports as Tree[]) assert.ok(containerPort(port.targetPort), `${service.metadata.name}: ${port.targetPort}`);
    }
    assert.equal(find('Service', 'passgate').spec.externalTrafficPolicy, 'Local', 'client addresses are kept');
  });

  it('preStop and terminationGracePeriodSeconds leave room for the configured drain', () => {
    const grace = (parse(configMap.data['passgate.yaml'] as string) as Tree).shutdown_grace_seconds as number;
    const preStop = Number((container.lifecycle.preStop.exec.command as string[]).at(-1));
    assert.ok(pod.terminationGracePeriodSeconds >= preStop + grace + 10, `${pod.terminationGracePeriodSeconds} < ${preStop} + ${grace} + 10`);
  });

  it('every PASSGATE_* variable is a real key, files come from mounted volumes, and the config loads', () => {
    const env = Object.fromEntries((container.env as Tree[]).map((e) => [e.name, e.value])) as Record<string, string>;
    const mounts = container.volumeMounts as Tree[];
    const files: Record<string, string> = {};
    const configMount = mounts.find((m) => m.name === 'config')!;
    files[configMount.mountPath] = configMap.data[configMount.subPath];
    const secretsMount = mounts.find((m) => m.name === 'secrets')!.mountPath as string;
    const secret = find('Secret', 'passgate-secrets');
    for (const [name, path] of Object.entries(env).filter(([n]) => n.endsWith('_FILE'))) {
      assert.equal(dirname(path), secretsMount, `${name} is in the mounted secret`);
      assert.ok(basename(path) in secret.stringData, `${name}: the secret has ${basename(path)}`);
      files[path] = basename(path).includes('key') ? KEY : SECRET;
    }
    const config = loadAsContainer({ ...dockerfileEnv(), ...env }, files);
    assert.equal(config.redisEnabled, true);
    const tlsMount = mounts.find((m) => m.name === 'tls')!.mountPath as string;
    for (const c of config.tls.certificates) assert.equal(dirname(c.cert_file), tlsMount);
    assert.match(env.PASSGATE_REDIS__URL!, new RegExp(`^redis://${find('Service', 'redis').metadata.name}:6379$`));
  });

  it('Redis: a StatefulSet with AOF and noeviction on a persistent volume', () => {
    const redis = find('StatefulSet', 'redis');
    const args = (redis.spec.template.spec.containers[0].args as string[]).join(' ');
    assert.match(args, /--appendonly yes/);
    assert.match(args, /--maxmemory-policy noeviction/);
    assert.ok(redis.spec.volumeClaimTemplates.length > 0);
  });

  it('the Secret example holds placeholders only', () => {
    for (const secret of all.filter((d) => d.kind === 'Secret')) {
      for (const [key, value] of Object.entries(secret.stringData as Record<string, string>)) assert.match(value, /^REPLACE-/, key);
    }
  });
});

/** The Dockerfile's HEALTHCHECK, an exec-form JSON array. */
function healthcheck(): string[] {
  const text = read('Dockerfile').replace(/\\\n/g, ' ');
  return JSON.parse(/^HEALTHCHECK .*?CMD (\[.*\])$/m.exec(text)![1]!) as string[];
}

/** Runs the HEALTHCHECK command as Docker would (without blocking this process's event loop). */
const runHealthcheck = (env: Record<string, string>) =>
  new Promise<number>((done) => {
    const [command, ...args] = healthcheck();
    execFile(command === 'node' ? process.execPath : command!, args, { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 }, (error) =>
      done(error ? ((error as { code?: number }).code ?? -1) : 0),
    );
  });

describe('the probe paths are what the ops server serves', () => {
  it('/healthz and /readyz answer 200 on a live ops server, and the HEALTHCHECK command says healthy', async () => {
    const store = { ping: async () => {} } as unknown as CredentialStore;
    const ops = new OpsServer({ enabled: true, host: '127.0.0.1', port: 0 }, { metrics: new Metrics(), store, tokens: null, log: createLogger('silent') });
    const port = await ops.listen();
    try {
      for (const path of ['/healthz', '/readyz']) assert.equal((await fetch(`http://127.0.0.1:${port}${path}`)).status, 200, path);
      assert.equal(await runHealthcheck({ PASSGATE_OPS__PORT: String(port) }), 0, 'HEALTHCHECK passes');
      ops.drain();
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 503, 'draining');
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'still alive while draining');
    } finally {
      await ops.close();
    }
    assert.equal(await runHealthcheck({ PASSGATE_OPS__PORT: String(port) }), 1, 'HEALTHCHECK fails when nothing answers');
  });
});

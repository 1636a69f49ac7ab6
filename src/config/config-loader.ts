import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { GatewayError } from '../core/gateway-error.js';
import { configSchema, isRedisConfigured, SECRET_KEYS, usesGraph, type Config, type RawConfig } from './config-schema.js';

const ENV_PREFIX = 'PASSGATE_';
const DEFAULT_FILE = 'passgate.yaml';

export interface LoadConfigOptions {
  /** `--config FILE`; otherwise PASSGATE_CONFIG, otherwise ./passgate.yaml when it exists, otherwise defaults. */
  path?: string | undefined;
  env: Record<string, string | undefined>;
  cwd: string;
  /**
   * false (`passgate doctor`): a missing embedded pepper is not created; a throwaway one stands in, with a warning,
   * so checking a fresh install writes nothing. Default true: `serve` and the CLI create it on first use.
   */
  createPepper?: boolean;
}

export interface LoadedConfig {
  config: Config;
  /** Things the operator should know but that do not stop the start. */
  warnings: string[];
}

type Tree = Record<string, unknown>;

function fail(lines: string[], source: string): never {
  throw new GatewayError('PG_CONFIG_INVALID', `invalid configuration in ${source}:\n${lines.map((l) => `  - ${l}`).join('\n')}`);
}

function readFile(path: string): { path: string; tree: Tree } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new GatewayError('PG_CONFIG_INVALID', `cannot read configuration file ${path}: ${(cause as Error).message}`, { cause });
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (cause) {
    // Only the position: the parser's message quotes the offending line, which may hold a secret.
    const at = (cause as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    const where = at ? ` at line ${at.line}, column ${at.col}` : '';
    throw new GatewayError('PG_CONFIG_INVALID', `configuration file ${path} is not valid YAML${where} (${(cause as { code?: string }).code ?? 'parse error'})`);
  }
  if (parsed === null || parsed === undefined) return { path, tree: {} };
  if (typeof parsed !== 'object' || Array.isArray(parsed)) fail(['the top level must be a mapping of keys'], path);
  return { path, tree: parsed as Tree };
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1]!] = value;
}

function getParent(tree: Tree, path: string[]): Tree | undefined {
  let node: unknown = tree;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Tree)[key];
  }
  return typeof node === 'object' && node !== null ? (node as Tree) : undefined;
}

/** `PASSGATE_REDIS__URL=...` sets `redis.url`: `__` separates levels, values are YAML scalars. */
function applyEnv(tree: Tree, env: LoadConfigOptions['env']): Map<string, string> {
  const origins = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === 'PASSGATE_CONFIG' || value === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split('__');
    const dotted = path.join('.');
    const isSecret = (SECRET_KEYS as readonly string[]).includes(dotted) || dotted.endsWith('_file');
    let parsed: unknown = value;
    if (!isSecret) {
      try {
        parsed = parseYaml(value);
      } catch {
        parsed = value;
      }
    }
    setPath(tree, path, parsed);
    origins.set(dotted, name);
  }
  return origins;
}

/** Security (issue 17): a secret others can read is no secret. Inline secrets in a config file with group/other bits. */
function readableSecretWarnings(tree: Tree, file: string | null): string[] {
  if (file === null || (statSync(file).mode & 0o077) === 0) return [];
  return SECRET_KEYS.filter((dotted) => {
    const path = dotted.split('.');
    return getParent(tree, path)?.[path[path.length - 1]!] !== undefined;
  }).map((dotted) => `${file} holds ${dotted} inline and is readable by other users: chmod 600 it, or move the secret to ${dotted}_file`);
}

/** `security.pepper_file: /run/secrets/pepper` becomes `security.pepper: <content>`. */
function resolveSecretFiles(tree: Tree, baseDir: string, errors: string[], warnings: string[]): void {
  for (const dotted of SECRET_KEYS) {
    const path = dotted.split('.');
    const parent = getParent(tree, path);
    const key = path[path.length - 1]!;
    if (!parent || parent[`${key}_file`] === undefined) continue;
    const file = parent[`${key}_file`];
    delete parent[`${key}_file`];
    if (parent[key] !== undefined) {
      errors.push(`${dotted}: set either ${dotted} or ${dotted}_file, not both`);
      continue;
    }
    if (typeof file !== 'string') {
      errors.push(`${dotted}_file: expected a file path`);
      continue;
    }
    try {
      const path = resolve(baseDir, file);
      parent[key] = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
      if ((statSync(path).mode & 0o077) !== 0) warnings.push(`${path} (${dotted}_file) is readable by other users: chmod 600 it`);
    } catch (cause) {
      errors.push(`${dotted}_file: cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`);
    }
  }
}

function formatIssue(issue: z.core.$ZodIssue, origins: Map<string, string>): string[] {
  const base = issue.path.map(String);
  const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...base, k]) : [base];
  return keys.map((path) => {
    const dotted = path.join('.') || '(top level)';
    const message = issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message;
    const origin = origins.get(dotted);
    return `${dotted}: ${message}${origin ? ` (from ${origin})` : ''}`;
  });
}

/** Reads the pepper from data_dir/pepper, creating it (0600) on first start: the embedded default only. */
function embeddedPepper(dataDir: string, warnings: string[], source: string, create: boolean, sqlitePath: string): string {
  const file = resolve(dataDir, 'pepper');
  // Security (issue 17): a store without its pepper is a lost pepper, never a fresh install: no new one is made.
  if (!existsSync(file) && existsSync(sqlitePath)) {
    fail(
      [
        `security.pepper_file: no pepper at ${file}, but the store ${sqlitePath} exists: it was written with a pepper that is now lost, ` +
          'and none of its app passwords would verify with a new one. Restore the pepper file from the backup (or set security.pepper / security.pepper_file)',
      ],
      source,
    );
  }
  if (!create && !existsSync(file)) {
    warnings.push(
      `no pepper at ${file} yet: passgate serve creates it on first start (back it up with the database). ` +
        'If app passwords were already created here, the pepper is lost and none of them verifies: restore it from the backup',
    );
    return randomBytes(32).toString('base64url');
  }
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const pepper = randomBytes(32).toString('base64url');
    writeFileSync(file, `${pepper}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    warnings.push(`generated a new pepper at ${file}: back it up with the database; without it no app password verifies`);
    return pepper;
  } catch (error) {
    // EEXIST: a pepper is already there (made earlier, or by a process starting at the same moment): use it.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      fail([`security.pepper_file: cannot create ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`], source);
    }
  }
  const pepper = readFileSync(file, 'utf8').trim();
  if (pepper.length < 16) fail([`security.pepper_file: ${file} holds fewer than 16 characters; restore it from the backup`], source);
  if ((statSync(file).mode & 0o077) !== 0) warnings.push(`${file} is readable by other users: chmod 600 it`);
  return pepper;
}

export function loadConfig(options: LoadConfigOptions): LoadedConfig {
  const explicit = options.path ?? options.env.PASSGATE_CONFIG;
  const defaultFile = resolve(options.cwd, DEFAULT_FILE);
  const file = explicit ? resolve(options.cwd, explicit) : existsSync(defaultFile) ? defaultFile : null;
  const { path: source, tree } = file ? readFile(file) : { path: 'the built-in defaults', tree: {} as Tree };
  const baseDir = file ? dirname(file) : options.cwd;

  const warnings: string[] = readableSecretWarnings(tree, file);
  const origins = applyEnv(tree, options.env);
  const errors: string[] = [];
  resolveSecretFiles(tree, baseDir, errors, warnings);
  if (errors.length > 0) fail(errors, source);

  const result = configSchema.safeParse(tree);
  if (!result.success) fail(result.error.issues.flatMap((issue) => formatIssue(issue, origins)), source);
  const raw = result.data;

  const dataDir = resolve(baseDir, raw.data_dir);
  const redisEnabled = isRedisConfigured(raw.redis);
  let pepper = raw.security.pepper;
  if (pepper === undefined) {
    if (redisEnabled) {
      fail(
        [
          'security.pepper: required when redis is configured, and the same on every instance: ' +
            'set security.pepper_file or PASSGATE_SECURITY__PEPPER',
        ],
        source,
      );
    }
    const sqlitePath = isAbsolute(raw.sqlite.path) ? raw.sqlite.path : resolve(dataDir, raw.sqlite.path);
    pepper = embeddedPepper(dataDir, warnings, source, options.createPepper ?? true, sqlitePath);
  }

  const oauth = raw.oauth;
  if (oauth.client_id !== null && oauth.token_encryption_key === undefined) {
    if (oauth.mode === 'delegated') {
      fail(['oauth.token_encryption_key: required in delegated mode (refresh tokens are stored encrypted): set it or oauth.token_encryption_key_file'], source);
    }
    if (redisEnabled) {
      fail(['oauth.token_encryption_key: required with redis (access tokens are shared between instances, encrypted)'], source);
    }
  }
  const portalErrors = portalProblems(raw);
  if (portalErrors.length > 0) fail(portalErrors, source);
  const resolveFile = (path: string | null) => (path === null ? null : resolve(baseDir, path));

  const config: Config = {
    ...raw,
    oauth: { ...oauth, certificate_file: resolveFile(oauth.certificate_file), private_key_file: resolveFile(oauth.private_key_file) },
    tls: {
      ...raw.tls,
      certificates: raw.tls.certificates.map((c) => ({ cert_file: resolve(baseDir, c.cert_file), key_file: resolve(baseDir, c.key_file) })),
    },
    smtp: {
      ...raw.smtp,
      // Issue 20: Graph sends as the header's From, so the From check is on by default when Graph carries mail.
      check_from_header: raw.smtp.check_from_header ?? usesGraph(raw.smtp.upstream),
      upstream: { ...raw.smtp.upstream, ca_file: resolveFile(raw.smtp.upstream.ca_file) },
    },
    imap: { ...raw.imap, upstream: { ...raw.imap.upstream, ca_file: resolveFile(raw.imap.upstream.ca_file) } },
    pop3: { ...raw.pop3, upstream: { ...raw.pop3.upstream, ca_file: resolveFile(raw.pop3.upstream.ca_file) } },
    redis: { ...raw.redis, ca_file: resolveFile(raw.redis.ca_file) },
    portal: { ...raw.portal, oidc: { ...raw.portal.oidc, issuer: portalIssuer(raw) } },
    data_dir: dataDir,
    sqlite: { ...raw.sqlite, path: isAbsolute(raw.sqlite.path) ? raw.sqlite.path : resolve(dataDir, raw.sqlite.path) },
    security: { ...raw.security, pepper },
    redisEnabled,
    source,
  };
  const unreadable = unreadableFiles(config);
  if (unreadable.length > 0) fail(unreadable, source);
  return { config, warnings };
}

/**
 * Files the configuration names and `serve` reads at start, checked here so that a missing one stops `serve` and
 * fails `passgate doctor` alike, with the same message naming the key (a file of a part that is off is not read).
 */
function unreadableFiles(config: Config): string[] {
  const files: [string, string | null, boolean][] = [
    ['smtp.upstream.ca_file', config.smtp.upstream.ca_file, config.smtp.enabled],
    ['imap.upstream.ca_file', config.imap.upstream.ca_file, config.imap.enabled],
    ['pop3.upstream.ca_file', config.pop3.upstream.ca_file, config.pop3.enabled],
    ['redis.ca_file', config.redis.ca_file, config.redisEnabled],
    ['oauth.certificate_file', config.oauth.certificate_file, config.oauth.client_id !== null],
    ['oauth.private_key_file', config.oauth.private_key_file, config.oauth.client_id !== null],
  ];
  const errors: string[] = [];
  for (const [key, path, used] of files) {
    if (path === null || !used) continue;
    try {
      readFileSync(path);
    } catch (cause) {
      errors.push(`${key}: cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`);
    }
  }
  return errors;
}

/** The portal's OpenID provider: portal.oidc.issuer, else Entra ID of oauth.tenant; null when neither is set. */
function portalIssuer(raw: RawConfig): string | null {
  const { issuer } = raw.portal.oidc;
  if (issuer !== null) return issuer.replace(/\/$/, '');
  if (raw.oauth.provider === 'microsoft' && raw.oauth.tenant !== null) return `${raw.oauth.authority_host.replace(/\/$/, '')}/${raw.oauth.tenant}/v2.0`;
  return null;
}

/** What a portal that is turned on cannot do without; each names its key. */
function portalProblems(raw: RawConfig): string[] {
  const p = raw.portal;
  if (!p.enabled) return [];
  const errors: string[] = [];
  if (p.public_url === null) errors.push('portal.public_url: required when portal.enabled (the URL people open, e.g. https://passgate.example.com)');
  else if (!isSecureOrLoopback(p.public_url)) errors.push('portal.public_url: must be https:// (http:// only on a loopback address, for trying it out)');
  if (portalIssuer(raw) === null) errors.push('portal.oidc.issuer: required when portal.enabled and oauth.tenant is not set');
  if (p.oidc.client_id === null) errors.push('portal.oidc.client_id: required when portal.enabled (the portal\'s own app registration)');
  if (p.oidc.client_secret === undefined) errors.push('portal.oidc.client_secret: required when portal.enabled (or portal.oidc.client_secret_file)');
  if (p.oidc.allowed_domains.length === 0 && p.oidc.allowed_claim === null) {
    errors.push('portal.oidc.allowed_domains: say who may sign in: a list of mail domains, or portal.oidc.allowed_claim');
  }
  return errors;
}

function isSecureOrLoopback(url: string): boolean {
  const u = new URL(url);
  if (u.protocol === 'https:') return true;
  return u.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(u.hostname);
}

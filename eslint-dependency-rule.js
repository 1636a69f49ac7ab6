// @ts-check
/**
 * The dependency picture of docs/ARCHITECTURE.md, as a lint rule: which room of src/ may import which. A room is
 * the first folder under src/ (core/ports/ is core); the files at the root of src/ are the composition root
 * (app.ts, anything), the entry points (main.ts, cli.ts) and version.ts. Every relative import (and re-export,
 * and dynamic import) of a file under src/ is checked; a room missing from the picture is an error too, so a new
 * room is placed in it on purpose.
 */
import { dirname, relative, resolve, sep } from 'node:path';

const CORE = ['core'];
/** Adapters implement core's ports; tls/ and net/ are plumbing any adapter or edge may use. */
const PLUMBING = ['tls', 'net'];

/** room → the rooms it may import (itself always). */
export const DEPENDENCY_PICTURE = {
  core: [],
  config: [...CORE],
  // Adapters: core's ports, the config slice they take, the shared plumbing, and only these adapters more.
  tls: [...CORE, 'config'],
  net: [...CORE, 'config', 'tls'],
  redis: [...CORE, 'config', 'tls'],
  credentials: [...CORE, 'config', 'redis'],
  'rate-limit': [...CORE, 'config', 'redis'],
  oauth: [...CORE, 'config'],
  upstream: [...CORE, 'config', ...PLUMBING],
  observability: [...CORE, 'config', 'version.ts'],
  // Edges: a protocol or a front end; never each other, never an adapter's internals (they get ports).
  smtp: [...CORE, 'config', ...PLUMBING],
  imap: [...CORE, 'config', ...PLUMBING],
  pop3: [...CORE, 'config', ...PLUMBING],
  admin: [...CORE],
  portal: [...CORE, 'config', 'admin', ...PLUMBING, 'observability'],
  // The doctor tests each part alone with short-lived probes of its own (ARCHITECTURE.md), so it reaches adapters.
  doctor: [...CORE, 'config', 'app.ts', 'credentials', 'redis', 'oauth', 'upstream', 'observability', ...PLUMBING],
  commands: [...CORE, 'config', 'app.ts', 'version.ts', 'admin', 'doctor', 'observability'],
  // Root files.
  'app.ts': ['*'],
  'main.ts': [...CORE, 'commands', 'version.ts'],
  'cli.ts': ['main.ts'],
  'version.ts': [],
};

/** @param {string} file absolute path under src/ @param {string} src */
function roomOf(file, src) {
  const parts = relative(src, file).split(sep);
  return parts.length === 1 ? parts[0] : parts[0];
}

/** @type {import('eslint').Rule.RuleModule} */
const rule = {
  meta: { type: 'problem', schema: [], messages: { forbidden: '{{from}} may not import {{to}} (the dependency picture in docs/ARCHITECTURE.md, eslint-dependency-rule.js)', unknown: 'src/{{room}} is not in the dependency picture: add it to eslint-dependency-rule.js and docs/ARCHITECTURE.md' } },
  create(context) {
    const file = context.filename;
    const src = resolve(context.cwd, 'src');
    if (!file.startsWith(src + sep)) return {};
    const from = roomOf(file, src);
    /** @type {readonly string[] | undefined} */
    const allowed = DEPENDENCY_PICTURE[/** @type {keyof typeof DEPENDENCY_PICTURE} */ (from)];
    /** @param {import('estree').Node} node @param {unknown} source */
    const check = (node, source) => {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = resolve(dirname(file), source).replace(/\.js$/, '.ts');
      if (!target.startsWith(src + sep)) return;
      const to = roomOf(target, src);
      if (to === from) return;
      if (!allowed) return context.report({ node, messageId: 'unknown', data: { room: from } });
      if (allowed.includes('*') || allowed.includes(to)) return;
      context.report({ node, messageId: 'forbidden', data: { from: `src/${from}`, to: `src/${to}` } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};

export default { rules: { 'dependency-picture': rule } };

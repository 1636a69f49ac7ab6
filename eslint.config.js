// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import passgate from './eslint-dependency-rule.js';

/** Modules that do I/O: src/core/ must not import them (design.md: core points at nothing). */
const IO_MODULES = [
  'fs', 'fs/promises', 'net', 'tls', 'http', 'https', 'http2', 'dgram', 'dns', 'child_process', 'cluster', 'worker_threads',
  'readline', 'stream', 'os', 'process',
].flatMap((m) => [m, `node:${m}`]);
/** Modules of which core/ may import types: the ports name the streams and sockets they hand over. */
const TYPE_ONLY = ['net', 'node:net', 'stream', 'node:stream'];
const IO_PACKAGES = [
  'ioredis', 'better-sqlite3', 'argon2', 'smtp-server', 'nodemailer', 'imapflow', 'openid-client', 'pino', 'prom-client',
  'rate-limiter-flexible', 'yaml', 'commander',
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'bench/results/', '.scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { passgate },
    rules: { 'no-console': 'error', 'passgate/dependency-picture': 'error' },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...IO_MODULES.filter((m) => !TYPE_ONLY.includes(m)).map((name) => ({ name, message: 'src/core/ does no I/O: take a port instead.' })),
            // A port may name the stream or socket it hands over (types only, erased at build); no I/O comes with them.
            ...['stream', 'node:stream'].map((name) => ({ name, allowTypeImports: true, message: 'src/core/ does no I/O: stream types only (import type).' })),
            ...['net', 'node:net'].map((name) => ({
              name,
              allowImportNames: ['BlockList', 'isIP', 'isIPv4', 'isIPv6'],
              allowTypeImports: true,
              message: 'src/core/ may use only the address arithmetic of node:net (and its types).',
            })),
            ...IO_PACKAGES.map((name) => ({ name, message: 'src/core/ depends on no adapter library: define a port in core/.' })),
          ],
          // Relative imports out of core/ are refused by the dependency picture (eslint-dependency-rule.js).
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'src/core/ reads no environment: take config slices.' }],
    },
  },
);

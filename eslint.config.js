// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Modules that do I/O: src/core/ must not import them (design.md: core points at nothing). */
const IO_MODULES = [
  'fs', 'fs/promises', 'net', 'tls', 'http', 'https', 'http2', 'dgram', 'dns', 'child_process', 'cluster', 'worker_threads',
  'readline', 'stream', 'os', 'process',
].flatMap((m) => [m, `node:${m}`]);
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
    rules: { 'no-console': 'error' },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...IO_MODULES.filter((m) => m !== 'net' && m !== 'node:net').map((name) => ({ name, message: 'src/core/ does no I/O: take a port instead.' })),
            ...['net', 'node:net'].map((name) => ({
              name,
              allowImportNames: ['BlockList', 'isIP', 'isIPv4', 'isIPv6'],
              message: 'src/core/ may use only the address arithmetic of node:net.',
            })),
            ...IO_PACKAGES.map((name) => ({ name, message: 'src/core/ depends on no adapter library: define a port in core/.' })),
          ],
          patterns: [
            {
              regex: '^\\.\\./(?!core/)|^\\.\\./\\.\\.',
              message: 'src/core/ imports nothing from the rest of src/ (the dependency rule in docs/ARCHITECTURE.md).',
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'src/core/ reads no environment: take config slices.' }],
    },
  },
);

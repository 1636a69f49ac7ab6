/**
 * One dependency of the chaos run in a process of its own, so the run can SIGKILL it as a crash does: the test OAuth
 * server (`oauth`) or the Exchange-like upstream SMTP server (`smtp-upstream`). Its state lives in files in the run's
 * folder, written before each answer (issued tokens; accepted messages), so a restart on the same files carries on
 * as the real thing would. Arguments: a JSON object (ChildSpec). Prints one JSON line {port} when listening.
 */
import { readFileSync } from 'node:fs';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { UpstreamSmtpServer } from '../helpers/upstream-smtp-server.js';
import type { ChildSpec } from './dependency-process.js';

const spec = JSON.parse(process.argv[2]!) as ChildSpec;
let port: number;
if (spec.kind === 'oauth') {
  const server = await new TestOAuthServer({ tokenLifetime: spec.tokenLifetimeSeconds, stateFile: spec.stateFile, clientId: spec.clientId, clientSecret: spec.clientSecret }).start(spec.port);
  port = server.port;
} else {
  const options = { key: readFileSync(spec.keyFile, 'utf8'), cert: readFileSync(spec.certFile, 'utf8'), introspectionEndpoint: spec.introspectionEndpoint, deliveryLog: spec.deliveryLog };
  port = (await new UpstreamSmtpServer(options).start(spec.port)).port;
}
process.stdout.write(`${JSON.stringify({ port })}\n`);
// The parent's end: a closed stdin (the parent went away) ends this process too.
process.stdin.resume();
process.stdin.on('close', () => process.exit(0));

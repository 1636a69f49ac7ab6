import { hostname } from 'node:os';
import { openApp, type App } from '../app.js';
import type { LoadConfigOptions } from '../config/config-loader.js';
import { normalizeUsername } from '../core/app-password-record.js';
import { createLogger } from '../observability/logger.js';
import { checkConfig } from './config-check.js';
import { fail, skip, summarize, type CheckResult, type DoctorReport } from './doctor-report.js';
import { checkImapLogin } from './imap-login-check.js';
import { checkPop3Login } from './pop3-login-check.js';
import { checkPortal } from './portal-check.js';
import { checkSmtpLogin } from './smtp-login-check.js';
import { checkGraphSend } from './graph-send-check.js';
import { transportFor } from '../config/config-schema.js';
import { checkStore } from './store-check.js';
import { checkPepper } from './pepper-check.js';
import { checkTls } from './tls-check.js';
import { checkTokens } from './token-check.js';
import { checkContinuousErrors } from './continuous-errors-check.js';

export interface DoctorOptions {
  load: LoadConfigOptions;
  /** Log in upstream as this mailbox over SMTP, IMAP and POP3 (those enabled; and, in delegated mode, check only its token). */
  mailbox?: string | undefined;
  /** Warnings fail the run too. */
  strict?: boolean | undefined;
}

/**
 * `passgate doctor`: configuration → TLS certificates → the portal's OpenID provider → store (SQLite or Redis) → OAuth token(s) → with a mailbox,
 * real XOAUTH2 logins upstream over SMTP (or, for a mailbox on the Graph transport, a sendMail probe that sends nothing), IMAP and POP3 (each skipped when its protocol is off). A failed check skips only what depends on it; every check runs
 * with the configuration's own timeouts, so the whole run is bounded.
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  const done = () => summarize(checks, options.strict ?? false);
  const mailbox = options.mailbox === undefined ? null : normalizeUsername(options.mailbox);

  const logins = (why: string) => (mailbox === null ? [] : [skip('smtp login', why), skip('imap login', why), skip('pop3 login', why)]);
  const { result, config } = checkConfig(options.load);
  checks.push(result);
  if (!config) {
    const why = 'the configuration is invalid';
    checks.push(skip('tls', why), skip('portal sign-in', why), skip('store', why), skip('token', why), ...logins(why));
    return done();
  }
  checks.push(...(await checkTls(config)));
  checks.push(await checkPortal(config));
  checks.push(...(await checkStore(config)));
  // Security (issue 17): a store written with another pepper.
  const pepper = await checkPepper(config);
  checks.push(pepper);
  if (pepper.status === 'fail') {
    checks.push(skip('token', 'the pepper is not the store\'s'), ...logins('the pepper is not the store\'s'));
    return done();
  }

  if (config.oauth.client_id === null) {
    if (config.smtp.enabled || config.imap.enabled || config.pop3.enabled) {
      checks.push(fail('token', 'oauth.client_id is not set: passgate cannot log in upstream', 'Configure the oauth section (see config/passgate.example.yaml and the README, "Running the gateway").'));
    } else checks.push(skip('token', 'oauth is not configured and smtp, imap and pop3 are disabled'));
    checks.push(...logins('no OAuth configuration'));
    return done();
  }

  let app: App;
  try {
    // Silent: everything worth saying becomes a check result. Read-only: doctor never changes the store.
    app = await openApp(config, { logger: createLogger('silent'), readOnlyStore: true });
  } catch (error) {
    checks.push(fail('token', (error as Error).message, 'Fix the key named; passgate serve would stop with the same message.'));
    checks.push(...logins('passgate could not start'));
    return done();
  }
  try {
    const tokens = await checkTokens(app, mailbox);
    checks.push(...tokens.results);
    checks.push(await checkContinuousErrors(config.smtp, app.messageLog, app.clock()));
    if (mailbox !== null) {
      if (!tokens.token) checks.push(...logins(`no token for ${mailbox}`));
      else {
        const clientId = config.oauth.client_id;
        // Issue 20: a mailbox whose mail goes through Graph is proved there (its tenant may have SMTP AUTH off).
        if (config.smtp.enabled && transportFor(config.smtp.upstream, mailbox) === 'graph') checks.push(await checkGraphSend(config.smtp.upstream.graph, app.oauth!.tokens, mailbox, clientId));
        else checks.push(await checkSmtpLogin(config.smtp, mailbox, tokens.token, config.smtp.hostname ?? hostname(), clientId));
        checks.push(await checkImapLogin(config.imap, mailbox, tokens.token, clientId));
        checks.push(await checkPop3Login(config.pop3, mailbox, tokens.token, clientId));
      }
    }
  } finally {
    await app.close();
  }
  return done();
}

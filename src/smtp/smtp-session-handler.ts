import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { MessagePolicy } from '../core/app-password-record.js';
import type { CredentialStore } from '../core/credential-store.js';
import type { MessageLimiter } from '../core/message-limiter.js';
import type { Authenticator } from '../core/authenticator.js';
import type { EventLogger } from '../core/event-logger.js';
import type { EsmtpParameters, SubmissionSession, SubmissionUpstream } from '../core/ports/submission-upstream.js';
import { replyText, upstreamFailure, UPSTREAM_AUDIT_REASONS, type UpstreamReply as SmtpReply } from '../core/ports/upstream-failure.js';
import type { LiveSessionRegistry } from '../core/live-session-registry.js';
import type { SmtpMetrics } from '../core/smtp-metrics.js';
import type { ContinuousErrorThrottle, Submission } from '../core/continuous-error-throttle.js';
import { asciiDomain, envelopeAddress } from './envelope-address.js';
import { checkSender, loginStillValid, senderAllowed } from './sender-policy.js';
import { FromHeaderGuard } from './from-header-guard.js';
import { drain, SizeGuard } from './size-guard.js';
import { MessageIdReader } from './message-id-reader.js';
import type { SmtpMessageTrace } from './smtp-message-trace.js';
import { LineEndingNormaliser } from './line-ending-normaliser.js';
import { LoginStillValidCheck } from './login-still-valid-check.js';
import { MessageStages } from './message-stages.js';
import { SmtpSessionSummaries } from './smtp-session-summaries.js';
import { PromptSmtpServer } from './prompt-smtp-server.js';
import { AUTH_REPLIES, continuousErrorReply, SMTP_REPLIES, smtpError, UPSTREAM_LOGIN_REPLIES, UPSTREAM_REPLIES, upstreamReplyError, type SmtpReplySpec } from './smtp-replies.js';

type Callback = (err?: Error | null) => void;

interface Login {
  username: string;
  mailbox: string;
  appPasswordId: string;
  appPasswordName: string;
  policy: MessagePolicy;
}

/** What one client connection carries between hooks. */
interface ConnectionState {
  failures: number;
  login: Login | null;
  upstream: SubmissionSession | null;
  /**
   * MAIL sent upstream and answered 250 to the client at once; the upstream's reply is read at the first RCPT,
   * which goes out right behind it (RFC 2920 pipelining): one round trip to the provider per message saved.
   */
  pendingMail: Promise<SmtpReply> | null;
  /** The upstream refused this transaction's MAIL: every RCPT of it gets that refusal. */
  mailRefusal: SmtpReply | null;
  /** The client is gone: whatever arrives for it later (a pooled session, a reply) goes straight back. */
  closed: boolean;
  /** Security (issue 17): leaves the LiveSessionRegistry; set at AUTH. */
  unregister: (() => void) | null;
  /** The message being streamed upstream, if any: a revocation abandons it before its final ".". */
  message: MessageStages | null;
}

export interface SmtpSessionHandlerOptions {
  maxFailuresPerConnection: number;
  maxMessageBytes: number;
  /** Issue 17: the From header must be the mailbox or an allowed sender, unless the app password says otherwise. */
  checkFromHeader: boolean;
}

export interface SmtpSessionHandlerDeps {
  authenticator: Authenticator;
  /** The submission upstream (a port): sessions logged in as a mailbox, bounded and reused by the implementation. */
  pool: SubmissionUpstream;
  messages: MessageLimiter;
  /** Read at each MAIL: a password revoked or expired since AUTH ends the connection. */
  store: CredentialStore;
  metrics: SmtpMetrics;
  log: EventLogger;
  /** Security (issue 17): revoke, revoke-all, turn-off and expiry end logged-in sessions (shared with IMAP). */
  registry: LiveSessionRegistry;
  /** Closes the client connection of a session (after the 3rd failed login); with a 421 `reply`, says it first. */
  closeConnection: (session: SMTPServerSession, reply?: SmtpReplySpec) => void;
  /** The message trace: one record per message, and per refusal of one. */
  trace: SmtpMessageTrace;
  /** Issue 17: remembers the upstream's continuous refusals and holds the same submission back. */
  continuousErrors: ContinuousErrorThrottle;
}

/** An upstream reply as the client gets it, for the message trace. */
const asSpec = (reply: SmtpReply): SmtpReplySpec => ({ code: reply.code, text: replyText(reply) });

/** The transaction's envelope sender, once MAIL was accepted ('' for the null sender). */
const senderOf = (session: SMTPServerSession): string => (session.envelope.mailFrom ? session.envelope.mailFrom.address : '');

/**
 * The SMTP submission session, hook by hook (smtp-server calls them in protocol order): AUTH goes to the one
 * authenticator, then proves the mailbox upstream; MAIL, each RCPT and DATA are relayed on a session of the
 * submission upstream (a port: the listener knows no transport). Each RCPT and the end of DATA are answered with the upstream's own reply, so the client's 250 after
 * DATA is the upstream's 250. MAIL is answered once passgate's own checks pass, and the upstream's verdict on it
 * comes with the first RCPT (a refusal is that RCPT's answer): a message costs one round trip to the provider less.
 */
export class SmtpSessionHandler {
  private readonly states = new WeakMap<SMTPServerSession, ConnectionState>();
  /** One `session closed` line and the session gauges per connection; the listeners open them. */
  readonly summaries: SmtpSessionSummaries;

  constructor(
    private readonly deps: SmtpSessionHandlerDeps,
    private readonly options: SmtpSessionHandlerOptions,
  ) {
    this.summaries = new SmtpSessionSummaries(deps.metrics.sessions, deps.log);
  }

  private state(session: SMTPServerSession): ConnectionState {
    let state = this.states.get(session);
    if (!state) {
      state = { failures: 0, login: null, upstream: null, pendingMail: null, mailRefusal: null, closed: false, unregister: null, message: null };
      this.states.set(session, state);
    }
    return state;
  }

  /** RFC 4954: AUTH PLAIN / LOGIN → the authenticator → an upstream session proves the mailbox works. */
  async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: (err: Error | null | undefined, response?: { user: string }) => void) {
    const state = this.state(session);
    // RFC 4616: acting as another identity (authzid) is not offered. smtp-server passes authcid, or the authzid
    // when a client put the name there and left authcid empty (a common quirk); both filled and different: no.
    if (auth.method === 'PLAIN' && auth.authzid && auth.authcid && auth.authzid !== auth.authcid) {
      return callback(smtpError(AUTH_REPLIES['invalid-credentials']));
    }
    // One attempt, one record: the password, then the mailbox proved upstream now, so a token or permission problem
    // is a login failure the device reports, not a mystery at MAIL (the session goes back to the pool for this
    // client's first MAIL). Each upstream failure kind has its own reply (UPSTREAM_LOGIN_REPLIES, issue 18).
    const request = { username: auth.username ?? '', password: auth.password ?? '', protocol: 'smtp' as const, clientIp: session.remoteAddress, secure: session.secure, sessionId: session.id };
    const outcome = await this.deps.authenticator.login(request, async ({ mailbox }) => {
      const upstream = await this.deps.pool.acquire(mailbox);
      this.deps.pool.release(mailbox, upstream, true);
    });
    if (!outcome.ok && 'upstream' in outcome) return callback(smtpError(UPSTREAM_LOGIN_REPLIES[outcome.upstream.kind]));
    if (!outcome.ok) {
      state.failures++;
      // The authenticator says how long to make a guesser wait before the answer.
      await new Promise((r) => setTimeout(r, outcome.delayMs));
      if (state.failures >= this.options.maxFailuresPerConnection) {
        this.summaries.closing(session.id, 'too-many-failures');
        callback(smtpError(SMTP_REPLIES.tooManyFailures));
        setImmediate(() => this.deps.closeConnection(session));
        return;
      }
      return callback(smtpError(AUTH_REPLIES[outcome.reason]));
    }
    state.login = {
      username: outcome.username,
      mailbox: outcome.mailbox,
      appPasswordId: outcome.appPasswordId,
      appPasswordName: outcome.appPasswordName,
      policy: outcome.policy,
    };
    this.summaries.get(session.id)?.authenticated({ ...state.login, transport: this.deps.pool.transport?.(outcome.mailbox) });
    // Security (issue 17): a revocation ends this session as it ends IMAP sessions (endRevoked).
    state.unregister = this.deps.registry.register(outcome.appPasswordId, () => this.endRevoked(session, state));
    callback(null, { user: outcome.username });
  }

  async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
    const state = this.state(session);
    const login = state.login!;
    if (!(await loginStillValid(this.deps.store, login.appPasswordId))) {
      this.deps.log.info({ session: session.id, user: login.username, appPasswordId: login.appPasswordId }, 'login no longer valid');
      this.summaries.closing(session.id, 'login-no-longer-valid');
      callback(smtpError(SMTP_REPLIES.loginNoLongerValid));
      setImmediate(() => this.deps.closeConnection(session));
      return;
    }
    const refusal = await checkSender(this.deps.messages, login, address);
    if (refusal) {
      // message trace (issue 18): a policy refusal at MAIL is a record naming the rule and the sender.
      const detail = refusal === SMTP_REPLIES.messageTooBig ? `declared SIZE=${String(address.args && address.args.SIZE)}` : address.address;
      await this.deps.trace.record(session, login, { result: 'policy-denied', sender: address.address, recipients: [], reply: refusal, detail });
      return callback(smtpError(refusal));
    }
    state.mailRefusal = null;
    try {
      if (state.upstream?.inTransaction) {
        // The client reset or restarted its transaction (smtp-server handles RSET itself): reset upstream too,
        // once a MAIL still unanswered has its reply (an upstream without PIPELINING takes one command at a time).
        const prior = state.pendingMail;
        state.pendingMail = null;
        await prior?.catch(() => undefined);
        const reset = state.upstream.usable ? await state.upstream.reset().catch(() => null) : null;
        // A session that does not confirm the reset is not trusted with the next transaction: a fresh one is.
        if (reset?.code === 250) state.upstream.inTransaction = false;
        else this.dropUpstream(state, login, false);
      }
      // Died since the last transaction (closed, 421), or logged in with a token that has since expired: replace it.
      if (state.upstream && !state.upstream.current) this.dropUpstream(state, login, false);
      if (!state.upstream) {
        const upstream = await this.deps.pool.acquire(login.mailbox);
        // The client may have left while it waited for a slot: give the session straight back.
        if (state.closed) {
          this.deps.pool.release(login.mailbox, upstream, true);
          return callback(smtpError(SMTP_REPLIES.upstreamUnavailable));
        }
        state.upstream = upstream;
      }
    } catch (error) {
      this.dropUpstream(state, login, false);
      const { reason, reply } = this.classifyUpstream(error);
      if (reason === 'upstream-rejected' || reason === 'upstream-token-failed') {
        await this.deps.authenticator.upstreamFailed({
          protocol: 'smtp',
          username: login.username,
          clientIp: session.remoteAddress,
          appPasswordId: login.appPasswordId,
          appPasswordName: login.appPasswordName,
          reason,
          detail: (error as Error).message,
          sessionId: session.id,
        });
      }
      this.deps.log.warn({ session: session.id, mailbox: login.mailbox, reason, cause: (error as Error).message }, 'upstream session unavailable');
      // message trace (issue 18): the upstream could not be reached for this message.
      await this.deps.trace.record(session, login, { result: 'failed', sender: address.address, recipients: [], reply, detail: (error as Error).message });
      return callback(smtpError(reply));
    }
    // Marked before the command goes out: a session with MAIL outstanding must never be reused.
    state.upstream.inTransaction = true;
    const pending = state.upstream.mail(envelopeAddress(address.address), address.args);
    pending.catch(() => {}); // read at the first RCPT, or dropped with the session
    state.pendingMail = pending;
    callback();
  }

  async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
    const state = this.state(session);
    const domains = state.login!.policy.allowedRecipientDomains;
    const recipient = envelopeAddress(address.address);
    const domain = recipient.slice(recipient.lastIndexOf('@') + 1);
    const login = state.login!;
    if (domains.length > 0 && !domains.some((allowed) => asciiDomain(allowed) === domain)) {
      // message trace (issue 18): a policy refusal at RCPT is a record naming the recipient.
      const reply = SMTP_REPLIES.recipientDenied;
      await this.deps.trace.record(session, login, { result: 'policy-denied', sender: senderOf(session), recipients: [recipient], reply, detail: recipient });
      return callback(smtpError(reply));
    }
    // Issue 17: a submission the upstream kept refusing (5.2.251-5.2.255) is refused here for a cool-down.
    const held = await this.deps.continuousErrors.held(this.submission(session, login, recipient));
    if (held) {
      const reply = continuousErrorReply(held.refusal, held.remainingMs);
      this.deps.metrics.continuousErrorRefusal(held.refusal.enhanced);
      this.deps.log.info({ session: session.id, mailbox: login.mailbox, sender: senderOf(session), recipient, code: held.refusal.enhanced }, 'submission refused: continuous upstream refusals');
      await this.deps.trace.record(session, login, { result: 'refused', sender: senderOf(session), recipients: [recipient], reply, detail: `held back after continuous ${held.refusal.enhanced} refusals upstream` });
      return callback(smtpError(reply));
    }
    if (state.mailRefusal) return callback(upstreamReplyError(state.mailRefusal));
    const mail = state.pendingMail;
    const upstream = state.upstream;
    if (!mail || !upstream) return this.relay(session, state, login, recipient, address.args, callback);
    state.pendingMail = null;
    // With PIPELINING the RCPT goes out now, behind the MAIL; without, after the MAIL's reply.
    const pipelined = upstream.pipelining ? upstream.recipient(recipient, address.args) : null;
    pipelined?.catch(() => {});
    if (pipelined) this.dataAheadIfSent(session, upstream);
    let mailReply: SmtpReply;
    try {
      mailReply = await mail;
    } catch (error) {
      this.dropUpstream(state, login, false, upstream);
      this.deps.log.warn({ mailbox: login.mailbox, command: 'MAIL', cause: (error as Error).message }, 'upstream command failed');
      const reply = SMTP_REPLIES.upstreamUnavailable;
      // message trace (issue 18): the upstream went away before it answered MAIL.
      await this.deps.trace.record(session, login, { result: 'failed', sender: senderOf(session), recipients: [recipient], reply, detail: (error as Error).message });
      return callback(smtpError(reply));
    }
    if (mailReply.code < 200 || mailReply.code >= 300) {
      // The upstream's verdict on MAIL is the client's verdict, given at this RCPT and every later one. The
      // pipelined RCPT's reply (a 503) is read before the session goes back; the pool reuses it only if it is still
      // fit (a 421 has already ended it: UpstreamSmtpSession).
      await pipelined?.catch(() => undefined);
      upstream.inTransaction = false;
      state.mailRefusal = mailReply;
      this.dropUpstream(state, login, true, upstream);
      // message trace (issue 18): the upstream refused the sender (e.g. Exchange's 5.7.60 SendAsDenied), once.
      await this.deps.trace.record(session, login, { result: 'refused', sender: senderOf(session), recipients: [recipient], reply: asSpec(mailReply), detail: 'MAIL refused' });
      return callback(upstreamReplyError(mailReply));
    }
    await this.relay(session, state, login, recipient, address.args, callback, pipelined ?? undefined);
  }

  /** Streams the message upstream and answers with the upstream's final reply; a broken upstream is a 4xx. */
  async onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void) {
    const state = this.state(session);
    const login = state.login!;
    const upstream = state.upstream;
    if (!upstream?.usable) {
      this.dropUpstream(state, login, false);
      return callback(smtpError(SMTP_REPLIES.upstreamFailedDuringData));
    }
    const limit = Math.min(this.options.maxMessageBytes, login.policy.maxMessageBytes ?? Infinity);
    const guard = new SizeGuard(limit);
    // Security (issue 17): no bare CR, bare LF or NUL reaches the upstream (SMTP smuggling), and a password revoked
    // while the message streamed stops it before its final "." (also on a revocation heard meanwhile: endRevoked).
    // Issue 17: the From header, read from the head as it streams, is the mailbox or an allowed sender.
    const from = (login.policy.checkFromHeader ?? this.options.checkFromHeader) ? [new FromHeaderGuard((a) => senderAllowed(login, a))] : [];
    const message = new MessageStages(stream, [guard, new LineEndingNormaliser(), ...from, new LoginStillValidCheck(this.deps.store, login.appPasswordId)]);
    message.body.on('error', () => {}); // its errors reach us through upstream.message()
    state.message = message;
    const header = new MessageIdReader();
    stream.on('data', (chunk: Buffer) => header.push(chunk));
    const recipients = session.envelope.rcptTo.map((a) => a.address);
    let reply: SmtpReply;
    try {
      reply = await upstream.message(message.body);
    } catch (error) {
      message.destroy();
      await drain(stream);
      state.message = null;
      this.dropUpstream(state, login, false);
      const oversized = guard.bytes > limit;
      const refusal = message.refusal() ?? (oversized ? SMTP_REPLIES.messageTooBig : SMTP_REPLIES.upstreamFailedDuringData);
      const lost = refusal === SMTP_REPLIES.upstreamFailedDuringData;
      this.deps.metrics.message(oversized ? 'too-big' : lost ? 'upstream-failed' : 'refused', guard.bytes);
      if (refusal.code === 421) this.summaries.closing(session.id, 'login-no-longer-valid');
      // message trace (issue 18): too big for this login, refused by passgate (smuggling, revoked), or the upstream
      // lost before it confirmed.
      await this.deps.trace.record(session, login, {
        result: oversized ? 'policy-denied' : lost ? 'failed' : 'refused',
        sender: senderOf(session),
        recipients,
        reply: refusal,
        sizeBytes: guard.bytes,
        messageId: header.messageId,
        detail: oversized ? `over ${limit} bytes` : from[0]?.reason ?? (error as Error).message,
      });
      return callback(smtpError(refusal));
    }
    state.message = null;
    // Security (issue 17): revoked while the upstream gave its verdict (or refused DATA): the verdict stands, then 421.
    if (message.aborted) setImmediate(() => this.deps.closeConnection(session, SMTP_REPLIES.loginRevoked));
    // The upstream may have refused DATA itself (no 354): the body was never read. smtp-server must see the
    // whole message before it can answer, so read and discard what is left.
    message.destroy();
    await drain(stream);
    upstream.inTransaction = false;
    // Only a 250 surely ends the upstream's transaction (a refusal of DATA itself leaves MAIL and RCPT open):
    // after anything else the session is closed rather than reused.
    this.dropUpstream(state, login, reply.code === 250);
    this.deps.metrics.message(reply.code === 250 ? 'accepted' : 'refused', guard.bytes);
    // Issue 17: the final reply counts for (or, a 250, resets) each recipient's continuous-error memory.
    for (const recipient of recipients) await this.deps.continuousErrors.observe(this.submission(session, login, envelopeAddress(recipient)), reply);
    // message trace (issue 18): the upstream's final reply, its queue id and the Message-ID (also the log line).
    await this.deps.trace.record(session, login, {
      result: reply.code === 250 ? 'relayed' : 'refused',
      sender: senderOf(session),
      recipients,
      reply: asSpec(reply),
      sizeBytes: guard.bytes,
      messageId: header.messageId,
    });
    if (reply.code === 250) {
      this.summaries.get(session.id)?.message(session.envelope.rcptTo.length);
      await this.deps.messages.count(login.appPasswordId, login.policy);
      return callback(null, replyText(reply));
    }
    callback(upstreamReplyError(reply));
  }

  /** The client went away: its upstream session goes back to the pool, or is closed mid-transaction. */
  onClose(session: SMTPServerSession): void {
    this.summaries.closed(session);
    const state = this.states.get(session);
    if (!state) return;
    state.closed = true;
    state.unregister?.();
    // Reused only if idle: a transaction or a reply still outstanding closes it (the pool checks again).
    if (state.login && state.upstream) this.dropUpstream(state, state.login, state.upstream.reusable);
    this.states.delete(session);
  }

  /**
   * Security (issue 17): the password was revoked, removed, turned off or has expired (LiveSessionRegistry). A
   * message streaming now is abandoned upstream before its final "." and answered 421 after the client's final ".";
   * otherwise the client is told 421 at once and the connection closes, so a transaction under way (MAIL and RCPT
   * accepted) is never delivered: its upstream session is closed with it, mid-transaction.
   */
  private endRevoked(session: SMTPServerSession, state: ConnectionState): void {
    if (state.closed) return;
    this.deps.log.info({ session: session.id, user: state.login?.username, appPasswordId: state.login?.appPasswordId }, 'login no longer valid');
    if (state.message) return state.message.abort(SMTP_REPLIES.loginRevokedDuringMessage);
    this.summaries.closing(session.id, 'login-no-longer-valid');
    this.deps.closeConnection(session, SMTP_REPLIES.loginRevoked);
  }

  /**
   * Sends the recipient (or reads the reply of `sent`, the same recipient already sent) and answers with the
   * upstream's reply; a refusal or a failure is a message trace record for `recipient`.
   */
  private async relay(session: SMTPServerSession, state: ConnectionState, login: Login, recipient: string, args: EsmtpParameters, callback: Callback, sent?: Promise<SmtpReply>) {
    const upstream = state.upstream;
    if (!upstream) return callback(smtpError(SMTP_REPLIES.upstreamUnavailable));
    let reply: SmtpReply;
    try {
      const pending = sent ?? upstream.recipient(recipient, args);
      if (!sent) this.dataAheadIfSent(session, upstream);
      reply = await pending;
    } catch (error) {
      this.dropUpstream(state, login, false, upstream);
      this.deps.log.warn({ mailbox: login.mailbox, command: 'RCPT', cause: (error as Error).message }, 'upstream command failed');
      const failed = SMTP_REPLIES.upstreamUnavailable;
      await this.deps.trace.record(session, login, { result: 'failed', sender: senderOf(session), recipients: [recipient], reply: failed, detail: (error as Error).message });
      return callback(smtpError(failed));
    }
    if (reply.code >= 200 && reply.code < 300) return callback();
    await this.deps.continuousErrors.observe(this.submission(session, login, recipient), reply);
    // message trace (issue 18): the upstream refused this recipient.
    await this.deps.trace.record(session, login, { result: 'refused', sender: senderOf(session), recipients: [recipient], reply: asSpec(reply), detail: 'RCPT refused' });
    // The upstream's verdict is the client's verdict: same code, same enhanced code, same text.
    callback(upstreamReplyError(reply));
  }

  /**
   * Issue 22: a pipelining client's DATA is already here, behind the RCPT just sent upstream: DATA goes upstream now,
   * in the same write, and the provider's 354 comes back with the RCPT's reply (UpstreamSmtpSession#sendDataAhead
   * says what happens when the client's DATA does not follow after all). "DATA" as smtp-server reads it: the
   * verb up to a space ("DATA\t" is a 500 there, so it must not go ahead here).
   */
  private dataAheadIfSent(session: SMTPServerSession, upstream: SubmissionSession): void {
    if (upstream.sendDataAhead && /^DATA(?: |$)/i.test(PromptSmtpServer.nextCommand(session) ?? '')) upstream.sendDataAhead();
  }

  private submission(session: SMTPServerSession, login: Login, recipient: string): Submission {
    return { mailbox: login.mailbox, sender: envelopeAddress(senderOf(session)), recipient };
  }

  /** Gives the connection's upstream session back (only if it is still the one given: a late reply may find a newer one). */
  private dropUpstream(state: ConnectionState, login: Login, reusable: boolean, expected: SubmissionSession | null = state.upstream): void {
    if (!state.upstream || state.upstream !== expected) return;
    this.deps.pool.release(login.mailbox, state.upstream, reusable);
    state.upstream = null;
  }

  /** The upstream's failure in the one vocabulary: the audit reason and, outside AUTH, the reply (smtp-replies.ts). */
  private classifyUpstream(error: unknown) {
    const { kind } = upstreamFailure(error);
    return { reason: UPSTREAM_AUDIT_REASONS[kind], reply: UPSTREAM_REPLIES[kind] };
  }

}

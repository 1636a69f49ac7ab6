import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { AcceptedOutcome, Authenticator, AuthOutcome, AuthRequest, LoginOutcome } from '../../src/core/authenticator.js';
import { upstreamFailure, UPSTREAM_AUDIT_REASONS } from '../../src/core/ports/upstream-failure.js';
import type { ImapMetrics } from '../../src/core/imap-metrics.js';
import type { LiveSessionRegistry } from '../../src/core/live-session-registry.js';
import { NetworkList } from '../../src/core/network-list.js';
import { TokenError, type TokenProvider } from '../../src/core/token-provider.js';
import { ImapLineReader, type ReaderEvent } from '../../src/imap/imap-line-reader.js';
import { ImapSession } from '../../src/imap/imap-session.js';
import { ImapMailboxUpstream } from '../../src/upstream/imap/upstream-imap-login.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { runClient } from './fuzz-client.js';
import { ErrorLog, ProcessWatch } from './fuzz-property.js';
import { retainedBound } from './imap-parser.fuzz.js';
import { describeSteps, sentBytes, type Pacing, type Step } from './mutations.js';
import type { Credentials, ImapListenerKind } from './transcripts/imap-transcripts.js';

/**
 * The IMAP session under fuzzing: the real ImapSession on real loopback sockets (plain, STARTTLS, implicit TLS),
 * with fakes only at its ports (an authenticator without argon2, a token provider that fails or an upstream that
 * refuses, so no case leaves passgate), and the invariants every case is checked against.
 */

export const MAX_COMMANDS = 25;
export const MAX_FAILURES = 3;
const PENDING_BYTES = 256 * 1024; // ImapSession.newReader()
export const CREDENTIALS: Credentials = { user: 'reader@example.com', password: 'correct horse "battery" \\ staple' };
export const LISTENERS: ImapListenerKind[] = ['starttls', 'implicit', 'plaintext-listed', 'plaintext-unlisted'];

export interface ImapCase {
  listener: ImapListenerKind;
  steps: Step[];
  pacing: Pacing;
}

/** A tag as RFC 3501 §9 allows it: ASTRING-CHARs but "+". */
const TAGGED = /^([!#$&',\-./0-9:;<=>?@A-Z[\]^_`a-z|}~]+) (OK|NO|BAD) [\x20-\x7e]+$/;
const UNTAGGED = /^\* (OK|NO|BAD|BYE|CAPABILITY|ID) [\x20-\x7e]+$/;
const CONTINUATION = /^\+( [\x20-\x7e]*)?$/;

/** The invariants on what the session wrote, given what the client sent. */
export function checkImapOutput(output: Buffer, input: Buffer, serverClosed: boolean, beforeClientEnd = output.length): void {
  const text = output.toString('latin1');
  // The client connected (fuzz-client throws otherwise) and the server greets at once: silence is only possible
  // when the client left before the greeting arrived, never when the server closed without one.
  if (text.length === 0) return assert.ok(!serverClosed, 'the server closed the connection without a greeting');
  assert.ok(text.endsWith('\r\n'), 'output ends in the middle of a line');
  const lines = text.slice(0, -2).split('\r\n');
  assert.match(lines[0]!, /^\* OK \[CAPABILITY [^\]]+\] passgate ready\.$/, 'greeting');
  const sent = input.toString('latin1');
  let byeAt = -1;
  let byeEnd = 0;
  let offset = 0;
  lines.forEach((l, i) => {
    offset += l.length + 2;
    assert.ok(!l.includes('\r') && !l.includes('\n'), `bare CR or LF in ${JSON.stringify(l)}`);
    if (byeAt >= 0) assert.ok(i === byeAt + 1 && / OK LOGOUT completed\.$/.test(l), `line after BYE: ${JSON.stringify(l)}`);
    if (l.startsWith('* ')) {
      assert.match(l, UNTAGGED);
      if (l.startsWith('* BYE ')) [byeAt, byeEnd] = [i, offset];
    } else if (l.startsWith('+')) {
      assert.match(l, CONTINUATION);
    } else {
      const m = TAGGED.exec(l);
      assert.ok(m, `not an IMAP response: ${JSON.stringify(l)}`);
      assert.ok(sent.includes(m[1]!), `tag ${m[1]} was never sent`);
    }
  });
  // At most one reply set per received line: no amplification of garbage.
  assert.ok(lines.length <= 4 * (MAX_COMMANDS + MAX_FAILURES + 2), `${lines.length} lines`);
  // A BYE that arrived before the client ended the connection must be followed by the server's own close.
  if (byeAt >= 0 && byeEnd <= beforeClientEnd) assert.ok(serverClosed, 'BYE without closing the connection');
}

class FakeAuthenticator {
  logins = 0;
  async authenticate(request: AuthRequest): Promise<AuthOutcome> {
    this.logins++;
    if (request.username === CREDENTIALS.user && request.password === CREDENTIALS.password) {
      return { ok: true, reason: 'ok', username: request.username, mailbox: request.username, appPasswordId: 'ap1', appPasswordName: 'fuzz', policy: { allowedSenders: [], allowedRecipientDomains: [], maxMessageBytes: null, maxMessagesPerHour: null, maxMessagesPerDay: null, checkFromHeader: null } };
    }
    // A few outcomes besides the wrong password, picked by the password so a case is reproducible.
    const reasons = ['invalid-credentials', 'invalid-credentials', 'invalid-credentials', 'rate-limited', 'unavailable', 'revoked'] as const;
    return { ok: false, reason: reasons[request.password.length % reasons.length]!, temporary: false, delayMs: 0 };
  }
  async upstreamFailed(): Promise<void> {}
  /** Authenticator.login at the port: the password, then the upstream, one outcome. */
  async login<T>(request: AuthRequest, open: (accepted: AcceptedOutcome) => Promise<T>): Promise<LoginOutcome<T>> {
    const outcome = await this.authenticate(request);
    if (!outcome.ok) return outcome;
    try {
      return { ...outcome, session: await open(outcome) };
    } catch (error) {
      const failure = upstreamFailure(error);
      return { ok: false, reason: UPSTREAM_AUDIT_REASONS[failure.kind], temporary: failure.temporary, delayMs: 0, upstream: failure };
    }
  }
}

let readerObserver: ((retained: number) => void) | null = null;
let readersInstrumented = false;

/**
 * Reports every ImapLineReader's buffer size after each push() and resume() to `observer` (the session keeps its
 * reader private, and makes a new one at STARTTLS). The wrap is installed once and only observes.
 */
function observeReaders(observer: ((retained: number) => void) | null): void {
  readerObserver = observer;
  if (readersInstrumented) return;
  readersInstrumented = true;
  const { push, resume } = ImapLineReader.prototype;
  ImapLineReader.prototype.push = function (this: ImapLineReader, chunk: Buffer): ReaderEvent[] {
    const events = push.call(this, chunk);
    readerObserver?.(this.retainedBytes);
    return events;
  };
  ImapLineReader.prototype.resume = function (this: ImapLineReader): ReaderEvent[] {
    const events = resume.call(this);
    readerObserver?.(this.retainedBytes);
    return events;
  };
}

interface RunOptions {
  awaitReplies?: boolean;
  expectClose?: boolean;
  quietMs?: number;
  /** The client has every answer it waits for. */
  finished?: (output: string) => boolean;
}

/** The session under test and its ports, with one server per kind of listener. */
export class ImapSessionRig {
  private listener: ImapListenerKind = 'starttls';
  readonly log = new ErrorLog();
  readonly watch = new ProcessWatch();
  readonly authenticator = new FakeAuthenticator();
  /** Largest reader buffer seen in the current case. */
  maxRetained = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly plain: Server,
    private readonly secure: TlsServer,
    private readonly tlsOptions: { cert: string; key: string },
    private readonly refusedPort: number,
  ) {}

  static async start(): Promise<ImapSessionRig> {
    const pair = await generateSelfSignedCertificate({ commonName: 'passgate.test', dnsNames: ['passgate.test'], ipAddresses: ['127.0.0.1'] });
    // A port nobody listens on: the upstream login of a good password fails at once, as "unavailable".
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const refusedPort = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const rig: ImapSessionRig = new ImapSessionRig(
      createNetServer((socket) => rig.accept(socket, false)),
      createTlsServer({ ...pair }, (socket) => rig.accept(socket, true)),
      pair,
      refusedPort,
    );
    await new Promise<void>((r) => rig.plain.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => rig.secure.listen(0, '127.0.0.1', r));
    observeReaders((retained) => (rig.maxRetained = Math.max(rig.maxRetained, retained)));
    rig.watch.start();
    return rig;
  }

  private accept(socket: Socket, secure: boolean): void {
    socket.setNoDelay(true); // as net/accept-client.ts does for every listener
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const kind = this.listener;
    // The token provider fails for one listener kind and succeeds for the others, whose upstream then refuses.
    const tokens: TokenProvider = {
      getAccessToken: async (mailbox) => {
        if (kind === 'starttls') throw new TokenError('temporary', mailbox, 'fuzz: no token');
        return { token: 'fuzz-token', expiresAt: Date.now() + 3_600_000 };
      },
      status: async () => [],
      invalidateAccessToken: async () => false,
      close: async () => {},
    };
    const metrics: ImapMetrics = {
      bytes() {},
      sessions: { opened() {}, authenticated() {}, closed() {} },
      upstream: { connect() {}, auth() {}, command() {} },
    };
    const session = new ImapSession(
      socket,
      { ip: '127.0.0.1', port: socket.remotePort ?? 0, secure, id: 'fuzz', wire: socket },
      {
        authenticator: this.authenticator as unknown as Authenticator,
        // The real IMAP login behind the port, against a port that refuses connections.
        upstream: new ImapMailboxUpstream(
          { host: '127.0.0.1', port: this.refusedPort, tls: 'implicit', ca_file: null, servername: 'localhost', connect_timeout_seconds: 2 },
          tokens,
          metrics.upstream,
        ),
        registry: { register: () => () => {} } as unknown as LiveSessionRegistry,
        metrics,
        log: this.log,
      },
      {
        listener: kind,
        tlsMode: kind === 'starttls' ? 'starttls' : kind === 'implicit' ? 'implicit' : 'none',
        tlsOptions: () => this.tlsOptions,
        plaintextAuth: new NetworkList(kind === 'plaintext-listed' ? ['127.0.0.1/32'] : kind === 'plaintext-unlisted' ? ['10.99.0.0/16'] : []),
        maxFailures: MAX_FAILURES,
        maxCommands: MAX_COMMANDS,
        loginTimeoutMs: 60_000,
        idleTimeoutMs: 60_000,
      },
    );
    session.start();
  }

  /** Runs one client against a fresh session and checks every invariant. */
  /**
   * Runs one client and checks every invariant. `awaitReplies`: lockstep waits for each answer (unmutated
   * transcripts); `expectClose`: the client never closes first, and the server must close (a limit was reached).
   */
  async run({ listener, steps, pacing }: ImapCase, { awaitReplies = false, expectClose = false, quietMs = 8, finished }: RunOptions = {}): Promise<string> {
    this.listener = listener;
    this.maxRetained = 0;
    const implicit = listener === 'implicit';
    const server = implicit ? this.secure : this.plain;
    const result = await runClient(steps, {
      port: (server.address() as { port: number }).port,
      tls: implicit,
      pacing,
      waitForServerClose: expectClose,
      finished,
      quietMs, // the session answers at once: its ports are fakes
      // A tagged reply, a continuation, or the untagged BAD of a line without a tag.
      awaitReply: awaitReplies ? (out) => /^([^* ]+ (OK|NO|BAD) |\+|\* (BAD|BYE) )[^\r\n]*\r\n/m.test(out) : undefined,
      greeted: (out) => out.includes('\r\n'),
      tlsAccepted: (last) => / OK Begin TLS negotiation now\.$/.test(last),
      closing: (out) => out.includes('* BYE '),
    });
    const context = `listener ${listener}, ${pacing}: ${describeSteps(steps).slice(0, 2000)}\noutput: ${JSON.stringify(result.output.toString('latin1').slice(-2000))}`;
    const problems = [...this.watch.take(), ...this.log.take()];
    assert.deepEqual(problems, [], context);
    assert.ok(result.closed, `the connection did not close; ${context}`);
    if (expectClose) assert.ok(result.serverClosed, `the server did not close the connection; ${context}`);
    try {
      checkImapOutput(result.output, sentBytes(steps), result.serverClosed, result.beforeClientEnd);
    } catch (error) {
      (error as Error).message += `\n${context}`;
      throw error;
    }
    const bound = retainedBound({ maxPendingBytes: PENDING_BYTES });
    assert.ok(this.maxRetained <= bound, `reader held ${this.maxRetained} octets > ${bound}; ${context}`);
    return result.output.toString('latin1');
  }

  async close(): Promise<void> {
    observeReaders(null);
    this.watch.stop();
    for (const socket of this.sockets) socket.destroy();
    await new Promise((r) => this.plain.close(r));
    await new Promise((r) => this.secure.close(r));
  }
}


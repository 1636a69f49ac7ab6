import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import fc from 'fast-check';
import type { Authenticator, AuthOutcome, AuthRequest } from '../../src/core/authenticator.js';
import type { ImapMetrics } from '../../src/core/imap-metrics.js';
import type { LiveSessionRegistry } from '../../src/core/live-session-registry.js';
import { NetworkList } from '../../src/core/network-list.js';
import { TokenError, type TokenProvider } from '../../src/core/token-provider.js';
import { ImapLineReader, type ReaderEvent } from '../../src/imap/imap-line-reader.js';
import { ImapSession } from '../../src/imap/imap-session.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { runClient } from './fuzz-client.js';
import { ErrorLog, ProcessWatch, type FuzzProperty, type FuzzTarget } from './fuzz-property.js';
import { retainedBound } from './imap-parser.fuzz.js';
import { IMAP_TOKENS } from './imap-parser.fuzz.js';
import { describeSteps, line, mutate, mutation, pacing, randomSteps, send, sentBytes, type Pacing, type Step } from './mutations.js';
import { IMAP_TRANSCRIPTS, type Credentials, type ImapListenerKind } from './transcripts/imap-transcripts.js';

/**
 * Fuzzing the IMAP session before login: the real ImapSession on real loopback sockets (plain, STARTTLS, implicit
 * TLS), with fakes only at its ports (an authenticator without argon2, a token provider that fails or an upstream
 * that refuses, so no case leaves passgate). Invariants: every line written is a well-formed IMAP response, no
 * exception escapes, the reader's memory stays within the limits, and the limits end the session with BYE.
 */

const MAX_COMMANDS = 25;
const MAX_FAILURES = 3;
const PENDING_BYTES = 256 * 1024; // ImapSession.newReader()
const CREDENTIALS: Credentials = { user: 'reader@example.com', password: 'correct horse "battery" \\ staple' };
const LISTENERS: ImapListenerKind[] = ['starttls', 'implicit', 'plaintext-listed', 'plaintext-unlisted'];

interface ImapCase {
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
  if (text.length === 0) return; // e.g. an implicit-TLS handshake the client never finished
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
      return { ok: true, reason: 'ok', username: request.username, mailbox: request.username, appPasswordId: 'ap1', appPasswordName: 'fuzz', policy: { allowedSenders: [], allowedRecipientDomains: [], maxMessageBytes: null, maxMessagesPerHour: null, maxMessagesPerDay: null } };
    }
    // A few outcomes besides the wrong password, picked by the password so a case is reproducible.
    const reasons = ['invalid-credentials', 'invalid-credentials', 'invalid-credentials', 'rate-limited', 'unavailable', 'revoked'] as const;
    return { ok: false, reason: reasons[request.password.length % reasons.length]!, temporary: false, delayMs: 0 };
  }
  async upstreamFailed(): Promise<void> {}
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
  private readonly originalPush = ImapLineReader.prototype.push;
  private readonly originalResume = ImapLineReader.prototype.resume;

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
    rig.instrumentReader();
    rig.watch.start();
    return rig;
  }

  /** Observes the reader's buffer after every call (the session keeps its reader private). */
  private instrumentReader(): void {
    const { originalPush, originalResume } = this;
    const seen = (retained: number) => (this.maxRetained = Math.max(this.maxRetained, retained));
    ImapLineReader.prototype.push = function (this: ImapLineReader, chunk: Buffer): ReaderEvent[] {
      const events = originalPush.call(this, chunk);
      seen(this.retainedBytes);
      return events;
    };
    ImapLineReader.prototype.resume = function (this: ImapLineReader): ReaderEvent[] {
      const events = originalResume.call(this);
      seen(this.retainedBytes);
      return events;
    };
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
      close: async () => {},
    };
    const metrics: ImapMetrics = { bytes() {}, sessionOpened() {}, sessionClosed() {} };
    const session = new ImapSession(
      socket,
      { ip: '127.0.0.1', port: socket.remotePort ?? 0, secure, id: 'fuzz' },
      {
        authenticator: this.authenticator as unknown as Authenticator,
        tokens,
        registry: { register: () => () => {} } as unknown as LiveSessionRegistry,
        metrics,
        log: this.log,
        upstream: { host: '127.0.0.1', port: this.refusedPort, tls: 'implicit', servername: 'localhost', timeoutMs: 2000 },
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
    ImapLineReader.prototype.push = this.originalPush;
    ImapLineReader.prototype.resume = this.originalResume;
    this.watch.stop();
    for (const socket of this.sockets) socket.destroy();
    await new Promise((r) => this.plain.close(r));
    await new Promise((r) => this.secure.close(r));
  }
}

const transcriptCase = (): fc.Arbitrary<ImapCase> =>
  fc
    .record({
      transcript: fc.constantFrom(...IMAP_TRANSCRIPTS),
      otherListener: fc.option(fc.constantFrom(...LISTENERS), { freq: 4 }),
      mutations: fc.array(mutation(), { maxLength: 5 }),
      pacing: pacing(),
    })
    .map(({ transcript, otherListener, mutations, pacing }) => ({
      listener: otherListener ?? transcript.listener,
      steps: mutate(transcript.steps(CREDENTIALS), mutations),
      pacing,
    }));

const randomCase = (): fc.Arbitrary<ImapCase> =>
  fc.record({ listener: fc.constantFrom(...LISTENERS), steps: randomSteps(IMAP_TOKENS), pacing: pacing() });

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** Lines that are one command (or one bad line) each, and neither log in, log out, nor start TLS or SASL. */
const harmlessLine = (): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom('a NOOP', 'b CAPABILITY', 'c ID NIL', '', 'd SELECT INBOX', 'GET / HTTP/1.0', 'e LOGIN', 'f AUTHENTICATE'),
    fc.string({ unit: fc.constantFrom(...'ab c1*()"\\[]%+'.split('')), maxLength: 30 }),
  ).filter((l) => !/LOGOUT|STARTTLS|\{/i.test(l));

function limitProperties(rig: () => ImapSessionRig): FuzzProperty[] {
  return [
    {
      name: 'imap session: more commands than max_commands_before_login end it with BYE',
      numRuns: 15,
      property: fc.asyncProperty(
        fc.array(harmlessLine(), { minLength: MAX_COMMANDS + 1, maxLength: MAX_COMMANDS + 15 }),
        fc.constantFrom(...LISTENERS),
        fc.constantFrom<Pacing>('pipelined', 'early'),
        async (lines, listener, pacing) => {
          const out = await rig().run({ listener, pacing, steps: lines.map(line) }, { expectClose: true });
          assert.match(out, /^\* BYE Too many commands before login\r\n/m);
        },
      ),
    },
    {
      name: 'imap session: a line longer than the limit ends it with BYE',
      numRuns: 15,
      property: fc.asyncProperty(
        fc.array(harmlessLine(), { maxLength: 5 }),
        // What the long line is: a command, a SASL response (PLAIN, or LOGIN's user or password), or a literal's rest.
        fc.constantFrom([], ['a AUTHENTICATE PLAIN'], ['b AUTHENTICATE LOGIN'], ['c AUTHENTICATE LOGIN', b64(CREDENTIALS.user)], ['d LOGIN {5}']),
        fc.integer({ min: 8193, max: 60_000 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.constantFrom(...LISTENERS),
        async (lines, opener, size, pattern, listener) => {
          const filler = Buffer.alloc(size);
          for (let i = 0; i < size; i++) filler[i] = pattern[i % pattern.length] === 0x0a ? 0x20 : pattern[i % pattern.length]!;
          const steps = [...lines.map(line), ...opener.map(line), send(filler)];
          const out = await rig().run({ listener, pacing: 'lockstep', steps }, { expectClose: true });
          assert.match(out, /^\* BYE Line too long\r\n/m);
        },
      ),
    },
    {
      name: 'imap session: max_failures_per_connection failed logins end it with BYE',
      numRuns: 15,
      property: fc.asyncProperty(
        fc.array(fc.tuple(fc.string({ unit: 'grapheme-ascii', maxLength: 20 }), fc.string({ unit: 'grapheme-ascii', maxLength: 20 })), { minLength: MAX_FAILURES, maxLength: MAX_FAILURES }),
        fc.constantFrom<ImapListenerKind>('implicit', 'plaintext-listed'),
        async (attempts, listener) => {
          const quote = (s: string) => `"${s.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
          const steps = attempts.map(([user, password], i) => line(`L${i} LOGIN ${quote(user)} ${quote(`${password}-wrong`)}`));
          const out = await rig().run({ listener, pacing: 'lockstep', steps }, { expectClose: true });
          assert.match(out, /^\* BYE Too many failed logins\r\n/m);
        },
      ),
    },
  ];
}

/** Valid commands, each as its client sends it all at once (literals and SASL lines included), with no login. */
const pipelinedCommand = (): fc.Arbitrary<{ text: (tag: string) => string; login: boolean }> => {
  const password = fc.constantFrom('wrong', CREDENTIALS.password, 'pässwörd', '');
  const quote = (t: string) => `"${t.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
  return fc.oneof(
    fc.constantFrom('NOOP', 'CAPABILITY', 'ID NIL', 'ID ("name" "fuzz")', 'SELECT INBOX', 'AUTHENTICATE CRAM-MD5').map((c) => ({ text: (t: string) => `${t} ${c}\r\n`, login: false })),
    fc.constant({ text: (t: string) => `${t} AUTHENTICATE PLAIN\r\n*\r\n`, login: false }),
    password.map((p) => ({ text: (t: string) => `${t} LOGIN ${quote(CREDENTIALS.user)} ${quote(p)}\r\n`, login: true })),
    password.map((p) => ({
      text: (t: string) => `${t} LOGIN {${Buffer.byteLength(CREDENTIALS.user)}}\r\n${CREDENTIALS.user} {${Buffer.byteLength(p)}+}\r\n${p}\r\n`,
      login: true,
    })),
    password.map((p) => ({ text: (t: string) => `${t} AUTHENTICATE PLAIN ${b64(`\0${CREDENTIALS.user}\0${p}`) || '='}\r\n`, login: true })),
    password.map((p) => ({ text: (t: string) => `${t} AUTHENTICATE PLAIN\r\n${b64(`\0${CREDENTIALS.user}\0${p}`)}\r\n`, login: true })),
    password.map((p) => ({ text: (t: string) => `${t} AUTHENTICATE LOGIN\r\n${b64(CREDENTIALS.user)}\r\n${b64(p) || '='}\r\n`, login: true })),
  );
};

/** The session properties, on a rig the caller starts (`rig` is read when a case runs). */
export function imapSessionProperties(rig: () => ImapSessionRig): FuzzProperty[] {
  return [
    {
      name: 'imap session: mutated real transcripts keep every invariant',
      numRuns: 80,
      property: fc.asyncProperty(transcriptCase(), (c) => rig().run(c).then(() => {})),
    },
    {
      name: 'imap session: random bytes keep every invariant',
      numRuns: 40,
      property: fc.asyncProperty(randomCase(), (c) => rig().run(c).then(() => {})),
    },
    {
      name: 'imap session: pipelined valid commands, cut anywhere, get one tagged reply each, in order',
      numRuns: 40,
      property: fc.asyncProperty(
        fc.array(pipelinedCommand(), { minLength: 1, maxLength: 10 }).filter((cs) => cs.filter((c) => c.login).length < MAX_FAILURES),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.constantFrom<ImapListenerKind>('implicit', 'plaintext-listed'),
        async (commands, cuts, listener) => {
          const input = Buffer.from(commands.map((c, i) => c.text(`t${i + 1}`)).join(''), 'utf8');
          const at = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
          const steps = [0, ...at].map((from, i, all) => send(input.subarray(from, all[i + 1] ?? input.length))).filter((s) => 'send' in s && s.send.length > 0);
          const out = await rig().run({ listener, pacing: 'pipelined', steps }, { finished: (o) => new RegExp(`^t${commands.length} `, 'm').test(o) });
          const tagged = [...out.matchAll(/^(t\d+) (OK|NO|BAD) /gm)].map((m) => m[1]);
          assert.deepEqual(tagged, commands.map((_, i) => `t${i + 1}`), out);
        },
      ),
    },
    ...limitProperties(rig),
  ];
}

export async function openImapSessionTarget(): Promise<FuzzTarget> {
  const rig = await ImapSessionRig.start();
  return { properties: imapSessionProperties(() => rig), close: () => rig.close() };
}

/** The transcripts unmutated: each tag the client sent is answered (the fuzz starts from conversations that work). */
export async function checkUnmutatedTranscripts(rig: ImapSessionRig): Promise<void> {
  for (const transcript of IMAP_TRANSCRIPTS) {
    const steps = transcript.steps(CREDENTIALS);
    const out = await rig.run({ listener: transcript.listener, steps, pacing: 'lockstep' }, { awaitReplies: true });
    const commands = /^(\S+) (capability|ID|authenticate|LOGIN|STARTTLS|LOGOUT|select|LIST|NOOP)\b/gim;
    const tags = [...sentBytes(steps).toString('latin1').matchAll(commands)].map((m) => m[1]!);
    for (const tag of tags) assert.match(out, new RegExp(`^${tag} (OK|NO|BAD) `, 'm'), `${transcript.client}: no reply to ${tag}\n${out}`);
  }
}

import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import fc from 'fast-check';
import type { AcceptedOutcome, Authenticator, AuthOutcome, AuthRequest, LoginOutcome } from '../../src/core/authenticator.js';
import type { LiveSessionRegistry } from '../../src/core/live-session-registry.js';
import { NetworkList } from '../../src/core/network-list.js';
import type { Pop3Metrics } from '../../src/core/pop3-metrics.js';
import { upstreamFailure, UPSTREAM_AUDIT_REASONS } from '../../src/core/ports/upstream-failure.js';
import { TokenError, type TokenProvider } from '../../src/core/token-provider.js';
import { decodeSaslPlain, parsePop3Command } from '../../src/pop3/pop3-command-parser.js';
import { Pop3LineReader } from '../../src/pop3/pop3-line-reader.js';
import { Pop3Session } from '../../src/pop3/pop3-session.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { Pop3MailboxUpstream } from '../../src/upstream/pop3/pop3-mailbox-upstream.js';
import { runClient } from './fuzz-client.js';
import { ErrorLog, ProcessWatch, type FuzzProperty, type FuzzTarget } from './fuzz-property.js';
import { describeSteps, line, mutate, mutation, pacing, randomSteps, sentBytes, STARTTLS_HANDSHAKE, tokenSoup, type Pacing, type Step } from './mutations.js';

/**
 * Fuzzing POP3 before login: the pure framing (Pop3LineReader, parsePop3Command, decodeSaslPlain) with any bytes,
 * and the real Pop3Session on loopback sockets (plain, STLS, implicit TLS) with fakes at its ports, fed mutated
 * real transcripts and token soup. Invariants: no exception escapes, every line written is a POP3 reply, the limits
 * end the session, and what the reader holds stays bounded.
 */

export const MAX_COMMANDS = 25;
export const MAX_FAILURES = 3;
const MAX_LINE = 4096; // pop3-session.ts
const USER = 'fetcher@example.com';
const PASSWORD = 'correct horse battery staple';
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

type ListenerKind = 'starttls' | 'implicit' | 'plaintext-listed' | 'plaintext-unlisted';
const LISTENERS: ListenerKind[] = ['starttls', 'implicit', 'plaintext-listed', 'plaintext-unlisted'];

export const POP3_TOKENS = [
  'USER', 'user', 'PASS', 'AUTH', 'PLAIN', 'XOAUTH2', 'CAPA', 'STLS', 'NOOP', 'QUIT', 'APOP', 'LIST', 'RETR', 'STAT', 'TOP', 'UIDL',
  USER, PASSWORD, b64(`\0${USER}\0${PASSWORD}`), '*', '=', '+', '.', ' ', '\r\n', '\n', '\r', '\0', '\x80', 'é', 'a'.repeat(300),
];

/** Real transcripts, as clients send them, per listener. */
const TRANSCRIPTS: { listener: ListenerKind; steps: Step[] }[] = [
  { listener: 'implicit', steps: [line('CAPA'), line(`USER ${USER}`), line(`PASS ${PASSWORD}`), line('STAT'), line('QUIT')] },
  { listener: 'implicit', steps: [line(`AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`), line('QUIT')] },
  { listener: 'implicit', steps: [line('AUTH PLAIN'), line(b64(`${USER}\0${USER}\0${PASSWORD}`)), line('QUIT')] },
  { listener: 'implicit', steps: [line('AUTH'), line('AUTH PLAIN'), line('*'), line(`USER ${USER}`), line('PASS wrong'), line('QUIT')] },
  { listener: 'starttls', steps: [line('CAPA'), line('STLS'), STARTTLS_HANDSHAKE, line('CAPA'), line(`USER ${USER}`), line(`PASS ${PASSWORD}`), line('QUIT')] },
  { listener: 'starttls', steps: [line(`USER ${USER}`), line(`PASS ${PASSWORD}`), line('APOP x y'), line('QUIT')] },
  { listener: 'plaintext-listed', steps: [line(`USER ${USER}`), line(`PASS ${PASSWORD}`), line('NOOP'), line('QUIT')] },
  { listener: 'plaintext-unlisted', steps: [line('CAPA'), line(`USER ${USER}`), line(`AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`), line('QUIT')] },
];

/** A POP3 reply line: status, SASL continuation, or (inside CAPA and AUTH listings) a keyword line or the end dot. */
const REPLY = /^(\+OK( [\x20-\x7e]*)?|-ERR [\x20-\x7e]+|\+ ?|[A-Z][A-Z0-9-]*( [\x20-\x7e]+)?|\.)$/;

export function checkPop3Output(output: Buffer, serverClosed: boolean, beforeClientEnd: number): void {
  const text = output.toString('latin1');
  if (text.length === 0) return;
  assert.ok(text.endsWith('\r\n'), 'output ends in the middle of a line');
  const lines = text.slice(0, -2).split('\r\n');
  assert.equal(lines[0], '+OK passgate ready.', 'greeting');
  for (const l of lines) assert.match(l, REPLY);
  assert.ok(lines.length <= 8 * (MAX_COMMANDS + 2), `${lines.length} lines`);
  // A limit's -ERR (the session's last words) that reached the client before it hung up: the server closed too.
  const last = lines.at(-1)!;
  if (/^-ERR (Too many|Line too long|\[AUTH\] Too many)/.test(last) && text.length <= beforeClientEnd) assert.ok(serverClosed, 'limit -ERR without a close');
}

class FakeAuthenticator {
  async authenticate(request: AuthRequest): Promise<AuthOutcome> {
    if (request.username === USER && request.password === PASSWORD) {
      return { ok: true, reason: 'ok', username: USER, mailbox: USER, appPasswordId: 'ap1', appPasswordName: 'fuzz', policy: { allowedSenders: [], allowedRecipientDomains: [], maxMessageBytes: null, maxMessagesPerHour: null, maxMessagesPerDay: null, checkFromHeader: null } };
    }
    const reasons = ['invalid-credentials', 'invalid-credentials', 'rate-limited', 'unavailable', 'revoked'] as const;
    return { ok: false, reason: reasons[request.password.length % reasons.length]!, temporary: false, delayMs: 0 };
  }
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

interface Pop3Case {
  listener: ListenerKind;
  steps: Step[];
  pacing: Pacing;
}

/** The session under test, one loopback server per transport; the upstream is a refusing port or has no token. */
export class Pop3SessionRig {
  private listener: ListenerKind = 'starttls';
  readonly log = new ErrorLog();
  readonly watch = new ProcessWatch();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly plain: Server,
    private readonly secure: TlsServer,
    private readonly tlsOptions: { cert: string; key: string },
    private readonly refusedPort: number,
  ) {}

  static async start(): Promise<Pop3SessionRig> {
    const pair = await generateSelfSignedCertificate({ commonName: 'passgate.test', dnsNames: ['passgate.test'], ipAddresses: ['127.0.0.1'] });
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const refusedPort = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const rig: Pop3SessionRig = new Pop3SessionRig(
      createNetServer((socket) => rig.accept(socket, false)),
      createTlsServer({ ...pair }, (socket) => rig.accept(socket, true)),
      pair,
      refusedPort,
    );
    await new Promise<void>((r) => rig.plain.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => rig.secure.listen(0, '127.0.0.1', r));
    rig.watch.start();
    return rig;
  }

  private accept(socket: Socket, secure: boolean): void {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const kind = this.listener;
    const tokens: TokenProvider = {
      getAccessToken: async (mailbox) => {
        if (kind === 'starttls') throw new TokenError('temporary', mailbox, 'fuzz: no token');
        return { token: 'fuzz-token', expiresAt: Date.now() + 3_600_000 };
      },
      status: async () => [],
      invalidateAccessToken: async () => false,
      close: async () => {},
    };
    const metrics: Pop3Metrics = { bytes() {}, sessions: { opened() {}, authenticated() {}, closed() {} }, upstream: { connect() {}, auth() {}, command() {} } };
    const session = new Pop3Session(
      socket,
      { ip: '127.0.0.1', port: socket.remotePort ?? 0, secure, id: 'fuzz', wire: socket },
      {
        authenticator: new FakeAuthenticator() as unknown as Authenticator,
        upstream: new Pop3MailboxUpstream(
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

  async run({ listener, steps, pacing }: Pop3Case, { expectClose = false } = {}): Promise<string> {
    this.listener = listener;
    const implicit = listener === 'implicit';
    const server = implicit ? this.secure : this.plain;
    const result = await runClient(steps, {
      port: (server.address() as { port: number }).port,
      tls: implicit,
      pacing,
      waitForServerClose: expectClose,
      quietMs: 8,
      greeted: (out) => out.includes('\r\n'),
      tlsAccepted: (last) => last === '+OK Begin TLS negotiation.',
      closing: (out) => /^-ERR (Too many|Line too long)/m.test(out),
    });
    const context = `listener ${listener}, ${pacing}: ${describeSteps(steps).slice(0, 2000)}\noutput: ${JSON.stringify(result.output.toString('latin1').slice(-2000))}`;
    assert.deepEqual([...this.watch.take(), ...this.log.take()], [], context);
    assert.ok(result.closed, `the connection did not close; ${context}`);
    if (expectClose) assert.ok(result.serverClosed, `the server did not close the connection; ${context}`);
    try {
      checkPop3Output(result.output, result.serverClosed, result.beforeClientEnd);
    } catch (error) {
      (error as Error).message += `\n${context}`;
      throw error;
    }
    return result.output.toString('latin1');
  }

  async close(): Promise<void> {
    this.watch.stop();
    for (const socket of this.sockets) socket.destroy();
    await new Promise((r) => this.plain.close(r));
    await new Promise((r) => this.secure.close(r));
  }
}

const anyBytes = (): fc.Arbitrary<Buffer> =>
  fc.oneof(
    fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
    tokenSoup(POP3_TOKENS, 60),
    fc.tuple(fc.constantFrom(...TRANSCRIPTS), fc.array(mutation(), { maxLength: 6 })).map(([t, m]) => sentBytes(mutate(t.steps, m))),
  );

/** The pure framing: any bytes, cut anywhere. */
export const pop3ParserProperties: FuzzProperty[] = [
  {
    name: 'pop3 reader: lines are the same however the input is chunked, none longer than the limit, nothing thrown',
    numRuns: 300,
    property: fc.property(anyBytes(), fc.array(fc.nat({ max: 700 }), { maxLength: 8 }), (input, cuts) => {
      const read = (chunks: Buffer[]) => {
        const reader = new Pop3LineReader(64);
        const out: string[] = [];
        for (const chunk of chunks) {
          reader.push(chunk);
          for (let r = reader.next(); r !== null; r = reader.next()) {
            if (r.type === 'too-long') return [...out, '<too-long>'];
            assert.ok(Buffer.byteLength(r.line, 'latin1') <= 64 * 4);
            out.push(r.line);
          }
        }
        return out;
      };
      const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
      const chunks = [0, ...points, input.length].slice(1).map((end, i, ends) => input.subarray(i === 0 ? 0 : ends[i - 1]!, end));
      assert.deepEqual(read(chunks.length > 0 ? chunks : [input]), read([input]));
    }),
  },
  {
    name: 'pop3 parser: every line parses to a 3-4 letter upper-case keyword or null; SASL PLAIN decoding never throws',
    numRuns: 500,
    property: fc.property(anyBytes(), (input) => {
      for (const text of input.toString('utf8').split('\n')) {
        const command = parsePop3Command(text);
        if (command !== null) assert.match(command.name, /^[A-Z]{3,4}$/);
        const plain = decodeSaslPlain(text);
        if (plain !== null) assert.equal([plain.authzid, plain.authcid, plain.password].join('\0').split('\0').length, 3);
      }
    }),
  },
];

export function pop3SessionProperties(rig: () => Pop3SessionRig): FuzzProperty[] {
  const mutatedCase = fc
    .record({
      transcript: fc.constantFrom(...TRANSCRIPTS),
      other: fc.option(fc.constantFrom(...LISTENERS), { freq: 4 }),
      mutations: fc.array(mutation(), { maxLength: 5 }),
      pacing: pacing(),
    })
    .map(({ transcript, other, mutations, pacing }): Pop3Case => ({ listener: other ?? transcript.listener, steps: mutate(transcript.steps, mutations), pacing }));
  const randomCase = fc.record({ listener: fc.constantFrom(...LISTENERS), steps: randomSteps(POP3_TOKENS), pacing: pacing() });
  return [
    {
      name: 'pop3 session: mutated real transcripts get POP3 replies only, and nothing escapes',
      numRuns: 60,
      property: fc.asyncProperty(mutatedCase, async (c) => void (await rig().run(c))),
    },
    {
      name: 'pop3 session: token soup and random bytes get POP3 replies only',
      numRuns: 40,
      property: fc.asyncProperty(randomCase, async (c) => void (await rig().run(c))),
    },
    {
      name: 'pop3 session: more commands than the limit, or a line over the limit, end it with -ERR and a close',
      numRuns: 15,
      property: fc.asyncProperty(
        fc.constantFrom(...LISTENERS),
        fc.boolean(),
        fc.constantFrom<Pacing>('pipelined', 'early'),
        async (listener, longLine, pacing) => {
          const steps = longLine ? [line('CAPA'), line('x'.repeat(MAX_LINE + 10))] : Array.from({ length: MAX_COMMANDS + 3 }, () => line('NOOP'));
          const out = await rig().run({ listener, pacing, steps }, { expectClose: true });
          assert.match(out, longLine ? /^-ERR Line too long\.\r\n/m : /^-ERR Too many commands before login\.\r\n/m);
        },
      ),
    },
  ];
}

/** For `npm run fuzz -- --target pop3`. */
export async function openPop3Target(): Promise<FuzzTarget> {
  const rig = await Pop3SessionRig.start();
  return { properties: [...pop3ParserProperties, ...pop3SessionProperties(() => rig)], close: () => rig.close() };
}

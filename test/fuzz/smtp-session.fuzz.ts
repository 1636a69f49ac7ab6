import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createLogger } from '../../src/observability/logger.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { runClient } from './fuzz-client.js';
import { ProcessWatch, type FuzzProperty, type FuzzTarget } from './fuzz-property.js';
import { describeSteps, line, mutate, mutation, pacing, randomSteps, send, sentBytes, type Pacing, type Step } from './mutations.js';
import type { Credentials } from './transcripts/imap-transcripts.js';
import { SMTP_TRANSCRIPTS, type SmtpListenerName } from './transcripts/smtp-transcripts.js';

/**
 * Fuzzing the SMTP submission session up to and through AUTH: the real gateway (smtp-server, the session handler,
 * the authenticator with argon2, the upstream pool logging in over XOAUTH2) from test/helpers/smtp-harness.ts,
 * driven over loopback sockets by mutated real transcripts and random bytes. Invariants: every reply line is a
 * well-formed SMTP reply, nothing escapes as an exception or an "unexpected error" log, 421 closes the
 * connection, and a good login still works afterwards.
 */

const MAX_FAILURES = 3;
const LISTENERS: SmtpListenerName[] = ['submission', 'submissions', 'lan-local', 'lan-other'];

export const SMTP_TOKENS = [
  'EHLO', 'HELO', 'ehlo', 'STARTTLS', 'AUTH', 'PLAIN', 'LOGIN', 'XOAUTH2', 'CRAM-MD5', 'MAIL FROM:', 'RCPT TO:', 'DATA', 'RSET', 'NOOP',
  'QUIT', 'VRFY', 'HELP', 'BDAT', 'XCLIENT', '<>', '<scanner@example.com>', 'SIZE=', 'BODY=8BITMIME', 'SMTPUTF8', '=', '*', '.',
  'AHNjYW5uZXJAZXhhbXBsZS5jb20Ad3Jvbmc=', 'c2Nhbm5lckBleGFtcGxlLmNvbQ==', 'VXNlcm5hbWU6', '\r\n', '\n', ' ', '\0', '\xff',
];

interface SmtpCase {
  listener: SmtpListenerName;
  steps: Step[];
  pacing: Pacing;
}

const REPLY = /^([2-5][0-5][0-9])([ -])([^\r\n]*)$/;

/** The invariants on what the gateway wrote to one client. */
export function checkSmtpOutput(output: Buffer, input: Buffer, serverClosed: boolean, beforeClientEnd = output.length): void {
  const text = output.toString('latin1');
  // The client connected (fuzz-client throws otherwise) and the server greets at once: silence is only possible
  // when the client left before the greeting arrived, never when the server closed without one.
  if (text.length === 0) return assert.ok(!serverClosed, 'the server closed the connection without a greeting');
  assert.ok(text.endsWith('\r\n'), 'output ends in the middle of a line');
  const lines = text.slice(0, -2).split('\r\n');
  assert.match(lines[0]!, /^(220 passgate\.test ESMTP|421 )/, 'greeting');
  let continued: string | null = null;
  let closingAt = -1;
  let closingEnd = 0;
  let offset = 0;
  lines.forEach((l, i) => {
    offset += l.length + 2;
    const m = REPLY.exec(l);
    assert.ok(m, `not an SMTP reply line: ${JSON.stringify(l)}`);
    const [, code, separator] = m;
    // RFC 5321 §4.2.1: the lines of a multiline reply share the code; the last has SP after it.
    if (continued !== null) assert.equal(code, continued, `multiline reply changed its code: ${JSON.stringify(l)}`);
    continued = separator === '-' ? code! : null;
    assert.equal(closingAt, -1, `a reply after ${lines[closingAt]}: ${JSON.stringify(l)}`);
    if (separator === ' ' && (code === '421' || code === '221')) [closingAt, closingEnd] = [i, offset];
  });
  assert.equal(continued, null, 'the output ends inside a multiline reply');
  const received = input.toString('latin1').split('\n').length + 2;
  assert.ok(lines.length <= 16 * received, `${lines.length} reply lines for ${received} lines received`);
  // A 421 or 221 that arrived before the client ended the connection must be followed by the server's own close.
  if (closingAt >= 0 && closingEnd <= beforeClientEnd) assert.ok(serverClosed, `${lines[closingAt]} without closing the connection`);
}

/** The gateway under test, one harness for every case, and what it must never do. */
export class SmtpGatewayRig {
  readonly watch = new ProcessWatch();
  private constructor(
    readonly harness: SmtpHarness,
    private readonly errors: string[],
  ) {}

  static async start(): Promise<SmtpGatewayRig> {
    const errors: string[] = [];
    const harness = await startSmtpHarness({
      // Error-level events are bugs caught at the edge ("unexpected error in an smtp session"): each fails the case.
      logger: createLogger('error', { write: (entry: string) => void errors.push(entry) }),
      config: {
        // Fuzzing is not about waiting: no failure delay, and 127.0.0.1 trusted with a pair limit it never reaches,
        // so the successful login stays reachable for every case.
        auth: { failure_delay_ms: 0, failure_delay_jitter_ms: 0, max_failures_per_connection: MAX_FAILURES },
        rate_limit: { trusted_networks: ['127.0.0.1/32'], pair: { max_failures: 1_000_000, block_seconds: 1, max_block_seconds: 1 } },
      },
    });
    const rig = new SmtpGatewayRig(harness, errors);
    rig.watch.start();
    return rig;
  }

  get credentials(): Credentials {
    return { user: this.harness.user, password: this.harness.password };
  }

  /**
   * Runs one client and checks every invariant. `awaitReplies`: lockstep waits for each answer (unmutated
   * transcripts); `expectClose`: the client never closes first, and the server must close (a limit was reached).
   */
  async run({ listener, steps, pacing }: SmtpCase, { awaitReplies = false, expectClose = false } = {}): Promise<string> {
    const result = await runClient(steps, {
      awaitReply: awaitReplies ? (out) => /^\d{3} [^\r\n]*\r\n/m.test(out) : undefined,
      port: this.harness.ports[listener]!,
      tls: listener === 'submissions',
      pacing,
      waitForServerClose: expectClose,
      quietMs: 25,
      greeted: (out) => /^(220|421) /m.test(out),
      tlsAccepted: (last) => last === '220 Ready to start TLS',
      closing: (out) => /^(421|221) /m.test(out),
    });
    const context = `listener ${listener}, ${pacing}: ${describeSteps(steps).slice(0, 2000)}\noutput: ${JSON.stringify(result.output.toString('latin1').slice(-2000))}`;
    assert.deepEqual([...this.watch.take(), ...this.errors.splice(0)], [], context);
    assert.ok(result.closed, `the connection did not close; ${context}`);
    if (expectClose) assert.ok(result.serverClosed, `the server did not close the connection; ${context}`);
    try {
      checkSmtpOutput(result.output, sentBytes(steps), result.serverClosed, result.beforeClientEnd);
    } catch (error) {
      (error as Error).message += `\n${context}`;
      throw error;
    }
    return result.output.toString('latin1');
  }

  /** Several clients at once, as a real gateway sees them (and so the suite waits for greetings in parallel). */
  async runAll(cases: readonly SmtpCase[]): Promise<void> {
    await Promise.all(cases.map((c) => this.run(c)));
  }

  async close(): Promise<void> {
    this.watch.stop();
    await this.harness.close();
  }
}

const transcriptCase = (credentials: () => Credentials): fc.Arbitrary<SmtpCase> =>
  fc
    .record({
      transcript: fc.constantFrom(...SMTP_TRANSCRIPTS),
      otherListener: fc.option(fc.constantFrom(...LISTENERS), { freq: 4 }),
      mutations: fc.array(mutation(), { maxLength: 5 }),
      pacing: pacing(),
    })
    .map(({ transcript, otherListener, mutations, pacing }) => ({
      listener: otherListener ?? transcript.listener,
      // Read when the case is generated, i.e. once the rig runs: the password is the harness's.
      get steps() {
        return mutate(transcript.steps(credentials()), mutations);
      },
      pacing,
    }));

const randomCase = (): fc.Arbitrary<SmtpCase> => fc.record({ listener: fc.constantFrom(...LISTENERS), steps: randomSteps(SMTP_TOKENS), pacing: pacing() });

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** The SMTP properties, on a rig the caller starts (`rig` is read when a case runs). */
export function smtpSessionProperties(rig: () => SmtpGatewayRig): FuzzProperty[] {
  const batch = (arb: fc.Arbitrary<SmtpCase>) => fc.array(arb, { minLength: 1, maxLength: 4 });
  return [
    {
      name: 'smtp gateway: mutated real transcripts keep every invariant',
      numRuns: 30,
      weight: 4,
      property: fc.asyncProperty(batch(transcriptCase(() => rig().credentials)), (cases) => rig().runAll(cases)),
    },
    {
      name: 'smtp gateway: random bytes keep every invariant',
      numRuns: 10,
      weight: 2,
      property: fc.asyncProperty(batch(randomCase()), (cases) => rig().runAll(cases)),
    },
    {
      name: 'smtp gateway: max_failures_per_connection failed AUTHs end the connection with 421',
      numRuns: 5,
      property: fc.asyncProperty(
        fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })), { minLength: MAX_FAILURES, maxLength: MAX_FAILURES }),
        fc.constantFrom<SmtpListenerName>('submissions', 'lan-local'),
        async (attempts, listener) => {
          const steps = [line('EHLO fuzz'), ...attempts.map(([user, password]) => line(`AUTH PLAIN ${b64(`\0${user}\0${password}-wrong`)}`))];
          const out = await rig().run({ listener, pacing: 'lockstep', steps }, { expectClose: true });
          assert.match(out, /^421 4\.7\.0 Too many failed logins/m);
        },
      ),
    },
    {
      name: 'smtp gateway: commands without a login past the limits end the connection with 421',
      numRuns: 5,
      property: fc.asyncProperty(
        // smtp-server counts unknown commands and other commands before AUTH separately, 10 each: 20 reach one.
        fc.array(fc.constantFrom('NOOP', 'RSET', 'HELP', 'VRFY postmaster', 'EHLO a', 'HELO b', 'XYZZY', '', 'MAIL FROM:<a@b.example>', 'RCPT TO:<c@d.example>', 'DATA'), {
          minLength: 20,
          maxLength: 30,
        }),
        fc.constantFrom(...LISTENERS),
        fc.constantFrom<Pacing>('lockstep', 'pipelined'),
        async (lines, listener, pacing) => {
          const out = await rig().run({ listener, pacing, steps: lines.map(line) }, { expectClose: true });
          assert.match(out, /^421 /m);
        },
      ),
    },
    {
      name: 'smtp gateway: a command line over the limit ends the connection with 421',
      numRuns: 5,
      property: fc.asyncProperty(fc.integer({ min: 16 * 1024 + 1, max: 100_000 }), fc.constantFrom(...LISTENERS), async (size, listener) => {
        const out = await rig().run({ listener, pacing: 'lockstep', steps: [line('EHLO fuzz'), send(Buffer.alloc(size, 'A'))] }, { expectClose: true });
        assert.match(out, /^421 .*too long/im);
      }),
    },
  ];
}

/** The transcripts unmutated log in (or are refused where the network is not listed): the fuzz starts from them. */
export async function checkUnmutatedTranscripts(rig: SmtpGatewayRig): Promise<void> {
  for (const transcript of SMTP_TRANSCRIPTS) {
    const out = await rig.run({ listener: transcript.listener, steps: transcript.steps(rig.credentials), pacing: 'lockstep' }, { awaitReplies: true });
    if (transcript.client.startsWith('probes')) continue;
    const expected = transcript.listener === 'lan-other' ? /^538 /m : /^235 /m;
    assert.match(out, expected, `${transcript.client}\n${out}`);
    if (transcript.steps(rig.credentials).some((s) => 'send' in s && /^data\r\n/i.test(s.send.toString()))) {
      assert.match(out, /^354 [^\r]*\r\n250 /m, `${transcript.client}: message not accepted\n${out}`);
    }
  }
}

export async function openSmtpSessionTarget(): Promise<FuzzTarget> {
  const rig = await SmtpGatewayRig.start();
  return {
    properties: smtpSessionProperties(() => rig),
    close: async () => {
      await checkUnmutatedTranscripts(rig); // the gateway is still usable after the run
      await rig.close();
    },
  };
}

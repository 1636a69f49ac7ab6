import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { FuzzProperty, FuzzTarget } from './fuzz-property.js';
import { IMAP_TOKENS } from './imap-parser.fuzz.js';
import { CREDENTIALS, ImapSessionRig, LISTENERS, MAX_COMMANDS, MAX_FAILURES, type ImapCase } from './imap-session-rig.js';
import { line, mutate, mutation, pacing, randomSteps, send, sentBytes, type Pacing } from './mutations.js';
import { IMAP_TRANSCRIPTS, type ImapListenerKind } from './transcripts/imap-transcripts.js';

/**
 * Fuzzing the IMAP session before login (imap-session-rig.ts) with mutated real transcripts, random bytes, pipelined
 * commands and the limits. Invariants: every line written is a well-formed IMAP response, no exception escapes,
 * the reader's memory stays within the limits, and the limits end the session with BYE.
 */

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
      weight: 4,
      property: fc.asyncProperty(transcriptCase(), (c) => rig().run(c).then(() => {})),
    },
    {
      name: 'imap session: random bytes keep every invariant',
      numRuns: 40,
      weight: 2,
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

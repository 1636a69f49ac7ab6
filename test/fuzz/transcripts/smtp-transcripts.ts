import { line, send, STARTTLS_HANDSHAKE, type Step } from '../mutations.js';
import type { Credentials } from './imap-transcripts.js';

/** The harness's listeners (test/helpers/smtp-harness.ts) a transcript's client connects to. */
export type SmtpListenerName = 'submission' | 'submissions' | 'lan-local' | 'lan-other';

export interface SmtpClientTranscript {
  client: string;
  listener: SmtpListenerName;
  steps(c: Credentials): Step[];
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const plain = (c: Credentials) => b64(`\0${c.user}\0${c.password}`);

const message = (from: string, to: string) =>
  send(
    [
      `From: <${from}>`,
      `To: <${to}>`,
      'Subject: Scan from KM-C308',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Scanned document attached.',
      '.leading dot, stuffed',
      '.',
      '',
    ].join('\r\n'),
  );

/** Pre-authentication SMTP transcripts as real clients send them, plus a message after AUTH where they send one. */
export const SMTP_TRANSCRIPTS: SmtpClientTranscript[] = [
  {
    client: 'Outlook, 587, STARTTLS then AUTH LOGIN',
    listener: 'submission',
    steps: (c) => [
      line('EHLO DESKTOP-4QJ1R2B'),
      line('STARTTLS'),
      STARTTLS_HANDSHAKE,
      line('EHLO DESKTOP-4QJ1R2B'),
      line('AUTH LOGIN'),
      line(b64(c.user)),
      line(b64(c.password)),
      line('QUIT'),
    ],
  },
  {
    client: 'Thunderbird, 587, STARTTLS then AUTH PLAIN with an initial response, one message',
    listener: 'submission',
    steps: (c) => [
      line('EHLO [192.168.1.23]'),
      line('STARTTLS'),
      STARTTLS_HANDSHAKE,
      line('EHLO [192.168.1.23]'),
      line(`AUTH PLAIN ${plain(c)}`),
      line(`MAIL FROM:<${c.user}> BODY=8BITMIME SIZE=321`),
      line('RCPT TO:<friend@example.org>'),
      line('DATA'),
      message(c.user, 'friend@example.org'),
      line('QUIT'),
    ],
  },
  {
    client: 'a multifunction scanner on a listed LAN port: HELO, AUTH LOGIN without TLS, one message',
    listener: 'lan-local',
    steps: (c) => [
      line('HELO KM-C308'),
      line('AUTH LOGIN'),
      line(b64(c.user)),
      line(b64(c.password)),
      line(`MAIL FROM:<${c.user}>`),
      line('RCPT TO:<office@example.org>'),
      line('DATA'),
      message(c.user, 'office@example.org'),
      line('QUIT'),
    ],
  },
  {
    client: 'a scanner on a LAN port its network is not listed for',
    listener: 'lan-other',
    steps: (c) => [line('HELO KM-C308'), line('AUTH LOGIN'), line(b64(c.user)), line(b64(c.password)), line('QUIT')],
  },
  {
    client: 'curl smtps://, 465, AUTH PLAIN, one message',
    listener: 'submissions',
    steps: (c) => [
      line('EHLO fuzzhost'),
      line(`AUTH PLAIN ${plain(c)}`),
      line(`MAIL FROM:<${c.user}>`),
      line('RCPT TO:<friend@example.org>'),
      line('DATA'),
      message(c.user, 'friend@example.org'),
      line('QUIT'),
    ],
  },
  {
    client: 'python smtplib, 587, starttls() then login() (AUTH PLAIN), lower-case verbs',
    listener: 'submission',
    steps: (c) => [
      line('ehlo [127.0.1.1]'),
      line('STARTTLS'),
      STARTTLS_HANDSHAKE,
      line('ehlo [127.0.1.1]'),
      line(`AUTH PLAIN ${plain(c)}`),
      line(`mail FROM:<${c.user}> size=12`),
      line('rcpt TO:<friend@example.org>'),
      line('data'),
      message(c.user, 'friend@example.org'),
      line('QUIT'),
    ],
  },
  {
    client: 'python smtplib, 465, AUTH LOGIN the way login() falls back to it',
    listener: 'submissions',
    steps: (c) => [line('ehlo [127.0.1.1]'), line(`AUTH LOGIN ${b64(c.user)}`), line(b64(c.password)), line('QUIT')],
  },
  {
    client: 'probes: HTTP, a TLS hello on plaintext, HELP, NOOP',
    listener: 'submission',
    steps: () => [line('GET / HTTP/1.1'), line('Host: mail.example.com'), line(''), send(Buffer.from('16030100a5010000a10303', 'hex')), line('HELP'), line('NOOP')],
  },
];

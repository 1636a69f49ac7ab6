import { line, send, STARTTLS_HANDSHAKE, type Step } from '../mutations.js';

/** Where a transcript's client connects: 143 with STARTTLS, 993, or a plaintext port (its network listed or not). */
export type ImapListenerKind = 'starttls' | 'implicit' | 'plaintext-listed' | 'plaintext-unlisted';

export interface Credentials {
  user: string;
  password: string;
}

export interface ImapClientTranscript {
  client: string;
  listener: ImapListenerKind;
  steps(c: Credentials): Step[];
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const plain = (c: Credentials) => b64(`\0${c.user}\0${c.password}`);
const quote = (s: string) => `"${s.replace(/[\\"]/g, (m) => `\\${m}`)}"`;

/**
 * Pre-authentication IMAP transcripts as real clients send them (tags, case, pacing and quirks from their
 * protocol logs). Each step is one write; a literal's octets are their own step, because a client waits for "+".
 */
export const IMAP_TRANSCRIPTS: ImapClientTranscript[] = [
  {
    client: 'Thunderbird, 993, AUTHENTICATE PLAIN with SASL-IR (RFC 4959)',
    listener: 'implicit',
    steps: (c) => [
      line('1 capability'),
      line('2 ID ("name" "Thunderbird" "version" "115.3.1")'),
      line(`3 authenticate PLAIN ${plain(c)}`),
      line('4 select "INBOX"'),
    ],
  },
  {
    client: 'Thunderbird, 143, STARTTLS then AUTHENTICATE PLAIN',
    listener: 'starttls',
    steps: (c) => [line('1 capability'), line('2 STARTTLS'), STARTTLS_HANDSHAKE, line('3 capability'), line(`4 authenticate PLAIN ${plain(c)}`)],
  },
  {
    client: 'Outlook, 143, STARTTLS then LOGIN with synchronizing literals',
    listener: 'starttls',
    steps: (c) => [
      line('HFE1 CAPABILITY'),
      line('HFE2 STARTTLS'),
      STARTTLS_HANDSHAKE,
      line('HFE3 CAPABILITY'),
      line(`HFE4 LOGIN {${Buffer.byteLength(c.user)}}`),
      line(`${c.user} {${Buffer.byteLength(c.password)}}`),
      line(c.password),
      line('HFE5 LIST "" "*"'),
    ],
  },
  {
    client: 'Outlook, 993, AUTHENTICATE LOGIN',
    listener: 'implicit',
    steps: (c) => [line('1 CAPABILITY'), line('2 AUTHENTICATE LOGIN'), line(b64(c.user)), line(b64(c.password)), line('3 LOGOUT')],
  },
  {
    client: 'python imaplib, 993, LOGIN with a quoted password',
    listener: 'implicit',
    steps: (c) => [line('JEHB1 CAPABILITY'), line(`JEHB2 LOGIN ${c.user} ${quote(c.password)}`), line('JEHB3 LOGOUT')],
  },
  {
    client: 'python imaplib, 993, AUTHENTICATE PLAIN (no SASL-IR)',
    listener: 'implicit',
    steps: (c) => [line('KPOC1 CAPABILITY'), line('KPOC2 AUTHENTICATE PLAIN'), line(plain(c)), line('KPOC3 LOGOUT')],
  },
  {
    client: 'imapflow, 993, LOGIN with non-synchronizing literals (LITERAL+)',
    listener: 'implicit',
    steps: (c) => [
      line('1 CAPABILITY'),
      line('2 ID ("name" "imapflow" "version" "1.0.0" "vendor" "Postal Systems")'),
      send(`3 LOGIN {${Buffer.byteLength(c.user)}+}\r\n${c.user} {${Buffer.byteLength(c.password)}+}\r\n${c.password}\r\n`),
    ],
  },
  {
    client: 'curl imap://, 143, STARTTLS, AUTHENTICATE PLAIN with SASL-IR',
    listener: 'starttls',
    steps: (c) => [line('A001 CAPABILITY'), line('A002 STARTTLS'), STARTTLS_HANDSHAKE, line('A003 CAPABILITY'), line(`A004 AUTHENTICATE PLAIN ${plain(c)}`), line('A005 LIST "" *')],
  },
  {
    client: 'a scanner script on a listed LAN port, bare LF endings (openssl s_client without -crlf)',
    listener: 'plaintext-listed',
    steps: (c) => [send('a1 capability\n'), send(`a2 login ${c.user} ${quote(c.password)}\n`), send('a3 logout\n')],
  },
  {
    client: 'a device on a LAN port its network is not listed for',
    listener: 'plaintext-unlisted',
    steps: (c) => [line('a CAPABILITY'), line(`b LOGIN ${c.user} ${quote(c.password)}`), line(`c AUTHENTICATE PLAIN ${plain(c)}`), line('d LOGOUT')],
  },
  {
    client: 'port scanner probes (HTTP, TLS hello on plaintext, HELP)',
    listener: 'starttls',
    steps: () => [
      line('GET / HTTP/1.0'),
      line(''),
      send(Buffer.from('16030100a5010000a10303', 'hex')),
      line('HELP'),
      line('a001 NOOP'),
    ],
  },
];

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { DovecotServer } from '../helpers/dovecot-server.js';
import { TestOAuthServer } from '../helpers/oauth-server.js';

/**
 * A raw IMAP client: reads responses as lines, with literals ({n}) folded into the line that announced them.
 * Enough to prove the harness without an IMAP library.
 */
class Imap {
  private buffer = Buffer.alloc(0);
  private readonly lines: string[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  static async connect(port: number, options: { tls: boolean; ca: string }): Promise<{ imap: Imap; greeting: string }> {
    const socket = options.tls
      ? tlsConnect({ host: '127.0.0.1', port, ca: [options.ca] }) // verifies the certificate (IP SAN 127.0.0.1)
      : netConnect(port, '127.0.0.1');
    await once(socket, options.tls ? 'secureConnect' : 'connect');
    const imap = new Imap(socket);
    return { imap, greeting: await imap.line() };
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  private parse(): void {
    let line = '';
    let offset = 0;
    for (;;) {
      const end = this.buffer.indexOf('\r\n', offset);
      if (end < 0) return;
      const text = this.buffer.subarray(offset, end).toString('utf8');
      const literal = /\{(\d+)\}$/.exec(text);
      if (literal) {
        const size = Number(literal[1]);
        if (this.buffer.length < end + 2 + size) return; // the literal is not all here yet
        line += `${text}\r\n${this.buffer.subarray(end + 2, end + 2 + size).toString('utf8')}`;
        offset = end + 2 + size;
        continue;
      }
      this.lines.push(line + text);
      line = '';
      this.buffer = this.buffer.subarray(end + 2);
      offset = 0;
      this.wake?.();
    }
  }

  /** The next response line, or a failure after `timeoutMs`. */
  async line(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no IMAP response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => (clearTimeout(timer), resolve());
      });
      this.wake = null;
    }
    return this.lines.shift()!;
  }

  /** Reads lines until one matches; returns all lines read. */
  async until(pattern: RegExp, timeoutMs = 5000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const seen: string[] = [];
    for (;;) {
      const line = await this.line(Math.max(1, deadline - Date.now()));
      seen.push(line);
      if (pattern.test(line)) return seen;
    }
  }

  send(text: string): void {
    this.socket.write(`${text}\r\n`);
  }

  /** Sends a tagged command and returns every line up to and including its tagged completion. */
  async command(tag: string, text: string): Promise<string[]> {
    this.send(`${tag} ${text}`);
    return this.until(new RegExp(`^${tag} (OK|NO|BAD)`));
  }

  /** AUTHENTICATE XOAUTH2 with an initial response; answers a failure challenge ("+ <json>") as RFC 7628 asks. */
  async xoauth2(tag: string, user: string, token: string): Promise<{ lines: string[]; challenge?: Record<string, unknown> }> {
    const ir = Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    this.send(`${tag} AUTHENTICATE XOAUTH2 ${ir}`);
    const first = await this.until(new RegExp(`^(${tag} (OK|NO|BAD)|\\+ )`));
    const last = first.at(-1)!;
    if (!last.startsWith('+ ')) return { lines: first };
    const challenge = JSON.parse(Buffer.from(last.slice(2), 'base64').toString('utf8')) as Record<string, unknown>;
    this.send('');
    return { lines: [...first, ...(await this.until(new RegExp(`^${tag} (OK|NO|BAD)`)))], challenge };
  }

  /** AUTHENTICATE OAUTHBEARER (RFC 7628) with an initial response. */
  async oauthbearer(tag: string, user: string, token: string): Promise<string[]> {
    const ir = Buffer.from(`n,a=${user},\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    this.send(`${tag} AUTHENTICATE OAUTHBEARER ${ir}`);
    return this.until(new RegExp(`^${tag} (OK|NO|BAD)`));
  }

  /** STARTTLS: upgrades this connection in place. */
  async startTls(tag: string, ca: string): Promise<string[]> {
    const lines = await this.command(tag, 'STARTTLS');
    if (!lines.at(-1)!.startsWith(`${tag} OK`)) return lines;
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tlsConnect({ socket: plain, ca: [ca], host: '127.0.0.1' });
    await once(secure, 'secureConnect');
    this.socket = secure;
    this.attach(secure);
    return lines;
  }

  close(): void {
    this.socket.destroy();
  }
}

const message = (subject: string) =>
  Buffer.from(`From: scanner@example.com\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@test>\r\n\r\nHello.\r\n`);

describe('DovecotServer harness (real Dovecot, OAuth 2.0 tokens checked by introspection)', () => {
  let oauth: TestOAuthServer;
  let dovecot: DovecotServer;
  let appToken: string;
  let aliceToken: string;
  const open: Imap[] = [];

  const token = async (form: Record<string, string>): Promise<string> => {
    const response = await fetch(oauth.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: oauth.clientId, client_secret: oauth.clientSecret, ...form }),
    });
    assert.equal(response.status, 200);
    return ((await response.json()) as { access_token: string }).access_token;
  };

  const login = async (user: string, accessToken: string, port: 'imaps' | 'imap' = 'imaps') => {
    const { imap, greeting } = await Imap.connect(port === 'imaps' ? dovecot.imapsPort : dovecot.imapPort, { tls: port === 'imaps', ca: dovecot.cert });
    open.push(imap);
    assert.match(greeting, /^\* OK /);
    const result = await imap.xoauth2('a', user, accessToken);
    return { imap, ...result };
  };

  before(async () => {
    oauth = await new TestOAuthServer().start();
    dovecot = await DovecotServer.start({ introspectionUrl: oauth.introspectionEndpoint, users: ['alice@example.com', 'bob@example.com'] });
    appToken = await token({ grant_type: 'client_credentials', scope: 'https://outlook.office365.com/.default' });
    aliceToken = await token({ grant_type: 'refresh_token', refresh_token: oauth.mintRefreshToken('alice@example.com') });
  });

  after(async () => {
    for (const imap of open) imap.close();
    await dovecot?.stop();
    await oauth?.stop();
  });

  it('logs in with an app-only token over implicit TLS and sees a delivered message in INBOX', async () => {
    const delivered = await dovecot.deliver('alice@example.com', message('first'));
    assert.match(delivered, /\/new\/[^/]+$/);
    const { imap, lines } = await login('alice@example.com', appToken);
    assert.match(lines.at(-1)!, /^a OK /, lines.join('\n'));
    const select = await imap.command('s', 'SELECT INBOX');
    assert.match(select.at(-1)!, /^s OK \[READ-WRITE\]/);
    assert.ok(select.includes('* 1 EXISTS'), select.join('\n'));
    const fetch = await imap.command('f', 'FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    assert.match(fetch[0]!, /^\* 1 FETCH .*Subject: first\r\n/s);
    assert.equal(existsSync(delivered), false, 'Dovecot moved it from new/ to cur/');
    assert.equal((await readdir(`${dovecot.maildir('alice@example.com')}/cur`)).length, 1);
  });

  it('accepts the app-only token for any mailbox, a delegated token only for its own', async () => {
    assert.match((await login('bob@example.com', appToken)).lines.at(-1)!, /^a OK /);
    const carol = await login('carol@example.com', appToken);
    assert.match(carol.lines.at(-1)!, /^a OK /, 'a mailbox not given in users: Dovecot creates its maildir');
    assert.match((await carol.imap.command('s', 'SELECT INBOX')).at(-1)!, /^s OK /);
    assert.match((await login('Alice@Example.com', aliceToken)).lines.at(-1)!, /^a OK /, 'names compare lowercased');
    const other = await login('bob@example.com', aliceToken);
    assert.match(other.lines.at(-1)!, /^a NO \[AUTHENTICATIONFAILED\]/, other.lines.join('\n'));
  });

  it('refuses a bad token with the XOAUTH2 error challenge, then NO [AUTHENTICATIONFAILED]', async () => {
    const before = oauth.counts.introspect;
    const { lines, challenge } = await login('alice@example.com', 'at-not-a-real-token');
    assert.deepEqual(challenge, { status: '401', schemes: 'bearer', scope: 'mail' });
    assert.match(lines.at(-1)!, /^a NO \[AUTHENTICATIONFAILED\]/, lines.join('\n'));
    assert.ok(oauth.counts.introspect > before, 'Dovecot asked the introspection endpoint');
  });

  it('answers NO [UNAVAILABLE] (a temporary failure) while the introspection endpoint is unreachable', async () => {
    const dead = new TestOAuthServer();
    await dead.start();
    const url = dead.introspectionEndpoint;
    await dead.stop();
    const unreachable = await DovecotServer.start({ introspectionUrl: url, users: ['alice@example.com'] });
    try {
      const { imap } = await Imap.connect(unreachable.imapsPort, { tls: true, ca: unreachable.cert });
      open.push(imap);
      const { lines, challenge } = await imap.xoauth2('a', 'alice@example.com', appToken);
      assert.equal(challenge, undefined);
      assert.match(lines.at(-1)!, /^a NO \[UNAVAILABLE\]/, lines.join('\n'));
    } finally {
      await unreachable.stop();
    }
  });

  it('offers STARTTLS on the plain port and logs in after it (OAUTHBEARER)', async () => {
    const { imap, greeting } = await Imap.connect(dovecot.imapPort, { tls: false, ca: dovecot.cert });
    open.push(imap);
    assert.match(greeting, /^\* OK \[CAPABILITY [^\]]*STARTTLS/);
    assert.match((await imap.startTls('t', dovecot.cert)).at(-1)!, /^t OK/);
    const caps = await imap.command('c', 'CAPABILITY');
    assert.match(caps[0]!, /AUTH=XOAUTH2/);
    assert.match(caps[0]!, /AUTH=OAUTHBEARER/);
    assert.match((await imap.oauthbearer('a', 'bob@example.com', appToken)).at(-1)!, /^a OK /, 'OAUTHBEARER works too');
  });

  it('tells a client in IDLE about a delivered message within 3 s; delivery flags land in cur/', async () => {
    const { imap } = await login('bob@example.com', appToken);
    const select = await imap.command('s', 'SELECT INBOX');
    assert.ok(select.includes('* 0 EXISTS'), select.join('\n'));
    imap.send('i IDLE');
    assert.match(await imap.line(), /^\+ /);
    const started = Date.now();
    await dovecot.deliver('bob@example.com', message('while-idle'));
    await imap.until(/^\* 1 EXISTS$/, 3000);
    const seen = await dovecot.deliver('bob@example.com', message('already-read'), ['\\Seen', '\\Flagged']);
    assert.match(seen, /\/cur\/[^/]+:2,FS$/);
    await imap.until(/^\* 2 EXISTS$/, 3000);
    const elapsed = Date.now() - started;
    imap.send('DONE');
    await imap.until(/^i OK/);
    const flags = await imap.command('f', 'FETCH 2 (FLAGS)');
    assert.match(flags[0]!, /^\* 2 FETCH \(FLAGS \((?=.*\\Seen)(?=.*\\Flagged).*\)\)$/);
    console.log(`# IDLE saw two deliveries in ${elapsed} ms`);
  });

  it('stop() is idempotent, ends every Dovecot process and removes the folder', async () => {
    const pid = dovecot.pid!;
    const dir = dovecot.dir;
    await Promise.all([dovecot.stop(), dovecot.stop()]);
    await dovecot.stop();
    assert.throws(() => process.kill(-pid, 0), { code: 'ESRCH' }, 'no process left in its group');
    assert.equal(existsSync(dir), false);
  });
});

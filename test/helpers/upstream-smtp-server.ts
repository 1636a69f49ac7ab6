import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { PromptSmtpServer } from '../../src/smtp/prompt-smtp-server.js';

export interface Delivery {
  /** The mailbox the XOAUTH2 login named. */
  mailbox: string;
  from: string;
  to: string[];
  /** The message as received (kept only when keepBodies is true). */
  raw: Buffer | null;
  bytes: number;
  sha256: string;
  /** MAIL FROM and RCPT parameters as received, e.g. { SIZE: '123', BODY: '8BITMIME' }. */
  mailArgs: Record<string, unknown>;
}

export interface UpstreamOptions {
  key: string;
  cert: string;
  /** RFC 7662 introspection endpoint of the test OAuth server: every token is checked there over HTTP. */
  introspectionEndpoint: string;
  /**
   * Stores each accepted message (the demo writes it into local mailboxes) before the final 250, so a 250 means
   * stored; a rejection answers 451 4.3.0 and records nothing. Needs keepBodies (the default).
   */
  store?: (delivery: Delivery & { raw: Buffer }) => Promise<void>;
  /**
   * Greet a new connection at once (passgate's PromptSmtpServer) instead of after smtp-server's 100 ms
   * early-talker pause (the default). The benchmarks run both: an upstream where every new connection has a fixed
   * cost before the greeting, and one where it has none.
   */
  promptGreeting?: boolean;
  /** Do not offer PIPELINING in EHLO (RFC 2920): passgate must then wait for each reply before the next command. */
  hidePipelining?: boolean;
  /**
   * A file each accepted message is appended to (one JSON line, the body base64) before the 250 is written: the
   * record of a server run as a process, which outlives a SIGKILL (test/chaos/dependency-process.ts).
   */
  deliveryLog?: string;
}

/**
 * A real SMTP submission server on 127.0.0.1 standing in for Exchange Online: STARTTLS, AUTH XOAUTH2 only (the
 * token checked at the OAuth server), enhanced status codes, SIZE 157286400. It records what it delivers, and can
 * be told to refuse recipients, refuse logins, or drop the connection in the middle of DATA.
 */
export class UpstreamSmtpServer {
  readonly deliveries: Delivery[] = [];
  /** Recipient address → reply to RCPT. */
  readonly refuseRecipients = new Map<string, { code: number; text: string }>();
  /** Sender address (MAIL FROM) → reply to MAIL. */
  readonly refuseSenders = new Map<string, { code: number; text: string }>();
  /** Refuse every XOAUTH2 login with this reply (e.g. 535 5.7.139 SMTP AUTH disabled). */
  refuseLogins: { code: number; text: string } | null = null;
  /** Drop the connection after this many bytes of the next message. */
  dropDuringDataAfter: number | null = null;
  keepBodies = true;
  /** Milliseconds before the upstream answers MAIL FROM. */
  mailDelayMs = 0;
  logins = 0;
  connections = 0;
  /** MAIL FROM commands received (before any delay or refusal). */
  mails = 0;
  /** The most sessions logged in at once (from a successful AUTH to the connection's close). */
  peakLoggedIn = 0;
  private readonly loggedIn = new Set<string>();
  private readonly server: SMTPServer;
  /** Every TCP connection open, for crash(). */
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly options: UpstreamOptions) {
    this.server = new (options.promptGreeting ? PromptSmtpServer : SMTPServer)({
      key: options.key,
      cert: options.cert,
      name: 'upstream.test',
      authMethods: ['XOAUTH2'],
      hideENHANCEDSTATUSCODES: false,
      hideDSN: false,
      size: 157_286_400,
      logger: false,
      hidePIPELINING: options.hidePipelining ?? false,
      // No PTR lookup per connection: the machine's DNS setup must not shape what tests and benchmarks see.
      disableReverseLookup: true,
      onConnect: (_session, callback) => {
        this.connections++;
        callback();
      },
      onClose: (session) => {
        this.loggedIn.delete(session.id);
      },
      onAuth: (auth, _session, callback) => {
        void this.checkToken(auth.username ?? '', auth.accessToken ?? '').then((ok) => {
          if (this.refuseLogins) {
            this.sendVerbatimOnce(_session, this.refuseLogins.text);
            return callback(Object.assign(new Error(this.refuseLogins.text), { responseCode: this.refuseLogins.code }));
          }
          if (!ok) return callback(Object.assign(new Error('Authentication unsuccessful'), { responseCode: 535 }));
          this.logins++;
          this.loggedIn.add(_session.id);
          this.peakLoggedIn = Math.max(this.peakLoggedIn, this.loggedIn.size);
          callback(null, { user: auth.username });
        }, (error: Error) =>
          // The introspection endpoint could not be asked (the OAuth server is down): the upstream's own fault, a
          // temporary 454 4.7.0 as RFC 4954 §6 prescribes, never a verdict on the token.
          callback(Object.assign(error, { responseCode: 454 })),
        );
      },
      onMailFrom: (address, _session, callback) => {
        this.mails++;
        const refusal = this.refuseSenders.get(address.address.toLowerCase());
        if (refusal) return callback(Object.assign(new Error(refusal.text), { responseCode: refusal.code }));
        if (this.mailDelayMs > 0) setTimeout(() => callback(), this.mailDelayMs);
        else callback();
      },
      onRcptTo: (address, _session, callback) => {
        const refusal = this.refuseRecipients.get(address.address.toLowerCase());
        if (refusal) return callback(Object.assign(new Error(refusal.text), { responseCode: refusal.code }));
        callback();
      },
      onData: (stream, session, callback) => this.receive(stream, session, callback),
    });
    this.server.on('error', () => {});
    this.server.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /**
   * smtp-server puts its own enhanced code before a refusal's text (`535 5.7.8 5.7.139 ...`); a text that carries
   * its own (`5.7.139 Authentication unsuccessful, ...`) goes out as Exchange sends it: `535 5.7.139 ...`.
   */
  private sendVerbatimOnce(session: SMTPServerSession, text: string): void {
    if (!/^[245]\.\d{1,3}\.\d{1,3} /.test(text)) return;
    type Connection = { session: SMTPServerSession; send: (code: number, data: string, context?: unknown) => void };
    const connection = [...this.server.connections].find((c) => (c as unknown as Connection).session === session) as unknown as Connection | undefined;
    if (!connection) return;
    const original = connection.send;
    connection.send = (code, data) => {
      connection.send = original;
      original.call(connection, code, data, false);
    };
  }

  private async checkToken(mailbox: string, token: string): Promise<boolean> {
    const response = await fetch(this.options.introspectionEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    const view = (await response.json()) as { active: boolean; sub?: string };
    // App-only tokens (subject "app") may act for any mailbox, as an Exchange app with full access would.
    return view.active && (view.sub === 'app' || view.sub === mailbox);
  }

  private receive(stream: NodeJS.ReadableStream & { sizeExceeded?: boolean }, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const chunks: Buffer[] = [];
    const hash = createHash('sha256');
    let bytes = 0;
    const dropAfter = this.dropDuringDataAfter;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      if (this.keepBodies) chunks.push(chunk);
      if (dropAfter !== null && bytes >= dropAfter) {
        this.dropDuringDataAfter = null;
        for (const connection of this.server.connections) {
          if ((connection as unknown as { session: SMTPServerSession }).session === session) {
            (connection as unknown as { _socket: { destroy(): void } })._socket.destroy();
          }
        }
      }
    });
    stream.on('end', () => {
      if (dropAfter !== null) return; // dropped: never acknowledged, never delivered
      const delivery: Delivery = {
        mailbox: String(session.user),
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        to: session.envelope.rcptTo.map((r) => r.address),
        raw: this.keepBodies ? Buffer.concat(chunks) : null,
        bytes,
        sha256: hash.digest('hex'),
        mailArgs: session.envelope.mailFrom ? { ...(session.envelope.mailFrom.args || {}) } : {},
      };
      const accept = () => {
        this.deliveries.push(delivery);
        const log = this.options.deliveryLog;
        if (log) appendFileSync(log, `${JSON.stringify({ ...delivery, raw: delivery.raw?.toString('base64') ?? null })}\n`);
        callback(null, `<queued-${this.deliveries.length}@upstream.test> Queued mail for delivery`);
      };
      const store = this.options.store;
      if (!store) return accept();
      const raw = delivery.raw;
      if (!raw) return callback(Object.assign(new Error('4.3.0 Message not stored (keepBodies is off)'), { responseCode: 451 }));
      store({ ...delivery, raw }).then(accept, () =>
        callback(Object.assign(new Error('4.3.0 Local delivery failed, try again later'), { responseCode: 451 })),
      );
    });
  }

  /** Refuse (true) or accept DATA itself: the upstream answers 502 instead of 354 while set. */
  set refuseData(refuse: boolean) {
    this.server.options.disabledCommands = refuse ? ['DATA'] : [];
  }

  async start(port = 0): Promise<this> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server.server, 'listening');
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * A crash: stops listening and destroys every connection at once, without a reply. A message whose delivery was
   * recorded had its 250 written in the same event-loop turn, before this runs, so "recorded" means "acknowledged".
   */
  async crash(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listens again on the same port after crash(). */
  async restart(): Promise<void> {
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server.server, 'listening');
  }
}

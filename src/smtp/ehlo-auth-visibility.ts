import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/** The parts of smtp-server's SMTPConnection (lib/smtp-connection.js, 3.x) this workaround touches. */
interface EhloConnection {
  secure: boolean;
  remoteAddress: string;
  handler_EHLO(command: Buffer, callback: () => void): void;
  send(code: number, data: string | string[], context?: unknown): void;
}

/**
 * RFC 3207 §4.2 and RFC 8314 §3: a server must not offer AUTH on a connection where it would refuse it, or a client
 * that trusts the EHLO reply sends its password in clear (often in the same line, SASL-IR) before it hears 538.
 * smtp-server (3.x, SMTPConnection#handler_EHLO) lists `AUTH PLAIN LOGIN` to every client that has not logged in,
 * TLS or not, and has no option to hide it before STARTTLS (`hideSTARTTLS`, `authOptional` and `allowInsecureAuth`
 * change other things; disabling AUTH would also let MAIL through without a login). So this file owns the one
 * workaround: it wraps one connection's EHLO handler and drops the `AUTH ...` line from its 250 reply while
 * `authAllowed` says no (not TLS, and not a plaintext listener's listed network). The AUTH command itself is still
 * refused by smtp-server (538) or by the listener. test/unit/smtp/ehlo-auth-visibility.test.ts fails if an
 * smtp-server upgrade renames the handler or changes how it replies.
 */
export function hideAuthUntilAllowed(connection: SMTPConnection, authAllowed: (secure: boolean, remoteAddress: string) => boolean): void {
  const c = connection as unknown as EhloConnection;
  const ehlo = c.handler_EHLO;
  if (typeof ehlo !== 'function') throw new Error('smtp-server changed: SMTPConnection#handler_EHLO is gone (see ehlo-auth-visibility.ts)');
  c.handler_EHLO = function (this: EhloConnection, command, callback) {
    if (authAllowed(this.secure, this.remoteAddress)) return ehlo.call(this, command, callback);
    const send = this.send;
    this.send = (code, data, context) => {
      const lines = code === 250 && Array.isArray(data) ? data.filter((line) => !/^AUTH\b/i.test(line)) : data;
      send.call(this, code, lines, context);
    };
    try {
      ehlo.call(this, command, callback);
    } finally {
      this.send = send;
    }
  };
}

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';

describe('SMTP connection slots (real sockets, real STARTTLS)', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({ smtp: { max_connections_per_ip: 2 } });
  });
  after(async () => h.close());

  it('come back after STARTTLS sessions: five times the per-address cap of sequential nodemailer sessions all get in', async () => {
    // smtp-server's STARTTLS removes every listener of the socket it upgrades, the raw socket's 'close' (which gave
    // the slot back) included: a regression locked an address out for good after max_connections_per_ip
    // STARTTLS sessions. The slot now goes on smtp-server's onClose.
    for (let i = 0; i < 10; i++) {
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port: h.ports.submission!, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
      await assert.doesNotReject(transport.verify(), `session ${i + 1} of 10`); // EHLO, STARTTLS, EHLO, QUIT
      transport.close();
    }
  });
});

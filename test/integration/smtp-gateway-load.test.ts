import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { stringify } from 'yaml';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';

const send = (port: number, user: string, pass: string, raw: Buffer | Readable) =>
  nodemailer
    .createTransport({ host: '127.0.0.1', port, secure: true, auth: { user, pass }, tls: { rejectUnauthorized: false } })
    .sendMail({ envelope: { from: user, to: ['boss@example.org'] }, raw });

describe('SMTP gateway under load and faults', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness();
  });
  after(async () => h.close());

  it('500 messages from 20 concurrent clients, upstream dropping some mid-DATA: every 250 is exactly one delivery, nothing else arrives', async () => {
    h.upstream.keepBodies = true;
    const deliveredBefore = h.upstream.deliveries.length;
    const accepted = new Set<string>();
    const failed = new Set<string>();
    // Every 40 ms the upstream is told to drop the next message it receives after 200 bytes.
    const saboteur = setInterval(() => (h.upstream.dropDuringDataAfter = 200), 40);
    try {
      await Promise.all(
        Array.from({ length: 20 }, async (_, client) => {
          for (let i = 0; i < 25; i++) {
            const id = `load-${client}-${i}`;
            const raw = Buffer.from(`Message-ID: <${id}@load.test>\r\nSubject: ${id}\r\n\r\n${'line of text\r\n'.repeat(40)}`);
            try {
              const info = await send(h.ports.submissions!, h.user, h.password, raw);
              assert.match(info.response, /^250 /);
              accepted.add(id);
            } catch (error) {
              assert.equal((error as { responseCode?: number }).responseCode! >= 400 && (error as { responseCode?: number }).responseCode! < 500, true, String(error));
              failed.add(id);
            }
          }
        }),
      );
    } finally {
      clearInterval(saboteur);
      h.upstream.dropDuringDataAfter = null;
    }
    const delivered = h.upstream.deliveries.slice(deliveredBefore).map((d) => /Message-ID: <([^@]+)@/.exec(d.raw!.toString())![1]!);
    assert.equal(accepted.size + failed.size, 500);
    assert.ok(failed.size > 0, 'the saboteur dropped some messages');
    assert.equal(delivered.length, new Set(delivered).size, 'no message was delivered twice');
    assert.deepEqual(new Set(delivered), accepted, 'delivered exactly the messages that got a 250');
  });

  it('answers 454 at AUTH while no token can be had, and audits upstream-token-failed', async () => {
    // A fresh passgate has no cached token; its provider fails every request.
    const fresh = await startSmtpHarness();
    try {
      fresh.oauth.failNext(5, { status: 503, body: 'down' });
      const t = await SmtpTranscript.connect(fresh.ports.submissions!, { tls: true });
      await t.expect(/^220 /);
      t.send('EHLO client.test');
      await t.expect(/^250 /m);
      t.send(`AUTH PLAIN ${plain(fresh.user, fresh.password)}`);
      await t.expect(/^454 4\.7\.0 /);
      t.close();
      const [entry] = await fresh.app.audit.query({ username: fresh.user, limit: 1 });
      assert.equal(entry!.reason, 'upstream-token-failed');
    } finally {
      await fresh.close();
    }
  });

  it('answers 451 4.4.1 at MAIL when the upstream has gone away since the login', async () => {
    const fresh = await startSmtpHarness();
    try {
      const t = await SmtpTranscript.connect(fresh.ports.submissions!, { tls: true });
      await t.expect(/^220 /);
      t.send('EHLO client.test');
      await t.expect(/^250 /m);
      t.send(`AUTH PLAIN ${plain(fresh.user, fresh.password)}`);
      await t.expect(/^235 /);
      await fresh.upstream.stop();
      t.send('MAIL FROM:<scanner@example.com>');
      await t.expect(/^451 4\.4\.1 /);
      t.close();
    } finally {
      await fresh.services.close(0);
      await fresh.app.close();
      await fresh.oauth.stop();
      fresh.tc.cleanup();
    }
  });

  describe('a 50 MB message through `passgate serve` (its own process)', () => {
    let child: ChildProcess;
    let port = 0;
    before(async () => {
      h.upstream.keepBodies = false;
      const config = readFileSync(h.tc.file, 'utf8');
      const file = join(h.tc.dir, 'serve.yaml');
      const tree = (await import('yaml')).parse(config) as Record<string, { listeners?: unknown[] } & Record<string, unknown>>;
      tree.smtp!.listeners = [{ name: 'submissions', host: '127.0.0.1', port: 0, tls: 'implicit' }];
      tree.log = { level: 'info' };
      writeFileSync(file, stringify(tree));
      // The same V8 flag the installed launcher (bin/passgate.js) runs with.
      child = spawn(process.execPath, ['--max-semi-space-size=2', '--import', import.meta.resolve('tsx'), resolve(import.meta.dirname, '../../src/cli.ts'), '--config', file, 'serve'], {
        cwd: h.tc.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      port = await new Promise<number>((resolvePort, reject) => {
        const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 30_000);
        child.stdout!.on('data', (d) => {
          out += d;
          const started = /"msg":"passgate started"/.test(out) && /"submissions":(\d+)/.exec(out);
          if (started) {
            clearTimeout(timer);
            resolvePort(Number(started[1]));
          }
        });
      });
    });
    after(async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      h.upstream.keepBodies = true;
    });

    const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]);

    it('relays while the gateway\'s memory grows by less than 20 MB', async () => {
      // Warm up every code path once, then measure.
      await send(port, h.user, h.password, Buffer.from('Subject: warm-up\r\n\r\nhello\r\n'));
      global.gc?.();
      await new Promise((r) => setTimeout(r, 300));
      const baseline = rssKb();
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, rssKb())), 20);
      const hash = createHash('sha256');
      const line = Buffer.from(`${'0123456789'.repeat(7)}\r\n`);
      const header = Buffer.from('Subject: fifty megabytes\r\n\r\n');
      const lines = Math.ceil((50 * 1024 * 1024) / line.length);
      let sent = 0;
      hash.update(header);
      const body = Readable.from(
        (function* () {
          yield header;
          for (; sent < lines; ) {
            const batch = Buffer.concat(Array.from({ length: 256 }, () => line));
            sent += 256;
            hash.update(batch);
            yield batch;
          }
        })(),
      );
      const before = h.upstream.deliveries.length;
      try {
        const info = await send(port, h.user, h.password, body);
        assert.match(info.response, /^250 /);
      } finally {
        clearInterval(sampler);
      }
      const delivered = h.upstream.deliveries[before]!;
      assert.ok(delivered.bytes >= 50 * 1024 * 1024, `delivered ${delivered.bytes} bytes`);
      assert.equal(delivered.sha256, hash.digest('hex'), 'byte-identical');
      const growthMb = (peak - baseline) / 1024;
      assert.ok(growthMb < 20, `gateway RSS grew by ${growthMb.toFixed(1)} MB`);
      console.log(`# 50 MB message: gateway RSS baseline ${(baseline / 1024).toFixed(1)} MB, peak growth ${growthMb.toFixed(1)} MB`);
    });
  });
});

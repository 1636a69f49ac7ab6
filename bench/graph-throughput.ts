/**
 * The Graph transport (issue 20): messages through passgate (SMTP in, Graph sendMail out) vs posted straight to the
 * same Graph stand-in (test/helpers/graph-server.ts, on loopback in this process, checking every token at the
 * bench's OAuth server once). Rows: BENCH_GRAPH_MESSAGES (400) messages of 20 KiB with 1 and 4 clients (one mailbox
 * each, one connection per client) in msg/s; BENCH_GRAPH_LARGE_MESSAGES (16) messages with a 5 MiB attachment with 1
 * and 4 clients in MB/s (of message). Direct for small messages: one fetch per message (sendMail, MIME base64); for
 * large ones the same draft, upload session and send that passgate makes, by passgate's own GraphMessageSender
 * without its SMTP front (what any Graph client must do for a message over 4 MB).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import { silentEventLogger } from '../src/core/event-logger.js';
import { FlexibleRequestBudget } from '../src/rate-limit/flexible-request-budget.js';
import { GRAPH_REPLIES } from '../src/smtp/smtp-replies.js';
import { GraphClient } from '../src/upstream/graph/graph-client.js';
import { GRAPH_AUDIENCE, GraphMessageSender } from '../src/upstream/graph/graph-message-sender.js';
import { GraphRequestSlots } from '../src/upstream/graph/graph-request-slots.js';
import { GraphServer } from '../test/helpers/graph-server.js';
import { startWorld } from './fixture/bench-world.js';
import { compare, comparisonTable, envCount, pool, type Comparison } from './fixture/comparison.js';
import { fmt, invocation, machine, machineMarkdown } from './stats.js';

type Path = 'direct' | 'passgate';

function text(bytes: number): string {
  const line = `${'The quick brown fox jumps over the lazy dog 0123456789'.padEnd(76, '.')}\r\n`;
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

function message(from: string, attachment: Buffer | null, body: string): Buffer {
  const head = `From: ${from}\r\nTo: someone@elsewhere.example\r\nSubject: bench\r\nMessage-ID: <${randomBytes(8).toString('hex')}@bench>\r\nMIME-Version: 1.0\r\n`;
  if (!attachment) return Buffer.from(`${head}Content-Type: text/plain\r\n\r\n${body}`);
  const b64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n${body}\r\n` +
      `--b\r\nContent-Type: application/pdf; name="scan.pdf"\r\nContent-Disposition: attachment; filename="scan.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--b--\r\n`,
  );
}

export async function runGraphThroughput(): Promise<{ markdown: string; json: unknown }> {
  const small = envCount('BENCH_GRAPH_MESSAGES', 400);
  const large = envCount('BENCH_GRAPH_LARGE_MESSAGES', 16);
  const world = await startWorld({ dovecot: false });
  const graph = await new GraphServer().start();
  try {
    graph.introspectionUrl = `http://127.0.0.1:${world.upstream.oauthPort}/introspect`;
    const users = Array.from({ length: 4 }, (_, i) => `scanner${i}@bench.example`);
    const passwords = await world.createPasswords(users);
    const passgate = await world.startPassgate({ smtp: { upstream: { transport: 'graph', graph: { base_url: graph.baseUrl } } } });
    const passgateCa = readFileSync(world.passgateCaFile, 'utf8');
    const tokenResponse = await fetch(`http://127.0.0.1:${world.upstream.oauthPort}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: world.upstream.clientId, client_secret: world.upstream.clientSecret, scope: GRAPH_AUDIENCE }),
    });
    const token = ((await tokenResponse.json()) as { access_token: string }).access_token;
    const direct = new GraphMessageSender({
      client: new GraphClient(graph.baseUrl, 120_000),
      tokens: { getAccessToken: async () => ({ token, expiresAt: Date.now() + 3_600_000 }), invalidateAccessToken: async () => false, status: async () => [], close: async () => {} },
      slots: new GraphRequestSlots(4, 60_000),
      budget: new FlexibleRequestBudget({ points: 1_000_000, seconds: 600, name: 'bench' }, null, silentEventLogger),
      replies: GRAPH_REPLIES,
      log: silentEventLogger,
      appId: 'bench',
    });
    const body = text(20 * 1024);
    const attachment = randomBytes(5 * 1024 * 1024);

    const runOnce = async (path: Path, concurrency: number, n: number, withAttachment: boolean) => {
      const transports = users.slice(0, concurrency).map((user) =>
        nodemailer.createTransport({
          host: '127.0.0.1',
          port: passgate.ports.smtp.submission!,
          secure: false,
          requireTLS: true,
          tls: { ca: passgateCa, servername: 'passgate.test' },
          auth: { user, pass: passwords.get(user)! },
          pool: true,
          maxConnections: 1,
          maxMessages: Number.POSITIVE_INFINITY,
        }),
      );
      let bytes = 0;
      const wall = await pool(n, concurrency, async (_i, w) => {
        const user = users[w]!;
        const raw = message(user, withAttachment ? attachment : null, body);
        bytes += raw.length;
        if (path === 'passgate') {
          await transports[w]!.sendMail({ envelope: { from: user, to: ['someone@elsewhere.example'] }, raw });
          return;
        }
        if (withAttachment) {
          const reply = await direct.send(user, ['someone@elsewhere.example'], raw);
          if (reply.code !== 250) throw new Error(`direct: ${reply.code} ${reply.lines.join(' ')}`);
          return;
        }
        const r = await fetch(`${graph.baseUrl}/users/${encodeURIComponent(user)}/sendMail`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, body: raw.toString('base64') });
        await r.arrayBuffer();
        if (r.status !== 202) throw new Error(`direct sendMail: ${r.status}`);
      });
      for (const t of transports) t.close();
      return { perSecond: (n / wall) * 1000, mbPerSecond: bytes / 1e6 / (wall / 1000) };
    };

    // Warm-up: credential cache, tokens, JIT.
    for (const path of ['direct', 'passgate'] as const) await runOnce(path, 4, Math.min(40, 4 * small), false);
    const rows: Comparison[] = [];
    const samples: Record<string, unknown> = {};
    let sent = graph.delivered.length;
    for (const [withAttachment, n] of [[false, small], [true, large]] as const) {
      for (const concurrency of [1, 4]) {
        const half = Math.ceil(n / 2);
        const cpu0 = passgate.cpuMs();
        const d1 = await runOnce('direct', concurrency, half, withAttachment);
        const p1 = await runOnce('passgate', concurrency, half, withAttachment);
        const p2 = await runOnce('passgate', concurrency, n - half, withAttachment);
        const d2 = await runOnce('direct', concurrency, n - half, withAttachment);
        sent += 2 * n;
        const cpu = passgate.cpuMs() - cpu0;
        const what = `${withAttachment ? 'a 5 MiB attachment (draft + upload session)' : '20 KiB (one sendMail)'}, ${concurrency} client${concurrency > 1 ? 's' : ''}`;
        const unit = withAttachment ? 'MB/s' : 'msg/s';
        const pick = (r: { perSecond: number; mbPerSecond: number }) => (withAttachment ? r.mbPerSecond : r.perSecond);
        const d = (pick(d1) + pick(d2)) / 2;
        const p = (pick(p1) + pick(p2)) / 2;
        samples[what] = { direct: d, passgate: p, passgateCpuMsPerMessage: cpu / n, msgPerSecond: { direct: (d1.perSecond + d2.perSecond) / 2, passgate: (p1.perSecond + p2.perSecond) / 2 } };
        rows.push(compare(what, unit, d, p, undefined, `passgate used ${fmt(cpu / n)} ms CPU per message`));
      }
    }
    if (graph.delivered.length !== sent) throw new Error(`the stand-in delivered ${graph.delivered.length}, ${sent} were sent`);
    const json = { scenario: 'graph-throughput', machine: machine(), command: invocation('bench/run.ts'), parameters: { small, large, smallBytes: body.length, attachmentBytes: attachment.length }, samples, rows, delivered: sent };
    const markdown = [
      '## Graph transport: SMTP through passgate to Graph sendMail vs posting straight to the Graph stand-in',
      '',
      machineMarkdown(json.machine, json.command),
      `- ${small} messages of 20 KiB and ${large} with a 5 MiB attachment per row and path, every one delivered by the stand-in (checked). The stand-in runs in the bench's process (test/helpers/graph-server.ts), over plain HTTP on loopback: it costs nothing that a real Graph would, so the ratio shows passgate's own cost at its worst.`,
      '- Direct: one fetch of the MIME base64 per message; for the large messages the same draft, upload session (3.75 MiB chunks) and send passgate makes (its GraphMessageSender, without SMTP).',
      '',
      comparisonTable(rows),
      '',
    ].join('\n');
    return { markdown, json };
  } finally {
    await graph.stop();
    await world.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { markdown } = await runGraphThroughput();
  console.log(markdown);
}

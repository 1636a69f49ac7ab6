import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { GraphServer } from '../helpers/graph-server.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue 20, Graph's limits across instances: two passgate instances on one Redis (their own redis-server) send as
 * one mailbox at once; the Graph stand-in never sees more than 4 requests of the mailbox in flight, and every
 * message is delivered. The request budget (10,000 per 10 minutes per app and mailbox) is one count in Redis: with a
 * budget of 20, the 21st message through either instance is answered 451 without reaching Graph; and a Retry-After
 * heard by one instance holds the mailbox back on the other.
 */
describe('Graph transport: limits shared by two instances through Redis', () => {
  let redis: TestRedis;
  let graph: GraphServer;
  const instances: SmtpHarness[] = [];

  before(async () => {
    redis = await startRedis({ own: true });
    graph = await new GraphServer().start();
    const key = randomBytes(32).toString('base64');
    for (let i = 0; i < 2; i++) {
      const h = await startSmtpHarness({
        upstream: { transport: 'graph', wait_seconds: 20, graph: { base_url: graph.baseUrl, requests_per_10_minutes: 20 } },
        oauth: { token_encryption_key: key },
        config: { redis: { url: redis.url, key_prefix: redis.prefix } },
      });
      instances.push(h);
      graph.alsoTrusted.push(h.oauth);
    }
  });

  after(async () => {
    for (const h of instances) await h.close();
    await graph?.stop();
    await redis?.close();
  });

  async function submit(h: SmtpHarness, user = h.user, password = h.password): Promise<string> {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, user, password);
    try {
      t.send(`MAIL FROM:<${user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<alice@example.org>');
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(Buffer.from(`From: ${user}\r\nTo: alice@example.org\r\nSubject: two instances\r\n\r\nx\r\n.\r\n`));
      const reply = (await t.expect(/^\d{3} /, 60_000)).trim();
      t.send('QUIT');
      return reply;
    } finally {
      t.close();
    }
  }

  it('at most 4 requests of one mailbox in flight over both instances; all delivered', async () => {
    graph.delayMs = 300;
    graph.maxInFlight = 0;
    const before = graph.delivered.length;
    try {
      const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(instances[i % 2]!)));
      for (const r of replies) assert.match(r, /^250 2\.0\.0 OK, accepted by Microsoft Graph/);
    } finally {
      graph.delayMs = 0;
    }
    assert.equal(graph.delivered.length, before + 12);
    assert.equal(graph.maxInFlight, 4, 'never more than Graph allows, never fewer than it allows');
  });

  it('one request budget per app and mailbox over both instances', async () => {
    // A mailbox of its own (one store in Redis: the password works on both): the budget is 20, alternating
    // instances, then 451 from either without asking Graph.
    const user = 'budget@example.com';
    const { password } = await instances[0]!.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Budget scanner' });
    for (let i = 0; i < 20; i++) assert.match(await submit(instances[i % 2]!, user, password), /^250 /);
    const requests = graph.requests.length;
    assert.match(await submit(instances[0]!, user, password), /^451 4\.7\.0 Microsoft Graph's request limit for the mailbox is spent .*retry after \d+ s/);
    assert.match(await submit(instances[1]!, user, password), /^451 4\.7\.0 Microsoft Graph's request limit/);
    assert.equal(graph.requests.length, requests, 'Graph was not asked');
  });

  it("Graph's Retry-After heard by one instance holds the mailbox back on the other too", async () => {
    const user = 'paused@example.com';
    // One store in Redis: the password works on both instances.
    const { password } = await instances[0]!.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Paused scanner' });
    graph.failNext(1, { status: 429, code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.', retryAfter: 30 });
    const requests = graph.requests.length;
    assert.match(await submit(instances[0]!, user, password), /^451 4\.7\.0 Microsoft Graph is throttling the mailbox.*retry after 30 s/);
    assert.match(await submit(instances[1]!, user, password), /^451 4\.7\.0 .*held back for Graph's Retry-After, retry after (2\d|30) s/);
    assert.equal(graph.requests.length, requests + 1, 'the other instance did not ask Graph');
  });
});

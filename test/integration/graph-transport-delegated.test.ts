import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GRAPH_AUDIENCE } from '../../src/core/token-provider.js';
import { GraphServer } from '../helpers/graph-server.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue 20 in delegated mode (delegated Mail.Send): `oauth connect` of a mailbox stores its grant for Graph too when
 * Graph carries mail, so one connect is enough; the Graph token comes from that refresh token, asked with Graph's
 * scope (and offline_access), and the stand-in takes it. Disconnecting forgets both.
 */
describe('Graph transport in delegated mode', () => {
  let graph: GraphServer;
  let h: SmtpHarness;

  before(async () => {
    graph = await new GraphServer().start();
    h = await startSmtpHarness({ oauth: { mode: 'delegated' }, upstream: { transport: 'graph', graph: { base_url: graph.baseUrl } } });
    graph.oauth = h.oauth;
  });
  after(async () => {
    await h?.close();
    await graph?.stop();
  });

  async function submit(): Promise<string> {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password).catch((error: Error) => error);
    if (t instanceof Error) return t.message;
    try {
      t.send(`MAIL FROM:<${h.user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<alice@example.org>');
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(Buffer.from(`From: ${h.user}\r\nTo: alice@example.org\r\nSubject: delegated\r\n\r\nx\r\n.\r\n`));
      return (await t.expect(/^\d{3} /, 30_000)).trim();
    } finally {
      t.close();
    }
  }

  it('one connect serves Graph: the grant is stored for both audiences, and the message goes through', async () => {
    const tokens = h.app.oauth!.tokens;
    await tokens.saveRefreshToken(h.user, h.oauth.mintRefreshToken(h.user));
    const keys = (await h.app.tokenStates.list()).map((s) => s.key).sort();
    assert.deepEqual(keys, [`${GRAPH_AUDIENCE}|mailbox:${h.user}`, `mailbox:${h.user}`]);
    const before = graph.delivered.length;
    assert.match(await submit(), /^250 2\.0\.0 OK, accepted by Microsoft Graph/);
    assert.equal(graph.delivered.length, before + 1);
    const token = await tokens.getAccessToken(h.user, GRAPH_AUDIENCE);
    assert.deepEqual(h.oauth.introspect(token.token).scope?.split(' '), [GRAPH_AUDIENCE, 'offline_access']);

    await tokens.forget(h.user);
    assert.deepEqual(await h.app.tokenStates.list(), [], 'disconnect forgets both');
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { IMAP_LOGIN_REPLIES, IMAP_REPLIES, IMAP_UPSTREAM_LOGIN_REPLIES } from '../../../src/imap/imap-replies.js';
import { AUTH_REPLIES, continuousErrorReply, GRAPH_REPLIES, SMTP_REPLIES, UPSTREAM_LOGIN_REPLIES, UPSTREAM_REPLIES } from '../../../src/smtp/smtp-replies.js';

// Issue 17: "docs/security.md says what really happens (its quoted replies were wrong)". Every reply quoted there
// (an SMTP reply with its enhanced code, an IMAP `NO [...]` or `* BYE`) must be one passgate gives; "…" or "..."
// in a quote stands for text left out.
const FROM_SMTP_SERVER = ['538 Error: Must issue a STARTTLS command first']; // smtp-server's own, before STARTTLS

const smtp = [...Object.values(SMTP_REPLIES), ...Object.values(AUTH_REPLIES), ...Object.values(UPSTREAM_LOGIN_REPLIES), ...Object.values(UPSTREAM_REPLIES), ...Object.values(GRAPH_REPLIES), continuousErrorReply({ code: 550, enhanced: '5.2.254' }, 900_000)].map(
  (r) => `${r.code} ${r.text}`,
);
const imap = [...Object.values(IMAP_LOGIN_REPLIES), ...Object.values(IMAP_UPSTREAM_LOGIN_REPLIES), ...Object.values(IMAP_REPLIES).map((r) => (/^(NO|BAD|OK) /.test(r) ? r : `* BYE ${r}`))];
const replies = [...smtp, ...imap, ...FROM_SMTP_SERVER];

function given(quote: string): boolean {
  const parts = quote.split(/…|\.\.\./).map((p) => p.trim()).filter(Boolean);
  return replies.some((reply) => {
    let from = 0;
    for (const part of parts) {
      const at = reply.indexOf(part, from);
      if (at < 0) return false;
      from = at + part.length;
    }
    return true;
  });
}

describe('docs/security.md quotes the replies passgate really gives', () => {
  const doc = readFileSync(new URL('../../../docs/security.md', import.meta.url), 'utf8');
  const quotes = [...doc.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\s+/g, ' ')).filter((q) => /^(\d{3} (\d\.\d|Error)|NO \[|\* BYE )/.test(q));

  it('quotes replies at all (EHLO before TLS, smuggling, revocation, oracle, From header, continuous errors)', () => {
    assert.ok(quotes.length >= 15, `only ${quotes.length} quoted replies`);
  });

  for (const quote of new Set(quotes)) {
    it(quote, () => assert.ok(given(quote), `not a reply in smtp-replies.ts / imap-replies.ts: ${quote}`));
  }
});

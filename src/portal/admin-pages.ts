import type { HealthStatus } from '../admin/health-admin.js';
import type { AppPasswordView } from '../core/app-password-record.js';
import { AUDIT_REASONS, type AuditEvent } from '../core/audit-log.js';
import type { Lockout } from '../core/lockout-list.js';
import { describeReason } from '../admin/sign-in-log.js';
import { html, type SafeHtml } from './html.js';
import { passwordTable, signInTable, when } from './password-pages.js';

export interface PasswordFilter {
  q: string;
  status: string;
  user: string;
}

const STATUSES: [string, string][] = [
  ['', 'Any status'],
  ['active', 'Active'],
  ['off', 'Turned off'],
  ['expired', 'Expired'],
  ['revoked', 'Revoked'],
];

export function allPasswordsPage(views: AppPasswordView[], now: number, token: string, filter: PasswordFilter, message: SafeHtml | ''): SafeHtml {
  const back = `/admin/passwords?${new URLSearchParams({ ...filter }).toString()}`;
  return html`<h1>All app passwords</h1>
${message}
<form class="card filters" method="get" action="/admin/passwords" role="search">
<div><label for="q">Search</label><input type="search" id="q" name="q" value="${filter.q}" placeholder="name, user, mailbox or id"></div>
<div><label for="user">User</label><input type="text" id="user" name="user" value="${filter.user}" placeholder="user@example.com"></div>
<div><label for="status">Status</label><select id="status" name="status">${STATUSES.map(([v, label]) => html`<option value="${v}"${v === filter.status ? html` selected` : ''}>${label}</option>`)}</select></div>
<div><button type="submit" class="primary">Filter</button></div>
</form>
${filter.user !== '' ? html`<p class="actions"><a class="button danger" href="/passwords/revoke-all?user=${encodeURIComponent(filter.user)}">Revoke all of ${filter.user}…</a></p>` : ''}
<p class="hint">${views.length} shown. An admin sees what each password may do and when it was used, never the password.</p>
${passwordTable(views, now, token, { showUser: true, back })}`;
}

export interface SignInFilter {
  user: string;
  reason: string;
  protocol: string;
}

export function allSignInsPage(events: AuditEvent[], filter: SignInFilter): SafeHtml {
  return html`<h1>Sign-in log</h1>
<form class="card filters" method="get" action="/admin/sign-ins" role="search">
<div><label for="user">User</label><input type="text" id="user" name="user" value="${filter.user}" placeholder="user@example.com"></div>
<div><label for="reason">Result</label><select id="reason" name="reason"><option value="">Any result</option>${AUDIT_REASONS.map(
    (r) => html`<option value="${r}"${r === filter.reason ? html` selected` : ''}>${describeReason(r)}</option>`,
  )}</select></div>
<div><label for="protocol">Protocol</label><select id="protocol" name="protocol">${[
    ['', 'Any'],
    ['smtp', 'SMTP'],
    ['imap', 'IMAP'],
    ['pop3', 'POP3'],
  ].map(([v, label]) => html`<option value="${v}"${v === filter.protocol ? html` selected` : ''}>${label}</option>`)}</select></div>
<div><button type="submit" class="primary">Filter</button></div>
</form>
${signInTable(events, true)}`;
}

export function lockoutsPage(lockouts: Lockout[], token: string, message: SafeHtml | ''): SafeHtml {
  return html`<h1>Lockouts</h1>
<p class="lead">Users and addresses blocked after too many wrong passwords. They end by themselves; unlock one when you know the cause is fixed.</p>
${message}
${
  lockouts.length === 0
    ? html`<div class="card empty">Nobody is locked out.</div>`
    : html`<table><thead><tr><th scope="col">What</th><th scope="col">Who</th><th scope="col">Until</th><th scope="col">Failures</th><th scope="col"><span class="sub">Actions</span></th></tr></thead><tbody>${lockouts.map(
        (l) => html`<tr><td data-label="What">${l.kind === 'user' ? 'User' : l.kind === 'address' ? 'Address' : 'User from address'}</td><td data-label="Who">${l.key}</td>
<td data-label="Until">${when(l.until)}</td><td data-label="Failures">${l.failures ?? '—'}</td>
<td data-label="Actions"><form class="inline" method="post" action="/admin/lockouts/unlock"><input type="hidden" name="_csrf" value="${token}"><input type="hidden" name="kind" value="${l.kind}"><input type="hidden" name="key" value="${l.key}"><button type="submit" class="small">Unlock</button></form></td></tr>`,
      )}</tbody></table>`
}`;
}

export function healthPage(health: HealthStatus): SafeHtml {
  return html`<h1>Health</h1>
<p class="lead">As of ${when(health.at)}, from passgate's token state and its sign-in log.</p>
<h2>Mail upstreams</h2>
<table><thead><tr><th scope="col">Protocol</th><th scope="col">Upstream</th><th scope="col">Last good sign-in</th><th scope="col">Last failure</th></tr></thead><tbody>${health.upstreams.map(
    (u) => html`<tr><td data-label="Protocol">${u.protocol.toUpperCase()} ${u.enabled ? '' : html`<span class="badge off">off</span>`}</td><td data-label="Upstream">${u.host}:${u.port} (${u.tls})</td>
<td data-label="Last good sign-in">${when(u.lastSuccessAt)}</td><td data-label="Last failure">${u.lastFailure === null ? '—' : html`${when(u.lastFailure.at)}<span class="sub">${describeReason(u.lastFailure.reason)}</span>`}</td></tr>`,
  )}</tbody></table>
<h2>Access tokens</h2>
${
  !health.oauthConfigured
    ? html`<div class="notice warn">OAuth is not configured (oauth.client_id): passgate cannot reach any mailbox.</div>`
    : health.tokens.length === 0
      ? html`<div class="card empty">No token fetched yet.</div>`
      : html`<table><thead><tr><th scope="col">Key</th><th scope="col">State</th><th scope="col">Expires</th></tr></thead><tbody>${health.tokens.map(
          (t) => html`<tr><td data-label="Key">${t.key}</td><td data-label="State"><span class="badge ${t.state === 'ok' ? 'ok' : 'bad'}">${t.state}</span>${t.lastError ? html`<span class="sub">${t.lastError}</span>` : ''}</td><td data-label="Expires">${when(t.accessExpiresAt)}</td></tr>`,
        )}</tbody></table>`
}`;
}

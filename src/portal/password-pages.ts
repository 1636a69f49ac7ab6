import type { CreatedAppPassword } from '../admin/app-password-admin.js';
import { describeReason } from '../admin/sign-in-log.js';
import { statusOf, type AppPasswordStatus, type AppPasswordView } from '../core/app-password-record.js';
import type { AuditEvent } from '../core/audit-log.js';
import type { SetupSheet } from '../core/setup-sheet.js';
import { html, type SafeHtml } from './html.js';
import type { Protocol } from '../core/protocol.js';

/** Expiry presets of the create form (value → days; 0: never). */
export const EXPIRY_PRESETS: [string, string, number][] = [
  ['never', 'Never', 0],
  ['30d', '30 days', 30],
  ['90d', '90 days', 90],
  ['1y', '1 year', 365],
];

const STATUS_WORDS: Record<AppPasswordStatus, string> = { active: 'Active', off: 'Turned off', expired: 'Expired', revoked: 'Revoked' };

export function when(ms: number | null): string {
  if (ms === null) return '—';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

export function notice(kind: 'ok' | 'bad' | 'warn', text: string | null): SafeHtml | '' {
  return text === null ? '' : html`<div class="notice ${kind}" role="status">${text}</div>`;
}

function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${token}">`;
}

/** One small POST form (turn off, turn on, revoke): a button, the CSRF token, and where to come back to. */
export function actionForm(path: string, label: string, token: string, back: string, options: { danger?: boolean; what?: string } = {}): SafeHtml {
  // Screen readers hear which password a button is for ("Turn off Printer, 2nd floor"), not a row of "Turn off".
  const what = options.what === undefined ? '' : html`<span class="vh"> ${options.what}</span>`;
  return html`<form class="inline" method="post" action="${path}">${csrfField(token)}<input type="hidden" name="back" value="${back}"><button type="submit" class="small${options.danger ? ' danger' : ''}">${label}${what}</button></form>`;
}

/** The table of passwords, for a user (their own) or an admin (everyone's, with the user column). */
export function passwordTable(views: AppPasswordView[], now: number, token: string, options: { showUser: boolean; back: string }): SafeHtml {
  if (views.length === 0) return html`<div class="card empty">No app passwords yet.</div>`;
  return html`<table>
<thead><tr>${options.showUser ? html`<th scope="col">User</th>` : ''}<th scope="col">Name</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col">Status</th><th scope="col"><span class="sub">Actions</span></th></tr></thead>
<tbody>${views.map((v) => {
    const status = statusOf(v, now);
    const base = `/passwords/${encodeURIComponent(v.id)}`;
    return html`<tr data-id="${v.id}">
${options.showUser ? html`<td data-label="User">${v.username}${v.mailbox !== v.username ? html`<span class="sub">mailbox ${v.mailbox}</span>` : ''}</td>` : ''}
<td data-label="Name"><strong>${v.name}</strong><span class="sub">${v.id}</span></td>
<td data-label="Scopes">${v.scopes.map((s) => s.toUpperCase()).join(', ')}</td>
<td data-label="Created">${when(v.createdAt)}</td>
<td data-label="Last used">${v.lastUsedAt === null ? 'Never' : html`${when(v.lastUsedAt)}<span class="sub">${v.lastUsedProtocol?.toUpperCase() ?? ''} from ${v.lastUsedIp ?? 'unknown'}</span>`}</td>
<td data-label="Expires">${v.expiresAt === null ? 'Never' : when(v.expiresAt)}</td>
<td data-label="Status"><span class="badge ${status}">${STATUS_WORDS[status]}</span></td>
<td data-label="Actions"><div class="actions">${
      status === 'revoked'
        ? ''
        : [
            status === 'off'
              ? actionForm(`${base}/turn-on`, 'Turn on', token, options.back, { what: v.name })
              : actionForm(`${base}/turn-off`, 'Turn off', token, options.back, { what: v.name }),
            html`<a class="button small" href="${base}/setup">Setup sheet<span class="vh"> of ${v.name}</span></a>`,
            html`<a class="button small" href="${base}/edit?back=${encodeURIComponent(options.back)}">Rename or extend<span class="vh"> ${v.name}</span></a>`,
            actionForm(`${base}/revoke`, 'Revoke', token, options.back, { danger: true, what: v.name }),
          ]
    }</div></td>
</tr>`;
  })}</tbody></table>`;
}

export function myPasswordsPage(views: AppPasswordView[], now: number, token: string, message: SafeHtml | ''): SafeHtml {
  const live = views.filter((v) => v.revokedAt === null);
  return html`<h1>My app passwords</h1>
<p class="lead">An app password lets a printer, scanner or mail app that cannot sign in with your company account send and read mail as you. Give each device its own, so you can switch one off without touching the others.</p>
${message}
<div class="actions no-print"><a class="button primary" href="/passwords/new">Create an app password</a>${live.length > 0 ? html`<a class="button danger" href="/passwords/revoke-all">Revoke all…</a>` : ''}</div>
<h2>Your passwords</h2>
${passwordTable(views, now, token, { showUser: false, back: '/passwords' })}`;
}

export interface NewPasswordForm {
  name: string;
  scopes: string[];
  expiry: string;
  mailbox: string;
}

/** A scope in the words of the create form and of the setup sheet's headings. */
const SCOPE_WORDS: Record<Protocol, { may: string; heading: string }> = {
  smtp: { may: 'Send mail (SMTP)', heading: 'Outgoing mail (SMTP)' },
  imap: { may: 'Read mail (IMAP)', heading: 'Incoming mail (IMAP)' },
  pop3: { may: 'Download mail (POP3)', heading: 'Incoming mail (POP3)' },
};

/** `protocols`: the scopes offered, in order; a password can only be made for those. */
export function newPasswordPage(mailboxes: string[], protocols: readonly Protocol[], token: string, form: NewPasswordForm, error: string | null): SafeHtml {
  return html`<h1>Create an app password</h1>
<p class="lead">You will see the password once, on the next page. Type it into the device, or copy it.</p>
${notice('bad', error)}
<form class="card" method="post" action="/passwords">
${csrfField(token)}
<label for="name">Name</label>
<input type="text" id="name" name="name" required maxlength="100" value="${form.name}" aria-describedby="name-hint" autocomplete="off">
<p class="hint" id="name-hint">Where it will be used, such as “Scanner, 3rd floor” or “Thunderbird at home”.</p>
${
  mailboxes.length > 1
    ? html`<label for="mailbox">Mailbox</label><select id="mailbox" name="mailbox">${mailboxes.map((m) => html`<option value="${m}"${m === form.mailbox ? html` selected` : ''}>${m}</option>`)}</select>`
    : html`<input type="hidden" name="mailbox" value="${mailboxes[0] ?? ''}">`
}
<fieldset><legend>What it may do</legend>
${protocols.map((p) => html`<label><input type="checkbox" name="scopes" value="${p}"${form.scopes.includes(p) ? html` checked` : ''}> ${SCOPE_WORDS[p].may}</label>`)}
</fieldset>
<label for="expiry">Expires</label>
<select id="expiry" name="expiry">${EXPIRY_PRESETS.map(([value, label]) => html`<option value="${value}"${value === form.expiry ? html` selected` : ''}>${label}</option>`)}</select>
<div class="actions"><button type="submit" class="primary">Create</button><a class="button" href="/passwords">Cancel</a></div>
</form>`;
}

export interface EditPasswordForm {
  name: string;
  /** `keep`, or an expiry preset counted from now. */
  expiry: string;
}

/** Renaming and changing the expiry of an existing password; the password itself does not change. */
export function editPasswordPage(view: AppPasswordView, token: string, form: EditPasswordForm, error: string | null, back: string): SafeHtml {
  const path = `/passwords/${encodeURIComponent(view.id)}/edit`;
  return html`<h1>Rename or extend: ${view.name}</h1>
<p class="lead">The password stays the same: nothing to change on the device.</p>
${notice('bad', error)}
<form class="card" method="post" action="${path}">
${csrfField(token)}<input type="hidden" name="back" value="${back}">
<label for="name">Name</label>
<input type="text" id="name" name="name" required maxlength="100" value="${form.name}" autocomplete="off">
<label for="expiry">Expires</label>
<select id="expiry" name="expiry"><option value="keep"${form.expiry === 'keep' ? html` selected` : ''}>${view.expiresAt === null ? 'Never (as now)' : `${when(view.expiresAt)} (as now)`}</option>${EXPIRY_PRESETS.map(([value, label, days]) => html`<option value="${value}"${value === form.expiry ? html` selected` : ''}>${days === 0 ? label : `${label} from now`}</option>`)}</select>
<div class="actions"><button type="submit" class="primary">Save</button><a class="button" href="${back}">Cancel</a></div>
</form>`;
}

/** The one page a password is ever shown on (served no-store); the setup sheet below it is printable. */
export function createdPage(created: CreatedAppPassword): SafeHtml {
  return html`<h1>Your new app password</h1>
<div class="notice warn" role="status">Copy it now: it is shown only this once. passgate keeps no readable copy.</div>
<div class="card">
<p><strong>${created.view.name}</strong> — for ${created.view.scopes.map((s) => s.toUpperCase()).join(' and ')}</p>
<div class="secret"><code id="app-password">${created.password}</code><button type="button" class="primary no-print" data-copy="app-password" hidden>Copy</button></div>
<p class="hint">Spaces and dashes do not matter; type it as shown or without them.</p>
</div>
${setupSheet(created.setup)}
<div class="actions no-print"><button type="button" data-print hidden>Print</button><a class="button primary" href="/passwords">Done</a></div>`;
}

export function setupSheet(sheet: SetupSheet): SafeHtml {
  return html`<section class="card" aria-labelledby="setup-title">
<h2 id="setup-title">Device setup</h2>
<dl class="sheet"><dt>User name</dt><dd>${sheet.username}</dd><dt>Password</dt><dd>the app password</dd></dl>
${sheet.scopes.map(
    (scope) => html`<h3>${SCOPE_WORDS[scope.protocol].heading}</h3>
${scope.note !== null ? html`<p class="hint">${scope.note}</p>` : ''}
${scope.servers.map(
  (s) => html`<dl class="sheet"><dt>Server</dt><dd>${s.host}</dd><dt>Port</dt><dd>${s.port}</dd><dt>Security</dt><dd>${s.tls}</dd><dt>Authentication</dt><dd>Normal password</dd></dl>${s.note !== null ? html`<p class="hint">${s.note}</p>` : ''}`,
)}`,
  )}
<p class="hint">${sheet.certificateNote}</p>
</section>`;
}

export function setupSheetPage(view: AppPasswordView, sheet: SetupSheet): SafeHtml {
  return html`<h1>Setup sheet: ${view.name}</h1>
<p class="lead">The settings for the device using this app password. The password itself is not shown again: if it is lost, revoke it and create a new one.</p>
${setupSheet(sheet)}
<div class="actions no-print"><button type="button" data-print hidden>Print</button><a class="button" href="/passwords">Back</a></div>`;
}

export function revokeAllPage(username: string, count: number, token: string, forOther: boolean): SafeHtml {
  return html`<h1>Revoke all app passwords${forOther ? html` of ${username}` : ''}?</h1>
<div class="notice bad">This stops all ${count} app password${count === 1 ? '' : 's'} at once, for good: every device using one stops sending and reading mail until it gets a new password. Use it if a device was lost or a password leaked.</div>
<form method="post" action="/passwords/revoke-all" class="actions">${csrfField(token)}<input type="hidden" name="user" value="${username}">
<button type="submit" class="danger">Yes, revoke all</button><a class="button" href="${forOther ? '/admin/passwords' : '/passwords'}">Cancel</a></form>`;
}

/** The audit's actions in the words of the sign-in log. */
const ACTION_WORDS: Partial<Record<AuditEvent['action'], string>> = {
  'app-password.create': 'Created',
  'app-password.revoke': 'Revoked',
  'app-password.revoke-all': 'Revoked all',
  'app-password.turn-off': 'Turned off',
  'app-password.turn-on': 'Turned on',
  'app-password.edit': 'Changed',
  'lockout.unlock': 'Unlocked',
};

function describeAction(e: AuditEvent): string {
  return e.action === 'login' ? `Sign-in (${e.protocol?.toUpperCase() ?? '?'})` : (ACTION_WORDS[e.action] ?? e.action);
}

export function signInTable(events: AuditEvent[], showUser: boolean): SafeHtml {
  if (events.length === 0) return html`<div class="card empty">Nothing recorded yet.</div>`;
  return html`<table><thead><tr><th scope="col">When</th>${showUser ? html`<th scope="col">User</th>` : ''}<th scope="col">What</th><th scope="col">App password</th><th scope="col">From</th><th scope="col">Result</th></tr></thead>
<tbody>${events.map(
    (e) => html`<tr><td data-label="When">${when(e.at)}</td>${showUser ? html`<td data-label="User">${e.username}</td>` : ''}
<td data-label="What">${describeAction(e)}</td>
<td data-label="App password">${e.appPasswordName ?? '—'}</td><td data-label="From">${e.clientIp ?? '—'}</td>
<td data-label="Result"><span class="badge ${e.reason === 'ok' ? 'ok' : 'bad'}">${e.action === 'login' ? describeReason(e.reason) : 'Done'}</span></td></tr>`,
  )}</tbody></table>`;
}

export function mySignInsPage(events: AuditEvent[]): SafeHtml {
  return html`<h1>My sign-ins</h1>
<p class="lead">Every time a device signed in with one of your app passwords, and every change to them: the newest first.</p>
${signInTable(events, false)}`;
}

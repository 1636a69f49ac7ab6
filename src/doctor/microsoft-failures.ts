/**
 * The one table that turns what Microsoft (and mail servers in general) answer into plain words and a fix. Each
 * entry matches the text of one stage: `token` (the token endpoint's error and AADSTS code), `smtp` (the reply to
 * AUTH XOAUTH2), `imap` (the tagged reply to AUTHENTICATE XOAUTH2, or to the first command after it), `pop3` (the
 * -ERR to AUTH XOAUTH2, or to STAT after it), `graph` (Microsoft Graph's answer to sendMail: status, error code and
 * message) and `connect`
 * (reaching the upstream: TCP, DNS, TLS). The first match in table order wins, so specific entries come first.
 * docs/troubleshooting.md lists the same entries; a unit test keeps the two together.
 *
 * Sources (Microsoft Learn):
 * - "Authenticate an IMAP, POP or SMTP connection using OAuth" (scopes, IMAP.AccessAsApp / SMTP.SendAsApp,
 *   New-ServicePrincipal, Add-MailboxPermission):
 *   https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 * - "Enable or disable SMTP AUTH in Exchange Online" (Set-CASMailbox / Set-TransportConfig
 *   -SmtpClientAuthenticationDisabled; 5.7.139; security defaults):
 *   https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission
 * - "Microsoft Entra authentication and authorization error codes" (AADSTS):
 *   https://learn.microsoft.com/entra/identity-platform/reference-error-codes
 * - "Enable or disable POP3 or IMAP4 access for a user" (Set-CASMailbox -ImapEnabled, -PopEnabled):
 *   https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/pop3-and-imap4/enable-or-disable-pop3-or-imap4-access
 * - "user: sendMail", "Microsoft Graph error responses", "Limiting application permissions to specific Exchange
 *   Online mailboxes" (New-ApplicationAccessPolicy), "Role Based Access Control for Applications in Exchange Online"
 *   (New-ManagementRoleAssignment -Role "Application Mail.Send"), "Microsoft Graph throttling guidance":
 *   https://learn.microsoft.com/graph/api/user-sendmail, https://learn.microsoft.com/exchange/permissions-exo/application-rbac
 * - Exchange Online limits (3 concurrent SMTP connections per mailbox, 432 4.3.2):
 *   https://learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits
 */
import { fail, type CheckResult } from './doctor-report.js';

export type FailureStage = 'token' | 'smtp' | 'imap' | 'pop3' | 'graph' | 'connect';

export interface KnownFailure {
  /** Stable id, printed in --json and listed in docs/troubleshooting.md. */
  id: string;
  stage: FailureStage;
  pattern: RegExp;
  /** A text it matches, as the server words it (the table's own test checks that it maps back to this entry). */
  example: string;
  /** What it means, in plain words. */
  meaning: string;
  /** What to do. */
  fix: string;
}

const APP_GRANTS =
  'app mode: the application needs the Office 365 Exchange Online application permission (SMTP.SendAsApp, IMAP.AccessAsApp, POP.AccessAsApp) with admin consent; ' +
  'its service principal must be registered in Exchange (New-ServicePrincipal -AppId <client id> -ObjectId <enterprise application object id>) ' +
  'and given the mailbox (Add-MailboxPermission -Identity <mailbox> -User <service principal id> -AccessRights FullAccess)';

export const KNOWN_FAILURES: readonly KnownFailure[] = [
  // --- at the token endpoint (Entra ID) ---
  {
    id: 'aadsts-bad-secret',
    stage: 'token',
    pattern: /AADSTS7000215\b/,
    example: 'invalid_client: AADSTS7000215: Invalid client secret provided.',
    meaning: 'Entra ID refused the client secret: it is wrong, or it is the secret\'s ID rather than its value.',
    fix: 'In Entra ID > App registrations > the app > Certificates & secrets, create a new secret and put its Value in oauth.client_secret_file.',
  },
  {
    id: 'aadsts-secret-expired',
    stage: 'token',
    pattern: /AADSTS7000222\b/,
    example: "invalid_client: AADSTS7000222: The provided client secret keys for app '...' are expired.",
    meaning: 'The client secret has expired.',
    fix: 'Create a new client secret for the app in Entra ID and replace oauth.client_secret_file; note the new expiry date.',
  },
  {
    id: 'aadsts-app-not-found',
    stage: 'token',
    pattern: /AADSTS700016\b/,
    example: "unauthorized_client: AADSTS700016: Application with identifier '...' was not found in the directory.",
    meaning: 'No application with this client id exists in this tenant (or it was never consented there).',
    fix: 'Check oauth.client_id (the Application (client) ID) and oauth.tenant (the tenant the app lives in, or where an admin consented to it).',
  },
  {
    id: 'aadsts-tenant-not-found',
    stage: 'token',
    pattern: /AADSTS90002\b|AADSTS900023\b/,
    example: "invalid_request: AADSTS90002: Tenant 'contoso.example' not found.",
    meaning: 'The tenant named in oauth.tenant does not exist.',
    fix: 'Set oauth.tenant to the tenant id (a GUID) or its primary domain, e.g. contoso.onmicrosoft.com.',
  },
  {
    id: 'aadsts-bad-certificate',
    stage: 'token',
    pattern: /AADSTS700027\b|AADSTS700024\b/,
    example: 'invalid_client: AADSTS700027: Client assertion failed signature validation.',
    meaning: 'Entra ID refused the certificate credential: the certificate is not registered on the app, or the assertion was not valid.',
    fix: 'Upload oauth.certificate_file under the app\'s Certificates & secrets > Certificates, check the private key matches, and that this machine\'s clock is right.',
  },
  {
    id: 'aadsts-conditional-access',
    stage: 'token',
    pattern: /AADSTS53\d{3}\b/,
    example: 'invalid_grant: AADSTS53003: Access has been blocked by Conditional Access policies.',
    meaning: 'A Conditional Access policy blocked the sign-in (for example a location, device or workload-identity policy).',
    fix: 'In Entra ID > Sign-in logs (service principal sign-ins for app mode), open the failure to see which policy applied; exclude passgate\'s app or mailbox, or allow its public IP address.',
  },
  {
    id: 'aadsts-consent-missing',
    stage: 'token',
    pattern: /AADSTS65001\b|AADSTS90094\b|AADSTS90099\b/,
    example: 'invalid_grant: AADSTS65001: The user or administrator has not consented to use the application.',
    meaning: 'Nobody has consented to the permissions passgate asks for.',
    fix: 'In Entra ID > App registrations > the app > API permissions, choose "Grant admin consent"; in delegated mode, run passgate oauth connect again after consent.',
  },
  {
    id: 'aadsts-mfa-required',
    stage: 'token',
    pattern: /AADSTS50076\b|AADSTS50079\b/,
    example: "invalid_grant: AADSTS50076: you must use multi-factor authentication to access '...'.",
    meaning: 'The sign-in now needs multi-factor authentication (50076), or the user must first register for it (50079); a stored refresh token cannot answer that.',
    fix: 'Have the user complete MFA registration if asked, then run passgate oauth connect --mailbox <mailbox> and sign in interactively.',
  },
  {
    id: 'aadsts-grant-lost',
    stage: 'token',
    pattern: /AADSTS70043\b|AADSTS700082\b|AADSTS50173\b|AADSTS70008\b|AADSTS50057\b|\binvalid_grant\b|needs `passgate oauth connect/,
    example: 'invalid_grant: AADSTS70043: The refresh token has expired or is invalid due to sign-in frequency checks.',
    meaning: 'The mailbox\'s refresh token is expired or revoked (password changed, consent withdrawn, user disabled, or unused for 90 days).',
    fix: 'Run passgate oauth connect --mailbox <mailbox> and sign in as that mailbox.',
  },
  {
    id: 'aadsts-resource-not-found',
    stage: 'token',
    pattern: /AADSTS500011\b|AADSTS650057\b/,
    example: 'invalid_resource: AADSTS500011: The resource principal named https://outlook.office365.com was not found in the tenant.',
    meaning: 'The requested resource is not available to the app: Exchange Online is not in this tenant, or the scope names the wrong resource.',
    fix: 'Leave oauth.scopes unset for Microsoft (passgate asks for https://outlook.office365.com/.default in app mode), and add the Office 365 Exchange Online permissions to the app.',
  },
  {
    id: 'token-invalid-scope',
    stage: 'token',
    pattern: /AADSTS70011\b|AADSTS1002012\b|\binvalid_scope\b/,
    example: "invalid_scope: AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
    meaning: 'The provider refused the requested scopes.',
    fix: 'Check oauth.scopes; for Microsoft leave it unset (app mode needs the single .default scope, delegated mode IMAP.AccessAsUser.All, SMTP.Send and offline_access).',
  },
  {
    id: 'token-client-refused',
    stage: 'token',
    pattern: /\binvalid_client\b|\bunauthorized_client\b|\bhttp_40[013]\b/,
    example: 'invalid_client: client authentication failed',
    meaning: 'The provider refused the application itself (its id or credentials).',
    fix: 'Check oauth.client_id, oauth.client_secret_file (or the certificate) and oauth.tenant / oauth.token_endpoint.',
  },
  {
    // Before token-unreachable: an HTTP error is an answer, so the network is not the problem.
    id: 'token-provider-failing',
    stage: 'token',
    pattern: /\bhttp_5\d\d\b|\bhttp_429\b|temporarily_unavailable|server_error/,
    example: 'http_503: unexpected HTTP response status code',
    meaning: 'The token endpoint was reached and answered with an error of its own (HTTP 5xx, or 429: too many requests): the provider is failing or throttling; the network is fine.',
    fix: 'Wait a few minutes and run doctor again; check the provider\'s service health (Microsoft: the Microsoft 365 admin center, Service health, and status.cloud.microsoft). passgate serve retries with backoff meanwhile.',
  },
  {
    id: 'token-unreachable',
    stage: 'token',
    pattern: /\btimeout\b|\bnetwork\b|fetch failed|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|did not answer|backing off/,
    example: 'timeout: the provider did not answer in time',
    meaning: 'The token endpoint could not be reached, or did not answer in time.',
    fix: 'Check that this machine reaches <token endpoint host> over HTTPS, through any proxy or firewall (and its DNS resolves the name), then run doctor again.',
  },

  // --- the upstream SMTP server's reply to AUTH XOAUTH2 ---
  {
    id: 'smtp-auth-disabled-tenant',
    stage: 'smtp',
    pattern: /5\.7\.139\b.*\btenant\b/i,
    example: '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.',
    meaning: 'SMTP AUTH is turned off for the whole organization; Exchange refuses every SMTP login, OAuth included.',
    fix: 'In Exchange Online PowerShell: Set-TransportConfig -SmtpClientAuthenticationDisabled $false (or allow it for the mailbox only: Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false).',
  },
  {
    id: 'smtp-security-defaults',
    stage: 'smtp',
    pattern: /5\.7\.139\b.*security defaults/i,
    example: "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy.",
    meaning: 'The tenant\'s security defaults block SMTP AUTH.',
    fix: 'Turn security defaults off (Entra ID > Overview > Properties) and use Conditional Access policies instead, or send another way.',
  },
  {
    id: 'smtp-auth-disabled',
    stage: 'smtp',
    pattern: /5\.7\.139\b/,
    example: '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.',
    meaning: 'SMTP AUTH is disabled for this mailbox or the tenant, or a sign-in policy (Conditional Access) blocked it.',
    fix: 'In Exchange Online PowerShell: Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false; check the tenant setting with Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled; check the Entra sign-in logs for a Conditional Access failure.',
  },
  {
    id: 'smtp-token-refused',
    stage: 'smtp',
    pattern: /5\.7\.3\b/,
    example: '535 5.7.3 Authentication unsuccessful',
    meaning: 'Exchange accepted the connection but refused the token for this mailbox.',
    fix:
      `${APP_GRANTS}; delegated mode: the token must carry SMTP.Send for this very mailbox (connect it with passgate oauth connect as that user), ` +
      'and the user needs an Exchange Online license; in both modes SMTP AUTH must be allowed for the mailbox.',
  },
  {
    id: 'smtp-too-many-connections',
    stage: 'smtp',
    pattern: /4\.3\.2\b|concurrent connections/i,
    example: '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded',
    meaning: 'The mailbox already has as many SMTP sessions as the provider allows (Exchange Online: 3).',
    fix: 'Wait for other senders of this mailbox to finish, or lower smtp.upstream.max_connections_per_mailbox where several passgate instances share it.',
  },
  {
    id: 'smtp-login-refused',
    stage: 'smtp',
    pattern: /^[45]\d\d\b/,
    example: '535 5.7.8 Error: authentication failed',
    meaning: 'The upstream SMTP server refused the XOAUTH2 login.',
    fix: 'Read the upstream\'s reply (in the line above); check that the token is meant for this server (oauth.scopes) and that the mailbox may use SMTP.',
  },

  // --- Microsoft Graph's answer to sendMail (the Graph transport, docs/graph.md) ---
  {
    id: 'graph-send-as-denied',
    stage: 'graph',
    pattern: /ErrorSendAsDenied/,
    example: '403 ErrorSendAsDenied: The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.',
    meaning: "Graph sends as the message's From header, and the mailbox may not send as that address.",
    fix: 'Make the device put <mailbox> (or an address the mailbox may send as) in From; or grant it: Add-RecipientPermission -Identity <that address> -Trustee <mailbox> -AccessRights SendAs.',
  },
  {
    id: 'graph-mailbox-not-enabled',
    stage: 'graph',
    pattern: /MailboxNotEnabledForRESTAPI|MailboxNotHostedInExchangeOnline/,
    example: '404 MailboxNotEnabledForRESTAPI: The mailbox is either inactive, soft-deleted, or is hosted on-premise.',
    meaning: 'The address has no active Exchange Online mailbox (no license, on-premises, or deleted), so Graph cannot send as it.',
    fix: 'Give the user an Exchange Online license (or move the mailbox to Exchange Online); a shared mailbox works without a license. Check with Get-EXOMailbox -Identity <mailbox>.',
  },
  {
    id: 'graph-access-policy',
    stage: 'graph',
    pattern: /AccessPolicy|\[RAOP\]|RBAC|management scope/i,
    example: '403 ErrorAccessDenied: Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.',
    meaning: "An application access policy (or RBAC for Applications scope) limits passgate's application to other mailboxes than this one.",
    fix: 'Add the mailbox to the policy\'s group (Add-DistributionGroupMember -Identity <policy group> -Member <mailbox>), or scope RBAC for Applications to include it (New-ManagementScope / New-ManagementRoleAssignment -App <client id> -Role "Application Mail.Send"); check with Test-ApplicationAccessPolicy -Identity <mailbox> -AppId <client id>. Changes take up to an hour.',
  },
  {
    id: 'graph-access-denied',
    stage: 'graph',
    pattern: /ErrorAccessDenied|Authorization_RequestDenied|^403\b/,
    example: '403 ErrorAccessDenied: Access is denied. Check credentials and try again.',
    meaning: "Graph refused passgate's application: the Mail.Send permission is missing, or an administrator has not consented to it.",
    fix: 'In Entra ID > App registrations > the app (<client id>) > API permissions: add Microsoft Graph > Application permissions > Mail.Send (delegated mode: Delegated > Mail.Send) and click "Grant admin consent"; then scope it to the right mailboxes (docs/graph.md).',
  },
  {
    id: 'graph-token-refused',
    stage: 'graph',
    pattern: /InvalidAuthenticationToken|^401\b/,
    example: '401 InvalidAuthenticationToken: Access token validation failure. Invalid audience.',
    meaning: 'Graph refused the access token: it is not for Graph (audience https://graph.microsoft.com), or it has expired or was revoked.',
    fix: 'Check that the token endpoint issues tokens for scope https://graph.microsoft.com/.default for this app (oauth.tenant, the app registration); in delegated mode connect the mailbox again with passgate oauth connect --mailbox <mailbox>.',
  },
  {
    id: 'graph-mailbox-not-found',
    stage: 'graph',
    pattern: /ErrorInvalidUser|ResourceNotFound|^404\b/,
    example: "404 ErrorInvalidUser: The requested user 'scanner@contoso.com' is invalid.",
    meaning: 'Graph knows no user with this address in the tenant.',
    fix: 'Check the spelling of <mailbox> and that it is a user or shared mailbox of this tenant (not a group or contact).',
  },
  {
    id: 'graph-message-too-big',
    stage: 'graph',
    pattern: /ErrorMessageSizeExceeded|RequestEntityTooLarge|^413\b/,
    example: '413 ErrorMessageSizeExceeded: The message exceeds the maximum supported size.',
    meaning: "The message is larger than the mailbox's MaxSendSize, or a request was over Graph's 4 MB.",
    fix: 'Send smaller messages, or raise the limit: Set-Mailbox -Identity <mailbox> -MaxSendSize 150MB; keep smtp.max_message_bytes at or below it.',
  },
  {
    id: 'graph-quota-exceeded',
    stage: 'graph',
    pattern: /QuotaExceeded/,
    example: '507 ErrorQuotaExceeded: The mailbox quota has been exceeded.',
    meaning: 'The mailbox is full: Graph cannot save the message (Sent Items, drafts), so it cannot send it.',
    fix: 'Empty Deleted Items and Sent Items of <mailbox>, or raise its quota (Set-Mailbox -ProhibitSendQuota).',
  },
  {
    id: 'graph-throttled',
    stage: 'graph',
    pattern: /^(429|503|504)\b|ApplicationThrottled|TooManyRequests/,
    example: '429 ApplicationThrottled: Application is over its MailboxConcurrency limit.',
    meaning: 'Graph is throttling requests for this mailbox (4 at once, 10,000 per 10 minutes per app); passgate answers 451 and waits as Retry-After asks.',
    fix: 'Nothing to fix if it passes; if it lasts, spread the senders of <mailbox> over time or over mailboxes.',
  },

  // --- the upstream IMAP server's reply ---
  {
    id: 'imap-not-connected',
    stage: 'imap',
    pattern: /User is authenticated but not connected/i,
    example: 'BAD User is authenticated but not connected.',
    meaning: 'Exchange accepted the token but the app has no access to this mailbox.',
    fix: APP_GRANTS + '.',
  },
  {
    id: 'imap-unavailable',
    stage: 'imap',
    pattern: /\[UNAVAILABLE\]/i,
    example: 'NO [UNAVAILABLE] Temporary authentication failure.',
    meaning: 'The IMAP server could not check the login right now (a temporary failure on its side).',
    fix: 'Try again in a few minutes; if it persists, the provider has an incident.',
  },
  {
    id: 'imap-authenticate-failed',
    stage: 'imap',
    pattern: /AUTHENTICATE failed|AUTHENTICATIONFAILED|^(NO|BAD)\b/i,
    example: 'NO AUTHENTICATE failed.',
    meaning: 'The IMAP server refused the token for this mailbox.',
    fix:
      `${APP_GRANTS}; delegated mode: the token must carry IMAP.AccessAsUser.All for this very mailbox; ` +
      'in both modes IMAP must be enabled on the mailbox (Set-CASMailbox -Identity <mailbox> -ImapEnabled $true) and the user needs an Exchange Online license.',
  },

  // --- the upstream POP3 server's reply (Exchange answers every refused XOAUTH2 login with the same -ERR) ---
  {
    id: 'pop3-not-connected',
    stage: 'pop3',
    pattern: /not connected/i,
    example: '-ERR User is authenticated but not connected.',
    meaning: 'Exchange accepted the token but the app has no access to this mailbox.',
    fix: APP_GRANTS + '.',
  },
  {
    id: 'pop3-temporary',
    stage: 'pop3',
    pattern: /\[(SYS\/TEMP|IN-USE|LOGIN-DELAY)\]/i,
    example: '-ERR [IN-USE] Mailbox is locked by another POP3 session.',
    meaning: 'The POP3 server cannot open the mailbox now: another POP3 session holds it, or a temporary failure on its side.',
    fix: 'Close other POP3 clients of this mailbox (POP3 allows one session at a time) and try again in a few minutes.',
  },
  {
    id: 'pop3-authentication-failure',
    stage: 'pop3',
    pattern: /Authentication failure|unknown user name or bad password|^-ERR\b/i,
    example: '-ERR Authentication failure: unknown user name or bad password.',
    meaning: 'The POP3 server refused the token for this mailbox: on Exchange Online, POP is turned off for the mailbox, or the app lacks the POP permission or access to the mailbox.',
    fix:
      'Turn POP on for the mailbox (Set-CASMailbox -Identity <mailbox> -PopEnabled $true; Get-CASMailbox <mailbox> | Format-List PopEnabled shows it); ' +
      `${APP_GRANTS}; delegated mode: the token must carry POP.AccessAsUser.All for this very mailbox (add https://outlook.office.com/POP.AccessAsUser.All to oauth.scopes, then passgate oauth connect again); ` +
      'the user needs an Exchange Online license.',
  },

  // --- reaching the upstream ---
  {
    id: 'tls-name-mismatch',
    stage: 'connect',
    pattern: /does not match certificate|altnames|ERR_TLS_CERT_ALTNAME/i,
    example: "Hostname/IP does not match certificate's altnames",
    meaning: 'The upstream\'s TLS certificate is not for the name passgate connected to.',
    fix: 'Check smtp.upstream.host / imap.upstream.host / pop3.upstream.host, or set servername to the name on the certificate; a TLS-inspecting proxy in the way also causes this.',
  },
  {
    id: 'tls-untrusted',
    stage: 'connect',
    pattern: /self[- ]signed|unable to (get|verify)|certificate (has expired|is not yet valid)|UNABLE_TO_|CERT_|wrong version number|handshake/i,
    example: 'upstream connection error: self-signed certificate',
    meaning: 'The TLS handshake with the upstream failed: its certificate is not trusted (or expired), or it does not speak TLS on that port.',
    fix: 'For a private upstream, set ca_file to its CA; check tls (starttls on 587/143, implicit on 465/993); a TLS-inspecting proxy needs its CA trusted.',
  },
  {
    id: 'connect-refused',
    stage: 'connect',
    pattern: /ECONNREFUSED/,
    example: 'cannot reach upstream 127.0.0.1:587: connect ECONNREFUSED 127.0.0.1:587',
    meaning: 'Nothing accepts connections at the upstream host and port.',
    fix: 'Check smtp.upstream.host/port, imap.upstream.host/port and pop3.upstream.host/port (smtp.office365.com:587, outlook.office365.com:993 and :995) and any firewall in between.',
  },
  {
    id: 'dns-failed',
    stage: 'connect',
    pattern: /ENOTFOUND|EAI_AGAIN/,
    example: 'upstream connection error: getaddrinfo ENOTFOUND smtp.office365.example',
    meaning: 'The upstream host name does not resolve.',
    fix: 'Check the host name in smtp.upstream.host / imap.upstream.host / pop3.upstream.host and this machine\'s DNS.',
  },
  {
    id: 'connect-timeout',
    stage: 'connect',
    pattern: /in time|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/i,
    example: 'upstream smtp.office365.com:587 did not answer in time',
    meaning: 'The upstream did not answer: a firewall probably drops the traffic (many networks block outgoing 587 or 993).',
    fix: 'Allow outgoing TCP to the upstream host and port, then run doctor again.',
  },
  {
    id: 'connect-dropped',
    stage: 'connect',
    pattern: /closed the connection|ECONNRESET|EPIPE|greeting|refused (EHLO|STARTTLS)/i,
    example: 'upstream closed the connection',
    meaning: 'The upstream closed the connection or answered something unexpected before login.',
    fix: 'Check that host and port point at an SMTP submission (or IMAP, or POP3) server and that tls matches the port.',
  },
];

/** The known failure a stage's text matches, if any. */
export function explainFailure(stage: FailureStage, text: string): KnownFailure | null {
  return KNOWN_FAILURES.find((f) => f.stage === stage && f.pattern.test(text)) ?? null;
}

/** What the doctor knows of the case, filled into the fix's placeholders so the commands can be pasted. */
export interface FailureContext {
  mailbox?: string | null | undefined;
  clientId?: string | null | undefined;
  /** The token endpoint asked (a URL): its host and port name what must be reachable. */
  tokenEndpoint?: string | null | undefined;
  /** What the server answered in full (line breaks kept), shown under the hint when the detail could not hold it. */
  answer?: string | null | undefined;
}

/** `host:port` of a URL, the port spelled out (what a firewall rule names). */
function hostAndPort(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'http:' ? '80' : '443')}`;
}

/** The hint printed under a failed check: what it means, then what to do. */
export function failureHint(failure: KnownFailure, context: FailureContext = {}): string {
  let fix = failure.fix;
  if (context.mailbox) fix = fix.replaceAll('<mailbox>', context.mailbox);
  if (context.clientId) fix = fix.replaceAll('<client id>', context.clientId);
  fix = fix.replaceAll('<token endpoint host>', context.tokenEndpoint ? hostAndPort(context.tokenEndpoint) : 'the token endpoint\'s host');
  return `${failure.meaning}\nfix: ${fix}`;
}

/** The server's answer under a hint, each of its lines indented: a provider's line breaks stay line breaks. */
function withAnswer(hint: string, detail: string, answer: string | null | undefined): string {
  const text = answer?.trim();
  if (!text || detail.includes(text)) return hint;
  return `${hint}\nanswer:\n${text.split(/\r?\n/).map((line) => `  ${line}`).join('\n')}`;
}

/** A failed check explained by the table when the text matches an entry, else with the fallback hint. */
export function explainedFailure(name: string, stage: FailureStage, detail: string, text: string, fallback: string, context: FailureContext = {}): CheckResult {
  const known = explainFailure(stage, text);
  const result = fail(name, detail, withAnswer(known ? failureHint(known, context) : fallback, detail, context.answer));
  return known ? { ...result, failure: known.id } : result;
}

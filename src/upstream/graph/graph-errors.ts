import type { GraphOutcome } from '../../core/ports/graph-outcome.js';

/**
 * One Graph answer sorted into the transport's outcomes (core/ports/graph-outcome.ts). Graph's error body is
 * `{ "error": { "code": "...", "message": "..." } }` (Microsoft Learn, "Microsoft Graph error responses and resource
 * types"); the code is matched first, then the status. An application access policy or RBAC for Applications that
 * leaves the mailbox out answers 403 ErrorAccessDenied whose message names the policy ("Access to OData is disabled:
 * [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."), so the message tells it from a missing
 * permission.
 */
export function graphOutcome(status: number, code: string | null, message: string | null): GraphOutcome {
  if (status >= 200 && status < 300) return 'sent';
  const text = `${code ?? ''} ${message ?? ''}`;
  if (/ErrorSendAsDenied/i.test(text)) return 'send-as-denied';
  if (/MailboxNotEnabledForRESTAPI|MailboxNotHostedInExchangeOnline/i.test(text)) return 'mailbox-not-enabled';
  if (/ErrorMessageSizeExceeded|RequestEntityTooLarge/i.test(text) || status === 413) return 'too-big';
  if (/ErrorQuotaExceeded|QuotaExceeded/i.test(text)) return 'quota-exceeded';
  if (/AccessPolicy|\[RAOP\]|RBAC|management scope/i.test(text)) return 'scope-denied';
  if (/ErrorInvalidUser|ResourceNotFound|ErrorItemNotFound.*user|MailboxNotFound/i.test(text) || status === 404) return 'mailbox-not-found';
  if (status === 401) return 'token-refused';
  if (/ErrorAccessDenied|Authorization_RequestDenied|AccessDenied/i.test(text) || status === 403) return 'access-denied';
  if (status === 429 || status === 503 || status === 504 || /ApplicationThrottled|TooManyRequests/i.test(text)) return 'throttled';
  if (status >= 400 && status < 500) return 'invalid-message';
  return 'unavailable';
}

/** Graph's error code and message from an error body, when it has the documented shape. */
export function graphError(body: unknown): { code: string | null; message: string | null } {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return {
    code: typeof error?.code === 'string' ? error.code : null,
    message: typeof error?.message === 'string' ? error.message : null,
  };
}

/** Retry-After in seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date); null when absent or unreadable. */
export function retryAfterSeconds(value: string | null, now: number = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

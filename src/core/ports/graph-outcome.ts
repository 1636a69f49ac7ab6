/**
 * What Microsoft Graph (or passgate on its behalf) decided about one message sent through the Graph transport
 * (upstream/graph/). Graph answers HTTP with `{ error: { code, message } }`; the transport sorts each answer into
 * one of these, and the SMTP reply table (smtp/smtp-replies.ts, GRAPH_REPLIES) gives each its reply, so a new
 * outcome without a reply does not compile. Sources: Microsoft Learn, "user: sendMail", "Microsoft Graph error
 * responses", "Microsoft Graph throttling guidance" and "Outlook service limits".
 *  - sent: Graph answered 202 Accepted;
 *  - send-as-denied: ErrorSendAsDenied (the From header is a mailbox the mailbox may not send as);
 *  - mailbox-not-enabled: MailboxNotEnabledForRESTAPI (no Exchange Online mailbox, or REST turned off for it);
 *  - mailbox-not-found: ErrorInvalidUser / ResourceNotFound / 404 for the user;
 *  - scope-denied: an application access policy or RBAC for Applications leaves the mailbox out;
 *  - access-denied: ErrorAccessDenied / Authorization_RequestDenied / 403: no Mail.Send (or consent missing);
 *  - token-refused: 401 twice (a fresh token refused too);
 *  - too-big: ErrorMessageSizeExceeded / 413, or a message passgate cannot cut below Graph's request size;
 *  - quota-exceeded: ErrorQuotaExceeded (the mailbox is full, the draft cannot be saved);
 *  - invalid-message: another 400 (ErrorInvalidRecipients, a MIME Graph cannot read): not worth retrying;
 *  - header-recipient-not-in-envelope: passgate's own refusal: a To/Cc/Bcc header address the client did not
 *    name in RCPT TO would get a copy, since Graph sends to the header recipients;
 *  - throttled: 429, or 503 / 504 (with or without Retry-After), or passgate holding back for a Retry-After;
 *  - budget-spent: passgate's count of requests per app and mailbox (10,000 in 10 minutes) is spent;
 *  - busy: no request slot for the mailbox freed up in time (4 concurrent requests);
 *  - unavailable: another 5xx, a timeout or a connection failure before Graph answered.
 */
export const GRAPH_OUTCOMES = [
  'sent',
  'send-as-denied',
  'mailbox-not-enabled',
  'mailbox-not-found',
  'scope-denied',
  'access-denied',
  'token-refused',
  'too-big',
  'quota-exceeded',
  'invalid-message',
  'header-recipient-not-in-envelope',
  'throttled',
  'budget-spent',
  'busy',
  'unavailable',
] as const;
export type GraphOutcome = (typeof GRAPH_OUTCOMES)[number];

/** A reply as the SMTP reply table writes it: code, and the enhanced code followed by the text. */
export interface GraphReplySpec {
  code: number;
  text: string;
}

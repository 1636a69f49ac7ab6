import type { EventLogger } from '../../core/event-logger.js';
import type { GraphOutcome, GraphReplySpec } from '../../core/ports/graph-outcome.js';
import type { RequestBudget } from '../../core/ports/request-budget.js';
import type { UpstreamReply } from '../../core/ports/upstream-failure.js';
import { GRAPH_AUDIENCE, type TokenProvider } from '../../core/token-provider.js';
import { splitAttachments, type GraphAttachment } from './graph-attachment-split.js';
import type { GraphClient, GraphRequest, GraphResponse } from './graph-client.js';
import { graphOutcome } from './graph-errors.js';
import { prepareMime } from './graph-mime.js';
import type { RequestSlots } from '../../core/ports/request-slots.js';

/** The audience of Microsoft Graph: app-only tokens are asked with this scope (Mail.Send as an application permission). */
export { GRAPH_AUDIENCE };

/** Graph refuses a request body over 4 MB (Microsoft Learn, "user: sendMail", "Attach large files"). */
export const GRAPH_MAX_REQUEST_BYTES = 4_000_000;
/** Upload session chunks are multiples of 320 KiB, at most 4 MiB: 12 × 320 KiB. */
export const GRAPH_UPLOAD_CHUNK_BYTES = 12 * 320 * 1024;
/**
 * Attachments from 3 MB go up through an upload session (Microsoft Learn, "Attach large files"); smaller ones in
 * one JSON request, whose base64 and JSON around it must stay under the 4 MB request limit: a margin below 3 MB.
 */
const UPLOAD_SESSION_FROM_BYTES = 2_900_000;

export interface GraphMessageSenderDeps {
  client: GraphClient;
  tokens: TokenProvider;
  slots: RequestSlots;
  /** 10,000 requests per 10 minutes per app and mailbox (over every instance with Redis). */
  budget: RequestBudget;
  /** The SMTP reply table's Graph rows (smtp-replies.ts GRAPH_REPLIES), handed in by app.ts. */
  replies: Record<GraphOutcome, GraphReplySpec>;
  log: EventLogger;
  /** Names the app in the budget key (the OAuth client id). */
  appId: string;
  now?: () => number;
}

/** A Graph answer that ends the message: its outcome and what support needs. */
class GraphStop extends Error {
  constructor(
    readonly outcome: GraphOutcome,
    readonly requestId: string | null,
    readonly detail: string,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(detail);
  }
}

const base64Length = (bytes: number) => Math.ceil(bytes / 3) * 4;
const userPath = (mailbox: string) => `/users/${encodeURIComponent(mailbox)}`;

/**
 * Sends one message as a mailbox through Microsoft Graph and answers with the SMTP reply the client gets: Graph's
 * 202 is the 250 (with Graph's request-id), any failure before it a 4xx or 5xx naming it (GRAPH_REPLIES).
 *  - Up to 4 MB of request: one `POST /users/{mailbox}/sendMail`, the MIME message base64 as text/plain.
 *  - Larger: a draft from the MIME without its largest parts (`POST /users/{mailbox}/messages`), each part as a
 *    file attachment (an upload session from 3 MB, PUT in 320 KiB multiples; below that one POST), then
 *    `POST .../messages/{id}/send`. A draft left behind by a failure is deleted (best effort).
 * Every request: a mailbox held back by Graph's Retry-After (heard by any instance, with Redis) is answered 451
 * without asking Graph; one of the
 * mailbox's 4 request slots (waiting up to the wait); one request from the app's budget for the mailbox; the
 * token (a 401 on a cached token: dropped, the request tried once more with a fresh one).
 */
export class GraphMessageSender {
  private readonly now: () => number;

  constructor(private readonly deps: GraphMessageSenderDeps) {
    this.now = deps.now ?? Date.now;
  }

  async send(mailbox: string, envelope: readonly string[], message: Buffer): Promise<UpstreamReply> {
    const started = this.now();
    const prepared = prepareMime(message, envelope);
    if (!prepared.ok) {
      const detail = `not in RCPT TO: ${prepared.notInEnvelope.slice(0, 3).join(', ')}`;
      this.deps.log.info({ mailbox, transport: 'graph', outcome: 'header-recipient-not-in-envelope', detail }, 'graph message refused');
      return this.reply('header-recipient-not-in-envelope', null, detail);
    }
    let path: 'mime' | 'draft' = 'mime';
    try {
      let requestId: string | null;
      if (base64Length(prepared.mime.length) <= GRAPH_MAX_REQUEST_BYTES) {
        requestId = (await this.call(mailbox, { method: 'POST', path: `${userPath(mailbox)}/sendMail`, token: null, contentType: 'text/plain', body: prepared.mime.toString('base64') })).requestId;
      } else {
        path = 'draft';
        requestId = await this.sendLarge(mailbox, prepared.mime);
      }
      this.deps.log.info({ mailbox, transport: 'graph', path, requestId, bytes: message.length, recipients: envelope.length, ms: this.now() - started }, 'graph message sent');
      return this.reply('sent', requestId, null);
    } catch (error) {
      const stop = error instanceof GraphStop ? error : new GraphStop('unavailable', null, (error as Error).message);
      this.deps.log.warn({ mailbox, transport: 'graph', path, outcome: stop.outcome, requestId: stop.requestId, cause: stop.detail }, 'graph message refused');
      const wait = stop.retryAfterSeconds === null ? '' : `, retry after ${stop.retryAfterSeconds} s`;
      return this.reply(stop.outcome, stop.requestId, `${stop.detail}${wait}`);
    }
  }

  /** The draft path: the draft, its attachments, then send; the draft is deleted if anything fails before send. */
  private async sendLarge(mailbox: string, mime: Buffer): Promise<string | null> {
    // The draft's MIME goes base64 in one request: at most 3 bytes of MIME per 4 of request.
    const split = splitAttachments(mime, Math.floor((GRAPH_MAX_REQUEST_BYTES * 3) / 4) - 3);
    if (!split) throw new GraphStop('too-big', null, `${mime.length} bytes and no attachment to send apart: over Graph's 4 MB request`);
    const draft = await this.call(mailbox, { method: 'POST', path: `${userPath(mailbox)}/messages`, token: null, contentType: 'text/plain', body: split.draft.toString('base64') });
    const id = (draft.body as { id?: unknown } | null)?.id;
    if (typeof id !== 'string') throw new GraphStop('unavailable', draft.requestId, 'draft created without an id');
    const messagePath = `${userPath(mailbox)}/messages/${encodeURIComponent(id)}`;
    let sent = false;
    try {
      for (const attachment of split.attachments) await this.attach(mailbox, messagePath, attachment);
      const response = await this.call(mailbox, { method: 'POST', path: `${messagePath}/send`, token: null });
      sent = true;
      return response.requestId;
    } finally {
      if (!sent) await this.call(mailbox, { method: 'DELETE', path: messagePath, token: null }).catch(() => undefined);
    }
  }

  private async attach(mailbox: string, messagePath: string, attachment: GraphAttachment): Promise<void> {
    const item = { name: attachment.name, contentType: attachment.contentType, isInline: attachment.isInline, ...(attachment.contentId ? { contentId: attachment.contentId } : {}) };
    if (attachment.bytes.length < UPLOAD_SESSION_FROM_BYTES) {
      const body = JSON.stringify({ '@odata.type': '#microsoft.graph.fileAttachment', ...item, contentBytes: attachment.bytes.toString('base64') });
      await this.call(mailbox, { method: 'POST', path: `${messagePath}/attachments`, token: null, contentType: 'application/json', body });
      return;
    }
    const session = await this.call(mailbox, {
      method: 'POST',
      path: `${messagePath}/attachments/createUploadSession`,
      token: null,
      contentType: 'application/json',
      body: JSON.stringify({ AttachmentItem: { attachmentType: 'file', ...item, size: attachment.bytes.length } }),
    });
    const uploadUrl = (session.body as { uploadUrl?: unknown } | null)?.uploadUrl;
    if (typeof uploadUrl !== 'string') throw new GraphStop('unavailable', session.requestId, 'upload session without an uploadUrl');
    const total = attachment.bytes.length;
    for (let offset = 0; offset < total; offset += GRAPH_UPLOAD_CHUNK_BYTES) {
      const chunk = attachment.bytes.subarray(offset, Math.min(total, offset + GRAPH_UPLOAD_CHUNK_BYTES));
      // The upload URL carries its own authorization: no bearer token is sent to it (Microsoft Learn).
      await this.call(mailbox, {
        method: 'PUT',
        path: uploadUrl,
        token: null,
        contentType: 'application/octet-stream',
        body: chunk,
        headers: { 'content-range': `bytes ${offset}-${offset + chunk.length - 1}/${total}` },
      }, false);
    }
  }

  /**
   * One Graph request for the mailbox, through the hold, a slot and the budget, with a token unless `authorized`
   * is false (an upload URL). A 2xx is returned; anything else throws GraphStop with its outcome.
   */
  private async call(mailbox: string, request: GraphRequest, authorized = true): Promise<GraphResponse> {
    const key = `${this.deps.appId}|${mailbox.toLowerCase()}`;
    // Graph's Retry-After for the mailbox, heard by this instance or another (shared with Redis): not asked again.
    const paused = await this.deps.budget.paused(key);
    if (paused > 0) throw new GraphStop('throttled', null, 'held back for Graph\'s Retry-After', Math.ceil(paused / 1000));
    const release = await this.deps.slots.acquire(key);
    if (!release) throw new GraphStop('busy', null, 'no Graph request slot for the mailbox freed up in time');
    try {
      const budget = await this.deps.budget.take(key);
      if (!budget.ok) throw new GraphStop('budget-spent', null, 'request budget spent', Math.ceil(budget.retryAfterMs / 1000));
      let response = await this.attempt(mailbox, request, authorized, false);
      if (response.status === 401 && authorized) response = await this.attempt(mailbox, request, authorized, true);
      if (response.status >= 200 && response.status < 300) return response;
      const outcome = graphOutcome(response.status, response.errorCode, response.errorMessage);
      if (outcome === 'throttled' && response.retryAfterSeconds !== null) await this.deps.budget.pause(key, response.retryAfterSeconds * 1000);
      throw new GraphStop(outcome, response.requestId, `${response.status} ${response.errorCode ?? ''} ${response.errorMessage ?? ''}`.trim(), response.retryAfterSeconds);
    } finally {
      release();
    }
  }

  /** One try; `fresh`: the cached token was refused, drop it and ask for a new one (once). */
  private async attempt(mailbox: string, request: GraphRequest, authorized: boolean, fresh: boolean): Promise<GraphResponse> {
    let token: string | null = null;
    if (authorized) {
      let got;
      try {
        got = await this.deps.tokens.getAccessToken(mailbox, GRAPH_AUDIENCE);
        if (fresh && got.cached && (await this.deps.tokens.invalidateAccessToken(mailbox, got.token, 'graph-refused', GRAPH_AUDIENCE))) {
          got = await this.deps.tokens.getAccessToken(mailbox, GRAPH_AUDIENCE);
        }
      } catch (error) {
        throw new GraphStop('token-refused', null, `no access token: ${(error as Error).message}`);
      }
      token = got.token;
    }
    return this.deps.client.request({ ...request, token });
  }

  /** The reply table's row as an UpstreamReply, with Graph's error, the wait and the request-id in parentheses. */
  private reply(outcome: GraphOutcome, requestId: string | null, detail: string | null): UpstreamReply {
    const spec = this.deps.replies[outcome];
    const match = /^(\d\.\d{1,3}\.\d{1,3}) (.*)$/.exec(spec.text);
    const notes = [detail?.slice(0, 200) ?? null, requestId ? `request-id ${requestId}` : null].filter((n): n is string => n !== null && n !== '');
    const text = `${match ? match[2] : spec.text}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`;
    return { code: spec.code, enhanced: match ? match[1]! : null, lines: [text.replace(/[\r\n]+/g, ' ')] };
  }
}

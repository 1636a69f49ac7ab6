import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { TestOAuthServer } from './oauth-server.js';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';

/** One message Graph delivered: as it arrived (MIME, or JSON turned into a summary), and to whom. */
export interface GraphDelivery {
  /** The mailbox in the URL (`/users/{mailbox}/...`). */
  mailbox: string;
  /** To, Cc and Bcc of the message: who gets a copy (Graph reads the header, never an envelope). */
  recipients: string[];
  bcc: string[];
  /** The MIME as passgate sent it (sendMail or the draft), Bcc and all; null for a JSON message. */
  mime: Buffer | null;
  /** What a recipient sees: the MIME without its Bcc fields (Exchange never shows Bcc). */
  visible: Buffer | null;
  attachments: { name: string; contentType: string; bytes: Buffer; via: 'post' | 'upload' }[];
  path: 'sendMail' | 'draft';
  requestId: string;
}

export interface GraphFailure {
  status: number;
  code: string;
  message: string;
  retryAfter?: number;
}

interface Draft {
  mailbox: string;
  mime: Buffer;
  attachments: GraphDelivery['attachments'];
}

interface Upload {
  draftId: string;
  name: string;
  contentType: string;
  size: number;
  chunks: Buffer[];
  received: number;
}

const addresses = (value: string) => [...value.matchAll(/<([^<>]+)>|([^\s,<>"]+@[^\s,<>"]+)/g)].map((m) => (m[1] ?? m[2]!).toLowerCase());

/** To, Cc, Bcc of a MIME header section (unfolded), as Graph reads them. */
function headerRecipients(mime: Buffer): { all: string[]; bcc: string[] } {
  const end = mime.indexOf('\r\n\r\n');
  const header = mime.subarray(0, end < 0 ? mime.length : end).toString('latin1').replace(/\r\n[ \t]+/g, ' ');
  const all: string[] = [];
  const bcc: string[] = [];
  for (const line of header.split('\r\n')) {
    const m = /^(to|cc|bcc)\s*:(.*)$/i.exec(line);
    if (!m) continue;
    const list = addresses(m[2]!);
    all.push(...list);
    if (m[1]!.toLowerCase() === 'bcc') bcc.push(...list);
  }
  return { all, bcc };
}

function withoutBcc(mime: Buffer): Buffer {
  const end = mime.indexOf('\r\n\r\n');
  const header = mime.subarray(0, end).toString('latin1');
  const kept: string[] = [];
  let dropping = false;
  for (const line of header.split('\r\n')) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    dropping = /^bcc\s*:/i.test(line);
    if (!dropping) kept.push(line);
  }
  return Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), mime.subarray(end)]);
}

/**
 * A Microsoft Graph stand-in on loopback (plain HTTP on 127.0.0.1, which passgate allows for loopback only) that
 * speaks the documented shapes passgate uses (Microsoft Learn: "user: sendMail", "Create message", "attachment:
 * createUploadSession", "message: send", "Microsoft Graph error responses", "throttling guidance"):
 *  - every request needs `Authorization: Bearer <token>` that the local OAuth server issued for Graph's audience
 *    (scope https://graph.microsoft.com/.default), else 401 InvalidAuthenticationToken;
 *  - `POST /v1.0/users/{id}/sendMail`: base64 MIME as text/plain, or JSON `{ message, saveToSentItems }`; over 4 MB
 *    413; a JSON message without recipients 400 ErrorInvalidRecipients (what doctor's probe relies on); 202;
 *  - `POST /v1.0/users/{id}/messages` (MIME) → 201 `{ id }`; `.../attachments` (fileAttachment) → 201;
 *    `.../attachments/createUploadSession` → 201 `{ uploadUrl }`; `PUT` the upload URL with Content-Range (no bearer)
 *    → 200 `{ nextExpectedRanges }` then 201; `.../send` → 202; `DELETE .../messages/{id}` → 204;
 *  - every answer carries a `request-id`; errors are `{ error: { code, message } }`; scripted failures (failNext,
 *    refuse per mailbox) with Retry-After.
 * Delivered messages are kept in `delivered` for the tests to read back.
 */
export class GraphServer {
  readonly delivered: GraphDelivery[] = [];
  readonly requests: { method: string; path: string; status: number }[] = [];
  /** Milliseconds each sendMail / send waits before answering (to see concurrency). */
  delayMs = 0;
  readonly inFlight = new Map<string, number>();
  maxInFlight = 0;
  private readonly failures: GraphFailure[] = [];
  private readonly pathFailures: { suffix: string; failure: GraphFailure }[] = [];
  private readonly refusals = new Map<string, GraphFailure>();
  private readonly drafts = new Map<string, Draft>();
  private readonly uploads = new Map<string, Upload>();
  private server: Server | null = null;
  port = 0;

  /** The OAuth server whose tokens it accepts (set once the harness has started it). */
  constructor(public oauth: TestOAuthServer | null = null) {}

  /** More OAuth servers whose Graph tokens it accepts (several passgate instances, each with its own). */
  readonly alsoTrusted: TestOAuthServer[] = [];
  /** Called with each delivery before Graph answers 202 (the demo puts it into the local mailboxes). */
  onDeliver: ((delivery: GraphDelivery) => Promise<void>) | null = null;
  /** An OAuth server in another process (the bench): tokens are checked at its RFC 7662 endpoint, once each. */
  introspectionUrl: string | null = null;
  private readonly introspected = new Map<string, { active: boolean; scope?: string }>();

  private async remoteView(token: string): Promise<{ active: boolean; scope?: string }> {
    if (!this.introspectionUrl) return { active: false };
    let view = this.introspected.get(token);
    if (!view) {
      const r = await fetch(this.introspectionUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) });
      view = (await r.json()) as { active: boolean; scope?: string };
      this.introspected.set(token, view);
    }
    return view;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  /** What smtp.upstream.graph.base_url is set to. */
  get baseUrl(): string {
    return `${this.url}/v1.0`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    const server = this.server;
    this.server = null;
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }

  /** The next `count` authorised Graph requests (not upload PUTs) fail so. */
  failNext(count: number, failure: GraphFailure): void {
    for (let i = 0; i < count; i++) this.failures.push(failure);
  }

  /** The next authorised request whose path ends with `suffix` (e.g. `/send`) fails so, once. */
  failOn(suffix: string, failure: GraphFailure): void {
    this.pathFailures.push({ suffix, failure });
  }

  /** Drafts not sent or deleted (a transport must leave none behind). */
  get draftsLeft(): number {
    return this.drafts.size;
  }

  /** Every request for this mailbox fails so (null: no longer). */
  refuse(mailbox: string, failure: GraphFailure | null): void {
    if (failure) this.refusals.set(mailbox.toLowerCase(), failure);
    else this.refusals.delete(mailbox.toLowerCase());
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = new URL(req.url ?? '/', this.url).pathname;
    const send = (status: number, json?: unknown, headers: Record<string, string> = {}) => {
      this.requests.push({ method: req.method ?? '', path, status });
      res.writeHead(status, { 'request-id': requestId, 'client-request-id': requestId, ...(json === undefined ? {} : { 'content-type': 'application/json' }), ...headers });
      res.end(json === undefined ? undefined : JSON.stringify(json));
    };
    const error = (f: GraphFailure) => send(f.status, { error: { code: f.code, message: f.message } }, f.retryAfter === undefined ? {} : { 'retry-after': String(f.retryAfter) });
    try {
      const upload = /^\/upload\/([\w-]+)$/.exec(path);
      if (upload && req.method === 'PUT') return this.put(upload[1]!, req, body, send);
      const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      const issuers = [...(this.oauth ? [this.oauth] : []), ...this.alsoTrusted];
      const local = auth ? issuers.map((o) => o.introspect(auth[1]!)).find((v) => v.active) : undefined;
      const view = local ?? (auth ? await this.remoteView(auth[1]!) : { active: false });
      if (!view.active || !(view.scope ?? '').split(' ').includes(GRAPH_SCOPE)) {
        return error({ status: 401, code: 'InvalidAuthenticationToken', message: 'Access token validation failure. Invalid audience.' });
      }
      const m = /^\/v1\.0\/users\/([^/]+)(\/.*)$/.exec(path);
      if (!m) return error({ status: 400, code: 'BadRequest', message: 'Resource not found for the segment.' });
      const mailbox = decodeURIComponent(m[1]!).toLowerCase();
      const rest = m[2]!;
      const scripted = this.pathFailures.findIndex((f) => rest.endsWith(f.suffix));
      const refusal = this.refusals.get(mailbox) ?? (scripted >= 0 ? this.pathFailures.splice(scripted, 1)[0]!.failure : this.failures.shift());
      if (refusal) return error(refusal);
      if (body.length > 4_194_304) return error({ status: 413, code: 'RequestEntityTooLarge', message: 'The request is too large.' });
      const mime = () => Buffer.from(body.toString('latin1'), 'base64');
      const isMime = (req.headers['content-type'] ?? '').startsWith('text/plain');
      if (req.method === 'POST' && rest === '/sendMail') {
        if (!isMime) {
          type Recipient = { emailAddress?: { address?: string } };
          const json = JSON.parse(body.toString('utf8')) as { message?: Record<string, Recipient[] | undefined> };
          const list = (k: string) => (json.message?.[k] ?? []).map((r) => r.emailAddress?.address?.toLowerCase() ?? '');
          const all = [...list('toRecipients'), ...list('ccRecipients'), ...list('bccRecipients')];
          if (all.length === 0 || all.includes('')) return error({ status: 400, code: 'ErrorInvalidRecipients', message: 'At least one recipient is not valid., Recipient is missing.' });
          // A JSON message: Graph builds the MIME itself; kept as who gets it, nothing to compare byte for byte.
          return await this.sending(mailbox, async () => {
            const delivery: GraphDelivery = { mailbox, recipients: [...new Set(all)], bcc: list('bccRecipients'), mime: null, visible: null, attachments: [], path: 'sendMail', requestId };
            this.delivered.push(delivery);
            send(202);
          });
        }
        return await this.sending(mailbox, async () => {
          await this.deliver(mailbox, mime(), [], 'sendMail', requestId);
          send(202);
        });
      }
      if (req.method === 'POST' && rest === '/messages') {
        const id = randomUUID();
        this.drafts.set(id, { mailbox, mime: mime(), attachments: [] });
        return send(201, { id });
      }
      const item = /^\/messages\/([^/]+)(\/.*)?$/.exec(rest);
      const draft = item ? this.drafts.get(decodeURIComponent(item[1]!)) : undefined;
      if (!item || !draft) return error({ status: 404, code: 'ErrorItemNotFound', message: 'The specified object was not found in the store.' });
      const id = decodeURIComponent(item[1]!);
      if (req.method === 'DELETE' && !item[2]) {
        this.drafts.delete(id);
        return send(204);
      }
      if (req.method === 'POST' && item[2] === '/attachments') {
        const a = JSON.parse(body.toString('utf8')) as { name: string; contentType: string; contentBytes: string };
        draft.attachments.push({ name: a.name, contentType: a.contentType, bytes: Buffer.from(a.contentBytes, 'base64'), via: 'post' });
        return send(201, { id: randomUUID() });
      }
      if (req.method === 'POST' && item[2] === '/attachments/createUploadSession') {
        const { AttachmentItem: a } = JSON.parse(body.toString('utf8')) as { AttachmentItem: { name: string; contentType: string; size: number } };
        const uploadId = randomUUID();
        this.uploads.set(uploadId, { draftId: id, name: a.name, contentType: a.contentType, size: a.size, chunks: [], received: 0 });
        return send(201, { uploadUrl: `${this.url}/upload/${uploadId}`, expirationDateTime: new Date(Date.now() + 900_000).toISOString(), nextExpectedRanges: ['0-'] });
      }
      if (req.method === 'POST' && item[2] === '/send') {
        return await this.sending(mailbox, async () => {
          this.drafts.delete(id);
          await this.deliver(mailbox, draft.mime, draft.attachments, 'draft', requestId);
          send(202);
        });
      }
      return error({ status: 400, code: 'BadRequest', message: `no route for ${req.method} ${rest}` });
    } catch (e) {
      error({ status: 500, code: 'InternalServerError', message: (e as Error).message });
    }
  }

  /** A send in flight for the mailbox, counted so tests see the concurrency Graph would. */
  private async sending(mailbox: string, work: () => Promise<void>): Promise<void> {
    const n = (this.inFlight.get(mailbox) ?? 0) + 1;
    this.inFlight.set(mailbox, n);
    this.maxInFlight = Math.max(this.maxInFlight, n);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      await work();
    } finally {
      this.inFlight.set(mailbox, (this.inFlight.get(mailbox) ?? 1) - 1);
    }
  }

  private put(uploadId: string, req: IncomingMessage, body: Buffer, send: (status: number, json?: unknown) => void): void {
    const upload = this.uploads.get(uploadId);
    if (!upload) return send(404, { error: { code: 'ErrorItemNotFound', message: 'upload session not found' } });
    if (req.headers.authorization) return send(401, { error: { code: 'InvalidAuthenticationToken', message: 'do not send a bearer token to an upload URL' } });
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(req.headers['content-range'] ?? '');
    if (!range || Number(range[1]) !== upload.received || Number(range[3]) !== upload.size || Number(range[2]) - Number(range[1]) + 1 !== body.length) {
      return send(416, { error: { code: 'InvalidRange', message: `expected bytes ${upload.received}-` } });
    }
    if (body.length > 4 * 1024 * 1024 || (Number(range[2]) + 1 < upload.size && body.length % (320 * 1024) !== 0)) {
      return send(400, { error: { code: 'InvalidChunkSize', message: 'chunks are multiples of 320 KiB, at most 4 MiB' } });
    }
    upload.chunks.push(body);
    upload.received += body.length;
    if (upload.received < upload.size) return send(200, { expirationDateTime: new Date(Date.now() + 900_000).toISOString(), nextExpectedRanges: [`${upload.received}-`] });
    this.uploads.delete(uploadId);
    this.drafts.get(upload.draftId)?.attachments.push({ name: upload.name, contentType: upload.contentType, bytes: Buffer.concat(upload.chunks), via: 'upload' });
    send(201);
  }

  private async deliver(mailbox: string, mime: Buffer, attachments: GraphDelivery['attachments'], path: GraphDelivery['path'], requestId: string): Promise<void> {
    const { all, bcc } = headerRecipients(mime);
    const delivery: GraphDelivery = { mailbox, recipients: [...new Set(all)], bcc, mime, visible: withoutBcc(mime), attachments, path, requestId };
    await this.onDeliver?.(delivery);
    this.delivered.push(delivery);
  }
}

import { graphError, retryAfterSeconds } from './graph-errors.js';

/** One Graph answer, read whole (Graph's answers to these calls are small JSON or empty). */
export interface GraphResponse {
  status: number;
  /** Graph's `request-id` header: what Microsoft support asks for. */
  requestId: string | null;
  retryAfterSeconds: number | null;
  body: unknown;
  errorCode: string | null;
  errorMessage: string | null;
}

export interface GraphRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** A path under the base URL (`/users/a@b/sendMail`), or an absolute URL (an upload session's uploadUrl). */
  path: string;
  /** Bearer token; none for an upload session's URL, which carries its own authorization. */
  token: string | null;
  contentType?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

/**
 * Microsoft Graph over HTTPS with Node's fetch (undici): one request, one answer, bounded by a timeout. A network
 * failure or timeout throws; every HTTP answer, error or not, is returned for the caller to judge.
 */
export class GraphClient {
  private readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly timeoutMs: number,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.baseUrl}${path}`;
  }

  async request(request: GraphRequest, signal?: AbortSignal): Promise<GraphResponse> {
    const headers: Record<string, string> = { ...request.headers };
    if (request.token !== null) headers.authorization = `Bearer ${request.token}`;
    if (request.contentType) headers['content-type'] = request.contentType;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const response = await fetch(this.url(request.path), {
      method: request.method,
      headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const text = await response.text();
    let body: unknown = null;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const error = response.ok ? { code: null, message: null } : graphError(body);
    return {
      status: response.status,
      requestId: response.headers.get('request-id'),
      retryAfterSeconds: retryAfterSeconds(response.headers.get('retry-after')),
      body,
      errorCode: error.code,
      errorMessage: error.message,
    };
  }
}

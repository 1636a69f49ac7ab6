import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface WebResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  url: string;
  location: string | null;
}

/**
 * A browser-like HTTP client for the portal's HTTP tests, over real sockets: a cookie jar per origin, redirects
 * followed on request, HTML forms posted. It trusts any certificate: the portal uses the listeners' self-signed one.
 */
export class WebClient {
  readonly jar = new Map<string, Map<string, string>>();
  /** Every URL requested, in order (the tests check what never appears in one). */
  readonly visited: string[] = [];

  async get(url: string, options: { follow?: boolean } = {}): Promise<WebResponse> {
    return this.send('GET', url, null, options.follow ?? true);
  }

  async post(url: string, form: Record<string, string | string[]>, options: { follow?: boolean } = {}): Promise<WebResponse> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const one of ([] as string[]).concat(v)) body.append(k, one);
    return this.send('POST', url, body.toString(), options.follow ?? true);
  }

  /** The value of a hidden field of the page (the CSRF token). */
  static field(body: string, name: string): string {
    const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(body);
    if (!match) throw new Error(`no field ${name} in the page`);
    return match[1]!.replace(/&amp;/g, '&');
  }

  private async send(method: string, url: string, body: string | null, follow: boolean): Promise<WebResponse> {
    let response = await this.once(method, url, body);
    let hops = 0;
    while (follow && response.location !== null && hops++ < 15) response = await this.once('GET', new URL(response.location, response.url).href, null);
    return response;
  }

  private once(method: string, url: string, body: string | null): Promise<WebResponse> {
    this.visited.push(url);
    const u = new URL(url);
    const cookies = this.jar.get(u.origin);
    const headers: Record<string, string> = { 'user-agent': 'passgate-test-client' };
    if (cookies && cookies.size > 0) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== null) headers['content-type'] = 'application/x-www-form-urlencoded';
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(u, { method, headers, rejectUnauthorized: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          for (const line of res.headers['set-cookie'] ?? []) {
            const [pair] = line.split(';');
            const eq = pair!.indexOf('=');
            const name = pair!.slice(0, eq).trim();
            const value = pair!.slice(eq + 1).trim();
            const jar = this.jar.get(u.origin) ?? new Map<string, string>();
            this.jar.set(u.origin, jar);
            if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0\b/i.test(line)) jar.delete(name);
            else jar.set(name, value);
          }
          const location = typeof res.headers.location === 'string' ? res.headers.location : null;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, url, location });
        });
      });
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  }
}

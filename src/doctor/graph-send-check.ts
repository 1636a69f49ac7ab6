import type { GraphConfig } from '../config/config-schema.js';
import type { TokenProvider } from '../core/token-provider.js';
import { GraphClient } from '../upstream/graph/graph-client.js';
import { GRAPH_AUDIENCE } from '../upstream/graph/graph-message-sender.js';
import { fail, pass, type CheckResult } from './doctor-report.js';
import { explainedFailure as explained } from './microsoft-failures.js';

const NAME = 'graph send';

/**
 * Proves with a real call that Graph lets passgate send as the mailbox, without sending anything: a sendMail with
 * a message that has no recipient. Graph checks the token, the Mail.Send permission, the application access policy
 * or RBAC scope and the mailbox before it reads the message, so `400 ErrorInvalidRecipients` means everything up
 * to the recipients is in order; any other answer is explained (doctor/microsoft-failures.ts, stage graph).
 */
export async function checkGraphSend(config: GraphConfig, tokens: TokenProvider, mailbox: string, clientId: string | null): Promise<CheckResult> {
  let token: string;
  try {
    token = (await tokens.getAccessToken(mailbox, GRAPH_AUDIENCE)).token;
  } catch (error) {
    const message = (error as Error).message;
    return explained(NAME, 'token', `no Graph token for ${mailbox}: ${message}`, message, 'See the token check above; Graph needs scope https://graph.microsoft.com/.default.', { mailbox, clientId });
  }
  const client = new GraphClient(config.base_url, config.request_timeout_seconds * 1000);
  const body = JSON.stringify({ message: { subject: 'passgate doctor: permission check, no recipients, never sent', body: { contentType: 'Text', content: '' }, toRecipients: [] }, saveToSentItems: false });
  try {
    const r = await client.request({ method: 'POST', path: `/users/${encodeURIComponent(mailbox)}/sendMail`, token, contentType: 'application/json', body });
    const id = r.requestId ? ` (request-id ${r.requestId})` : '';
    if ((r.status === 400 && r.errorCode === 'ErrorInvalidRecipients') || r.status === 202) {
      return pass(NAME, `Graph accepted passgate's token and Mail.Send as ${mailbox} (a probe without recipients: nothing sent)${id}`);
    }
    const text = `${r.status} ${r.errorCode ?? ''}: ${r.errorMessage ?? ''}`;
    return explained(NAME, 'graph', `Graph refused sendMail as ${mailbox}: ${text.slice(0, 300)}${id}`, text, 'Read Graph\'s answer; see docs/graph.md for the permission and its scope.', { mailbox, clientId });
  } catch (error) {
    const message = (error as Error).message;
    return fail(NAME, `cannot reach ${config.base_url}: ${message}`, 'Check that this machine reaches graph.microsoft.com:443 over HTTPS (proxy, firewall, DNS), or smtp.upstream.graph.base_url.');
  }
}

/**
 * Port: latency towards the upstream mail server, per protocol (observability/metrics.ts binds the protocol).
 * `connect` is TCP + TLS + greeting (+ EHLO / STARTTLS), `auth` the XOAUTH2 exchange, `command` one relayed SMTP
 * command to its reply (`result` is the reply class, `2xx` … `5xx`, or `failure` when no reply came).
 */
export interface UpstreamMetrics {
  connect(result: 'success' | 'failure', seconds: number): void;
  auth(result: 'success' | 'rejected' | 'failure', seconds: number): void;
  command(command: string, result: string, seconds: number): void;
}

import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';

/**
 * The TLS options that make a client connection check the upstream's certificate against `name`. A host name goes
 * out as SNI. An IP address may not (RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in
 * HostName"; Node warns with DEP0123 and would print that into the JSON log): no SNI is sent, and the certificate is
 * still checked against the address (its IP subject alternative names).
 */
export function serverIdentity(name: string): Pick<ConnectionOptions, 'servername' | 'checkServerIdentity'> {
  if (isIP(name) === 0) return { servername: name };
  return { checkServerIdentity: (_host, certificate) => checkServerIdentity(name, certificate) };
}

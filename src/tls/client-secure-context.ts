import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';

const contexts = new Map<string, SecureContext>();
const MAX_CONTEXTS = 16;

/**
 * What a `ca_file` means in passgate's config (`smtp.upstream`, `imap.upstream`, `redis`): CAs trusted *in addition
 * to* Node's bundled public roots, as the keys' descriptions promise. Node's own `ca` option replaces the roots, so
 * a file with one private or TLS-inspection CA would otherwise make every public certificate untrusted.
 */
export function trustedCas(ca: string): string[] {
  return [...rootCertificates, ca];
}

/**
 * The client-side TLS context for connections to an upstream that trusts `ca` (PEM) as well as Node's bundled
 * roots (trustedCas), or just the roots when it is undefined; built once per CA and shared. Passing `ca` to every
 * `tls.connect` instead builds a context per connection: half a millisecond of CPU each, and a certificate store
 * that lives as long as the connection (the IMAP bench measured that per idle session). Hostname checks are
 * unchanged: they use the connection's servername.
 */
export function clientSecureContext(ca: string | undefined): SecureContext {
  const key = ca ?? '';
  let context = contexts.get(key);
  if (!context) {
    if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value!); // a CA file replaced many times
    context = createSecureContext(ca === undefined ? {} : { ca: trustedCas(ca) });
    contexts.set(key, context);
  }
  return context;
}

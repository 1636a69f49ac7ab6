import { domainToASCII } from 'node:url';

/**
 * A domain as it goes upstream and into comparisons: its ASCII form (IDNA A-labels, lowercase). smtp-server hands
 * over `xn--` domains converted to Unicode; relayed like that, an upstream without SMTPUTF8 refuses the address,
 * and a policy entry written in either form would match only that form. A domain that is not a valid IDN stays as
 * it was (lowercased).
 */
export function asciiDomain(domain: string): string {
  return domainToASCII(domain) || domain.toLowerCase();
}

/** An envelope address with its domain in ASCII form; the local part is left exactly as the client sent it. */
export function envelopeAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : `${address.slice(0, at)}@${asciiDomain(address.slice(at + 1))}`;
}

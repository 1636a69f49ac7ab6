/** The mail protocols a legacy client can use through passgate; an app password's scopes name them. */
export const PROTOCOLS = ['smtp', 'imap', 'pop3'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export function isProtocol(value: string): value is Protocol {
  return (PROTOCOLS as readonly string[]).includes(value);
}

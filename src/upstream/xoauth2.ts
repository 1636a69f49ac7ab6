/**
 * The SASL XOAUTH2 initial response: base64 of `user=<mailbox>^Aauth=Bearer <token>^A^A`
 * (Microsoft Learn, "Authenticate an IMAP, POP or SMTP connection using OAuth"; Google's XOAUTH2 spec).
 */
export function encodeXoauth2(mailbox: string, accessToken: string): string {
  return Buffer.from(`user=${mailbox}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString('base64');
}

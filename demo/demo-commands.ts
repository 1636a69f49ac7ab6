import type { DemoStack } from './demo-stack.js';

export interface DemoSection {
  title: string;
  /** Shell text that works exactly as printed (bash or sh, from the repository folder). */
  commands: string;
}

export interface DemoPrintout {
  /** What runs where, the app password, the files. */
  summary: string;
  sections: DemoSection[];
  footer: string;
}

type DemoFacts = Omit<DemoStack, 'close'>;

/** POSIX shell single quotes: safe for any string. */
const q = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
/** A Python string literal for any path or word the demo prints. */
const py = (text: string) => JSON.stringify(text);

/**
 * What `npm run demo` prints: the picture, then commands a newcomer can paste. Each one trusts the demo's
 * self-signed certificate by file (--cacert, --tls-ca-path, ssl.create_default_context(cafile=...)) rather than
 * turning verification off, so what works here is what works against a real certificate.
 */
export function demoPrintout(demo: DemoFacts, passgateCli: string): DemoPrintout {
  const { user, password, certFile, ports } = demo;
  const host = '127.0.0.1';
  const summary = [
    'passgate demo: everything below runs on 127.0.0.1 only.',
    '',
    `  passgate        SMTP submission ${host}:${ports.submission} (STARTTLS), ${host}:${ports.submissions} (implicit TLS)`,
    ports.imap !== null ? `                  IMAP ${host}:${ports.imap} (STARTTLS), ${host}:${ports.imaps} (implicit TLS)` : null,
    ports.pop3 !== null ? `                  POP3 ${host}:${ports.pop3} (STLS), ${host}:${ports.pop3s} (implicit TLS)` : null,
    ports.ops !== null ? `                  ops http://${host}:${ports.ops} (/metrics, /healthz, /readyz)` : null,
    `                  portal ${demo.portal.url} (self-signed certificate: the browser warns once)`,
    `  sign-in (OIDC)  ${demo.portal.issuer}, standing in for Entra ID: pick ${demo.portal.user} (a user) or ${demo.portal.admin} (an admin); no password`,
    `  OAuth server    ${demo.upstream.oauthUrl} (client credentials; tokens checked by introspection)`,
    demo.upstream.graphUrl !== null
      ? `  Microsoft Graph ${demo.upstream.graphUrl} (a stand-in: sendMail, drafts, upload sessions; bearer tokens checked), delivers into local mailboxes; passgate sends through it (smtp.upstream.transport: graph)`
      : `  upstream SMTP   ${host}:${demo.upstream.smtpPort} (XOAUTH2 only, like Exchange Online), delivers into local mailboxes`,
    demo.upstream.dovecotImapsPort !== null ? `  Dovecot IMAP    ${host}:${demo.upstream.dovecotImapsPort} (XOAUTH2 only), serving those mailboxes` : null,
    `  ${user}'s mail: ${demo.mailbox}`,
    demo.imapSkipped ? `\n  ${demo.imapSkipped}` : null,
    '',
    `  config          ${demo.configFile}`,
    `  passgate log    ${demo.logFile}`,
    `  certificate     ${certFile} (self-signed; the commands trust it by file)`,
    '',
    `App password for ${user} (scopes smtp, imap${ports.pop3 !== null ? ', pop3' : ''}; shown once):`,
    '',
    `    ${password}`,
    '',
    'Each command below works as printed, from another terminal in this folder.',
  ]
    .filter((line) => line !== null)
    .join('\n');

  const sections: DemoSection[] = [
    {
      title: 'Send a mail with curl (SMTP submission, STARTTLS)',
      commands: [
        `curl --url smtp://${host}:${ports.submission} --ssl-reqd --cacert ${q(certFile)} \\`,
        `  --user ${q(`${user}:${password}`)} \\`,
        `  --mail-from ${user} --mail-rcpt ${user} --upload-file ${q(demo.messageFile)}`,
      ].join('\n'),
    },
    {
      title: 'Send a mail with swaks (SMTP submission, STARTTLS; swaks needs libnet-ssleay-perl for TLS)',
      commands: [
        `swaks --server ${host} --port ${ports.submission} --tls --tls-verify --tls-ca-path ${q(certFile)} \\`,
        `  --auth PLAIN --auth-user ${user} --auth-password ${q(password)} \\`,
        `  --from ${user} --to ${user} --header 'Subject: Hello from swaks through passgate'`,
      ].join('\n'),
    },
    {
      title: 'Send a mail with Python (smtplib, STARTTLS)',
      commands: [
        "python3 - <<'EOF'",
        'import smtplib, ssl',
        'from email.message import EmailMessage',
        'msg = EmailMessage()',
        `msg['From'] = msg['To'] = ${py(user)}`,
        "msg['Subject'] = 'Hello from Python through passgate'",
        "msg.set_content('Sent with smtplib, STARTTLS and an app password.')",
        `context = ssl.create_default_context(cafile=${py(certFile)})`,
        `with smtplib.SMTP(${py(host)}, ${ports.submission}) as smtp:`,
        '    smtp.starttls(context=context)',
        `    smtp.login(${py(user)}, ${py(password)})`,
        '    smtp.send_message(msg)',
        "print('sent')",
        'EOF',
      ].join('\n'),
    },
  ];
  if (ports.imaps !== null) {
    sections.push(
      {
        title: 'Read the mailbox with Python (imaplib, TLS)',
        commands: [
          "python3 - <<'EOF'",
          'import imaplib, ssl',
          `context = ssl.create_default_context(cafile=${py(certFile)})`,
          `with imaplib.IMAP4_SSL(${py(host)}, ${ports.imaps}, ssl_context=context) as imap:`,
          `    imap.login(${py(user)}, ${py(password)})`,
          "    imap.select('INBOX', readonly=True)",
          "    _, found = imap.search(None, 'ALL')",
          '    for number in found[0].split():',
          "        _, parts = imap.fetch(number, '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')",
          '        print(number.decode(), parts[0][1].decode().strip())',
          'EOF',
        ].join('\n'),
      },
      {
        title: 'Fetch the first message with curl (IMAP, TLS)',
        commands: `curl --url 'imaps://${host}:${ports.imaps}/INBOX;UID=1' --cacert ${q(certFile)} --user ${q(`${user}:${password}`)}`,
      },
    );
    if (ports.pop3s !== null) {
      sections.push({
        title: 'Fetch the first message with curl (POP3, TLS)',
        commands: `curl --url 'pop3s://${host}:${ports.pop3s}/1' --cacert ${q(certFile)} --user ${q(`${user}:${password}`)}`,
      });
    }
  } else {
    sections.push({
      title: 'See the delivered mail (no IMAP without Dovecot)',
      commands: `ls -l ${q(demo.mailbox)}`,
    });
  }
  sections.push({
    title: 'Open the portal: sign in, create an app password, see where each is used',
    commands: [
      `# In a browser: ${demo.portal.url} (as ${demo.portal.user}, or ${demo.portal.admin} for the admin pages).`,
      `curl -s --cacert ${q(certFile)} ${demo.portal.url}/ | grep -o 'Sign in with your company account'`,
    ].join('\n'),
  });
  const ops = ports.ops === null ? [] : [`curl -s http://${host}:${ports.ops}/readyz`, `curl -s http://${host}:${ports.ops}/metrics | grep '^passgate_'`];
  sections.push({
    title: 'Watch passgate: readiness, metrics and the sign-in log',
    commands: [...ops, `${passgateCli} --config ${q(demo.configFile)} audit`].join('\n'),
  });
  const footer = `The demo runs until Ctrl-C, which stops everything and removes ${demo.dir}.`;
  return { summary, sections, footer };
}

/** The printout as text: sections headed "== N. title ==", commands unindented so heredocs paste as they are. */
export function renderPrintout(printout: DemoPrintout): string {
  const blocks = printout.sections.map((section, i) => `== ${i + 1}. ${section.title} ==\n${section.commands}`);
  return [printout.summary, ...blocks, printout.footer].join('\n\n') + '\n';
}

import { html, type SafeHtml } from './html.js';
import { PORTAL_ASSETS } from './portal-assets.js';

export interface PageViewer {
  username: string;
  role: 'admin' | 'user';
  csrfToken: string;
}

export interface PageOptions {
  title: string;
  /** The navigation entry to mark as the current page. */
  current?: string;
  viewer: PageViewer | null;
  body: SafeHtml;
}

const USER_NAV: [string, string][] = [
  ['/passwords', 'My app passwords'],
  ['/sign-ins', 'My sign-ins'],
];
const ADMIN_NAV: [string, string][] = [
  ['/admin/passwords', 'All passwords'],
  ['/admin/sign-ins', 'Sign-in log'],
  ['/admin/lockouts', 'Lockouts'],
  ['/admin/health', 'Health'],
];

/** Every page: a skip link, one h1 (in the body), the navigation for the viewer's role, and the one stylesheet. */
export function renderPage(options: PageOptions): string {
  const { viewer } = options;
  const nav = viewer === null ? [] : [...USER_NAV, ...(viewer.role === 'admin' ? ADMIN_NAV : [])];
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · passgate</title>
<link rel="stylesheet" href="${PORTAL_ASSETS.css.path}">
<script src="${PORTAL_ASSETS.copyScript.path}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><div class="bar">
<a class="brand" href="/"><span class="mark" aria-hidden="true">P</span>passgate</a>
${
  nav.length > 0
    ? html`<nav class="main" aria-label="Main"><ul>${nav.map(
        ([href, label]) => html`<li><a href="${href}"${options.current === href ? html` aria-current="page"` : ''}>${label}</a></li>`,
      )}</ul></nav>`
    : ''
}
${
  viewer !== null
    ? html`<div class="who"><span>${viewer.username}${viewer.role === 'admin' ? ' (admin)' : ''}</span>
<form class="inline" method="post" action="/auth/logout"><input type="hidden" name="_csrf" value="${viewer.csrfToken}"><button type="submit" class="small">Sign out</button></form></div>`
    : ''
}
</div></header>
<main id="main" tabindex="-1">
${options.body}
</main>
<footer>passgate · app passwords for mail apps and devices that cannot sign in with your company account</footer>
</body>
</html>`.text;
}

import { createHash } from 'node:crypto';

/**
 * The portal's one stylesheet and its one script (the copy button), served from /assets/ with a hash in the
 * name so they can be cached for good. Kept in code, not files, so the built package needs nothing beside dist/.
 * The CSP allows only these ('self'): no inline style or script anywhere.
 */
const CSS = `
:root{--bg:#f4f6f9;--card:#fff;--ink:#1b2330;--muted:#5b6678;--line:#dde3ea;--brand:#2456c9;--brand-ink:#fff;
--ok:#1d7a46;--ok-bg:#e3f4ea;--warn:#8a5a00;--warn-bg:#fff3d6;--bad:#b42318;--bad-bg:#fde7e5;--off:#4b5565;--off-bg:#eceff3;
--radius:10px;--focus:0 0 0 3px #fff,0 0 0 6px #2456c9}
@media (prefers-color-scheme:dark){:root{--bg:#10141b;--card:#181e28;--ink:#e8edf4;--muted:#9aa6b6;--line:#2a3342;--brand:#6d9bff;--brand-ink:#0b1220;
--ok:#6fd39a;--ok-bg:#15301f;--warn:#f2c46b;--warn-bg:#33290f;--bad:#ff8a80;--bad-bg:#3a1714;--off:#b5bfcc;--off-bg:#262e3a;--focus:0 0 0 3px #10141b,0 0 0 6px #6d9bff}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Ubuntu,sans-serif;background:var(--bg);color:var(--ink)}
a{color:var(--brand)}
:focus-visible{outline:none;box-shadow:var(--focus);border-radius:4px}
.vh{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
.skip{position:absolute;left:-999px;top:0;background:var(--brand);color:var(--brand-ink);padding:.5rem 1rem;z-index:10}
.skip:focus{left:1rem;top:1rem}
header.top{background:var(--card);border-bottom:1px solid var(--line)}
.bar{max-width:64rem;margin:0 auto;padding:.75rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center}
.brand{font-weight:700;font-size:1.15rem;color:var(--ink);text-decoration:none;display:flex;align-items:center;gap:.5rem}
.brand .mark{display:inline-grid;place-items:center;width:1.9rem;height:1.9rem;border-radius:8px;background:var(--brand);color:var(--brand-ink);font-size:1rem}
nav.main ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem}
nav.main a{display:block;padding:.35rem .7rem;border-radius:8px;text-decoration:none;color:var(--muted)}
nav.main a[aria-current=page]{background:var(--bg);color:var(--ink);font-weight:600}
.who{margin-left:auto;display:flex;gap:.75rem;align-items:center;color:var(--muted);font-size:.9rem}
main{max-width:64rem;margin:0 auto;padding:1.5rem 1rem 3rem}
h1{font-size:1.6rem;margin:.25rem 0 1rem;line-height:1.25}
h2{font-size:1.2rem;margin:1.75rem 0 .75rem}
p.lead{color:var(--muted);margin-top:-.5rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:var(--radius);padding:1.25rem;margin:0 0 1rem}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
.button,button{font:inherit;display:inline-flex;align-items:center;gap:.4rem;padding:.5rem .95rem;border-radius:8px;border:1px solid var(--line);
background:var(--card);color:var(--ink);cursor:pointer;text-decoration:none;line-height:1.3}
.button.primary,button.primary{background:var(--brand);border-color:var(--brand);color:var(--brand-ink);font-weight:600}
button.danger,.button.danger{color:var(--bad);border-color:currentColor}
.button.small,button.small{padding:.25rem .6rem;font-size:.875rem}
.card > h2:first-child,.card > h1:first-child,form.card > label:first-of-type{margin-top:0}
form.card > .actions{margin-top:1.25rem}
form.inline{display:inline}
label{display:block;font-weight:600;margin:.9rem 0 .3rem}
.hint{color:var(--muted);font-size:.9rem;margin:.2rem 0 0;font-weight:400}
input[type=text],input[type=search],select{font:inherit;width:100%;max-width:28rem;padding:.5rem .65rem;border-radius:8px;border:1px solid var(--line);background:var(--card);color:var(--ink)}
fieldset{border:1px solid var(--line);border-radius:8px;margin:.9rem 0;padding:.5rem 1rem .8rem;max-width:28rem}
legend{font-weight:600;padding:0 .3rem}
fieldset label{font-weight:400;display:flex;gap:.5rem;align-items:center;margin:.35rem 0}
.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end}
.filters label{margin:0 0 .3rem}
.filters div{flex:1 1 10rem}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:var(--radius);overflow:hidden}
th,td{text-align:left;padding:.65rem .8rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:var(--bg)}
tr:last-child td{border-bottom:0}
td .sub{display:block;color:var(--muted);font-size:.875rem}
.badge{white-space:nowrap;display:inline-block;padding:.1rem .55rem;border-radius:999px;font-size:.8rem;font-weight:600}
.badge.active,.badge.ok{color:var(--ok);background:var(--ok-bg)}
.badge.off{color:var(--off);background:var(--off-bg)}
.badge.expired{color:var(--warn);background:var(--warn-bg)}
.badge.revoked,.badge.bad{color:var(--bad);background:var(--bad-bg)}
.notice{border-radius:var(--radius);padding:.8rem 1rem;margin:0 0 1rem;border:1px solid}
.notice.ok{background:var(--ok-bg);color:var(--ok)}
.notice.bad{background:var(--bad-bg);color:var(--bad)}
.notice.warn{background:var(--warn-bg);color:var(--warn)}
.secret{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;margin:.5rem 0 1rem}
.secret code{font:600 1.6rem/1.2 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;letter-spacing:.06em;padding:.6rem .9rem;border-radius:8px;
background:var(--bg);border:1px dashed var(--line);word-break:break-all}
dl.sheet{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1.25rem;margin:0}
dl.sheet dt{color:var(--muted)}
dl.sheet dd{margin:0;font-weight:600}
.empty{color:var(--muted);text-align:center;padding:2rem 1rem}
.signin{max-width:28rem;margin:8vh auto;text-align:center}
.signin .card{padding:2rem}
footer{max-width:64rem;margin:0 auto;padding:0 1rem 2rem;color:var(--muted);font-size:.85rem}
@media (max-width:40rem){
 table,thead,tbody,tr,th,td{display:block}
 thead{position:absolute;left:-9999px}
 table{border:0;background:none}
 tr{background:var(--card);border:1px solid var(--line);border-radius:var(--radius);margin:0 0 .75rem;padding:.4rem 0}
 td{border:0;padding:.3rem .9rem}
 td[data-label]::before{content:attr(data-label);display:block;font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
 .who{margin-left:0;width:100%}
 h1{font-size:1.35rem}
}
@media print{
 header.top,nav,footer,.no-print,.skip{display:none!important}
 body{background:#fff;color:#000}
 .card{border:1px solid #999}
 main{padding:0}
}
`;

/** The copy button: shown only with JavaScript (the password stays selectable without it). */
const COPY_JS = `
document.querySelectorAll('[data-copy]').forEach(function (button) {
  var target = document.getElementById(button.getAttribute('data-copy'));
  if (!target || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener('click', function () {
    navigator.clipboard.writeText(target.textContent.trim()).then(function () {
      button.textContent = 'Copied';
      button.setAttribute('aria-live', 'polite');
    }, function () {
      button.textContent = 'Copy failed: select the text';
    });
  });
});
document.querySelectorAll('[data-print]').forEach(function (button) {
  button.hidden = false;
  button.addEventListener('click', function () { window.print(); });
});
`;

export interface PortalAsset {
  path: string;
  type: string;
  body: string;
}

function asset(name: string, ext: string, type: string, body: string): PortalAsset {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return { path: `/assets/${name}.${hash}.${ext}`, type, body };
}

export const PORTAL_ASSETS = {
  css: asset('portal', 'css', 'text/css; charset=utf-8', CSS.trim()),
  copyScript: asset('copy', 'js', 'text/javascript; charset=utf-8', COPY_JS.trim()),
};

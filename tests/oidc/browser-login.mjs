// A person at a browser, for the browser sign-in against provider.mjs: opens an authorization
// URL (the agent's sign_in_url), signs in as adele at oidc-provider's development interactions
// (login form, then consent) and stops at the redirect back to the redirect_uri, without
// following it. Prints that address (code, state and iss in its query; or error=access_denied
// after --decline): the address a user would paste into the agent (`complete`, or
// `graph2mqtt login --browser`).
//
//   node browser-login.mjs URL [--decline] [--login adele]
//       stdout: the redirect address, one line; exit 0
//       stderr + exit 1: the provider showed an error page (e.g. an unregistered redirect_uri,
//       no PKCE from a public client), or the pages were not the expected ones
//
//   import { browserLogin } from './browser-login.mjs';
//   const address = await browserLogin(url, { decision: 'approve' | 'decline', login: 'adele' });
//
// Only the provider's origin is visited: a redirect to any other address is the end.
import { pathToFileURL } from 'node:url';

const decodeHtml = (s) => s.replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<')
  .replace(/&gt;/g, '>').replace(/&#x2F;/g, '/').replace(/&amp;/g, '&');

function attributes(s) {
  const out = {};
  for (const m of s.matchAll(/([\w.:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1].toLowerCase()] = decodeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

function forms(html) {
  return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map(([, attrs, inner]) => {
    const a = attributes(attrs);
    const fields = {};
    for (const [, ia] of inner.matchAll(/<input\b([^>]*)>/gi)) {
      const i = attributes(ia);
      if (i.name && (i.type === 'hidden' || i.value !== undefined)) fields[i.name] = i.value ?? '';
    }
    return { action: a.action, method: (a.method || 'get').toLowerCase(), fields };
  });
}

const links = (html) => [...html.matchAll(/<a\b([^>]*)>([\s\S]*?)<\/a>/gi)]
  .map(([, attrs, text]) => ({ href: attributes(attrs).href, text: text.replace(/<[^>]*>/g, '').trim() }));

const excerpt = (html) => html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]*>/g, ' ')
  .replace(/\s+/g, ' ').trim().slice(0, 400);

// Plain fetch with a cookie jar; redirects inside the provider's origin are followed by hand,
// the first one that leaves it ends the walk.
class Browser {
  constructor(origin) { this.origin = origin; this.jar = new Map(); this.trail = []; }

  async go(url, { method = 'GET', form } = {}) {
    for (let hop = 0; hop < 15; hop += 1) {
      const headers = {};
      if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
      let body;
      if (form) {
        body = new URLSearchParams(form).toString();
        headers['content-type'] = 'application/x-www-form-urlencoded';
      }
      const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
      for (const c of res.headers.getSetCookie()) {
        const [pair, ...attrs] = c.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)
          || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()));
        if (gone) this.jar.delete(name); else this.jar.set(name, pair.slice(eq + 1).trim());
      }
      this.trail.push(`${method} ${new URL(url).pathname} → ${res.status}`);
      if ([301, 302, 303, 307, 308].includes(res.status)) {
        const next = new URL(res.headers.get('location'), url);
        await res.arrayBuffer();
        if (next.origin !== this.origin) return { redirect: next.href };
        url = next.href;
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = 'GET';
          form = undefined;
        }
        continue;
      }
      return { url, status: res.status, text: await res.text() };
    }
    throw new Error(`too many redirects: ${this.trail.join(', ')}`);
  }

  submit(page, form, extra = {}) {
    const action = new URL(form.action || page.url, page.url).href;
    return this.go(action, { method: form.method === 'post' ? 'POST' : 'GET', form: { ...form.fields, ...extra } });
  }
}

export async function browserLogin(authorizeUrl, { decision = 'approve', login = 'adele' } = {}) {
  const b = new Browser(new URL(authorizeUrl).origin);
  const fail = (what, page) => {
    throw new Error(`${what} (${b.trail.join(', ')})${page?.text ? `: ${excerpt(page.text)}` : ''}`);
  };
  let page = await b.go(authorizeUrl);
  // Each interaction page is a login form (prompt=login), a consent form (prompt=consent), or
  // the redirect back; a session and a grant from earlier would skip the first two.
  for (let step = 0; step < 4 && !page.redirect; step += 1) {
    const form = forms(page.text).find((f) => f.fields.prompt === 'login' || f.fields.prompt === 'consent');
    if (!form) fail(`the provider answered HTTP ${page.status} without a login or consent form`, page);
    if (form.fields.prompt === 'login') {
      page = await b.submit(page, form, { login, password: 'any password' });
    } else if (decision === 'decline') {
      const cancel = links(page.text).find((l) => /cancel/i.test(l.text));
      if (!cancel) fail('no [ Cancel ] link on the consent page', page);
      page = await b.go(new URL(cancel.href, page.url).href);
    } else {
      page = await b.submit(page, form);
    }
  }
  if (!page.redirect) fail('the sign-in did not end with a redirect to the redirect_uri', page);
  return page.redirect;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const url = args.find((a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--login');
  const loginAt = args.indexOf('--login');
  if (!url) {
    process.stderr.write('usage: node browser-login.mjs AUTHORIZE_URL [--decline] [--login adele]\n');
    process.exit(2);
  }
  try {
    const address = await browserLogin(url, {
      decision: args.includes('--decline') ? 'decline' : 'approve',
      login: loginAt >= 0 ? args[loginAt + 1] : 'adele',
    });
    process.stdout.write(`${address}\n`);
  } catch (err) {
    process.stderr.write(`browser-login: ${err.message}\n`);
    process.exit(1);
  }
}

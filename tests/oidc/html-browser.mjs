// A small browser for oidc-provider's development pages, shared by run-test.mjs (the device
// flow's verification pages) and browser-login.mjs (the browser sign-in): plain fetch, a cookie
// jar, redirects followed by hand, and the forms and links read from the HTML.
//
//   import { Browser, forms, links, excerpt } from './html-browser.mjs';
//   const b = new Browser({ origin });   // origin: a redirect that leaves it ends the walk
//   let page = await b.go(url);          // { url, status, text } or { redirect } (left origin)
//   page = await b.submit(page, forms(page.text)[0], { login: 'adele' });

const decodeHtml = (s) => s.replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<')
  .replace(/&gt;/g, '>').replace(/&#x2F;/g, '/').replace(/&amp;/g, '&');

function attributes(s) {
  const out = {};
  for (const m of s.matchAll(/([\w.:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1].toLowerCase()] = decodeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

// Every <form>: its id, action, method, inputs (their attributes) and the fields it would send
// (hidden inputs and inputs with a value).
export function forms(html) {
  return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map(([, attrs, inner]) => {
    const a = attributes(attrs);
    const inputs = [...inner.matchAll(/<input\b([^>]*)>/gi)].map(([, ia]) => attributes(ia));
    const fields = {};
    for (const i of inputs) if (i.name && (i.type === 'hidden' || i.value !== undefined)) fields[i.name] = i.value ?? '';
    return { id: a.id, action: a.action, method: (a.method || 'get').toLowerCase(), inputs, fields };
  });
}

// Every <a>: its href and its text without markup.
export const links = (html) => [...html.matchAll(/<a\b([^>]*)>([\s\S]*?)<\/a>/gi)]
  .map(([, attrs, text]) => ({ href: attributes(attrs).href, text: text.replace(/<[^>]*>/g, '').trim() }));

// The page's text, for an error message.
export const excerpt = (html) => html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]*>/g, ' ')
  .replace(/\s+/g, ' ').trim().slice(0, 400);

export class Browser {
  // origin: when set, the first redirect to another origin is not followed but returned.
  constructor({ origin } = {}) { this.origin = origin; this.jar = new Map(); this.trail = []; }

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
        if (this.origin && next.origin !== this.origin) return { redirect: next.href };
        url = next.href;
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = 'GET';
          form = undefined;
        }
        continue;
      }
      return { url, status: res.status, text: await res.text() };
    }
    throw new Error(`too many redirects: ${this.where()}`);
  }

  submit(page, form, extra = {}) {
    const action = new URL(form.action || page.url, page.url).href;
    return this.go(action, { method: form.method === 'post' ? 'POST' : 'GET', form: { ...form.fields, ...extra } });
  }

  // The pages visited so far, for an error message.
  where() { return this.trail.join(', '); }
}

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
import { Browser, excerpt, forms, links } from './html-browser.mjs';

export async function browserLogin(authorizeUrl, { decision = 'approve', login = 'adele' } = {}) {
  const b = new Browser({ origin: new URL(authorizeUrl).origin });
  const fail = (what, page) => {
    throw new Error(`${what} (${b.where()})${page?.text ? `: ${excerpt(page.text)}` : ''}`);
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

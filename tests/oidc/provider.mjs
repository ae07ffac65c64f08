// panva's oidc-provider (a certified OpenID Provider) set up for the RFC 8628 device flow and the
// authorization code flow with PKCE (a native app's browser sign-in, RFC 8252) on 127.0.0.1, with
// a protected resource beside it, for graph2mqtt's interoperability test.
//
//   node provider.mjs            listens on a free port of 127.0.0.1 (OIDC_PORT to choose one)
//
// stdout carries one JSON object a line, for the test driver only:
//   {"ev":"ready","issuer":"http://127.0.0.1:PORT"}
//   {"ev":"http", method, path, status, at, ms, grant_type?, client_id?, client_auth? (as
//    registered), client_auth_sent? (as used), request?, error?, ...answer fields}
//       for every request the provider answers; the answers' secrets (device_code, access_token,
//       refresh_token, id_token) are passed on so the driver can prove they never leak out of
//       the agent. This output is a test fixture: never run this provider for anything else.
//   {"ev":"api", path, status, token_sha256?, gty?, error?}   for every /api request
// stderr carries oidc-provider's own warnings (development keys and interactions).
//
// Environment (all optional):
//   OIDC_PORT                      the port (default 0: any free one)
//   OIDC_CLIENTS                   JSON array of clients:
//                                  [{"client_id":"g2m-panel","client_secret":"...",
//                                    "access_token_ttl":45,"device_code_ttl":600,
//                                    "refresh_token_ttl":1209600,
//                                    "redirect_uris":["http://127.0.0.1/cb"]}]
//                                  a client with a secret uses client_secret_post (or the
//                                  "token_endpoint_auth_method" it names), one without is public
//                                  (token_endpoint_auth_method none). Every client is a native app
//                                  allowed the device_code, authorization_code and refresh_token
//                                  grants; redirect_uris default to http://127.0.0.1/cb and
//                                  http://localhost/cb, and as loopback redirect URIs of a native
//                                  client they match on any port (RFC 8252 §7.3): the agent's
//                                  redirect_uri can be http://127.0.0.1:PORT/cb with any PORT.
//                                  PKCE (S256) is required of public clients (the library's rule).
//                                  Default: one public client g2m-panel.
//   OIDC_ACCESS_TOKEN_TTL          seconds, for clients that name none (default 3600)
//   OIDC_DEVICE_CODE_TTL           seconds, for clients that name none (default 600, the library's)
//   OIDC_REFRESH_TOKEN_TTL         seconds, for clients that name none (default 14 days)
//   OIDC_HIDE_OPENID_CONFIGURATION "true": /.well-known/openid-configuration answers 404, as on a
//                                  plain OAuth 2.0 server; the RFC 8414 document
//                                  /.well-known/oauth-authorization-server is still served
//   OIDC_OFFLINE_NEEDS_CONSENT_PROMPT
//                                  "false" (default): an authorization request asking for
//                                  offline_access without a prompt parameter is treated as
//                                  prompt=consent, so the browser sign-in gets a refresh token as
//                                  on Entra (graph2mqtt's sign_in_url carries no prompt). "true":
//                                  the library's own rule (OIDC Core §11): without prompt=consent
//                                  offline_access is dropped and no refresh token is issued
//   OIDC_CONFORM_ID_TOKEN_CLAIMS   "true" (the library's default: scope claims such as name go
//                                  only to userinfo when an access token is issued) or "false"
//                                  (they go into the id_token too)
//
// The one account: login "adele" (any password) at the default development interactions.
// browser-login.mjs signs in through them without a person, for a browser sign-in.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const env = process.env;
const seconds = (value, fallback) => {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`not a positive whole number of seconds: ${value}`);
  return n;
};

const defaults = {
  accessToken: seconds(env.OIDC_ACCESS_TOKEN_TTL, 3600),
  deviceCode: seconds(env.OIDC_DEVICE_CODE_TTL, 600),
  refreshToken: seconds(env.OIDC_REFRESH_TOKEN_TTL, 14 * 24 * 3600),
};
const clientSpecs = env.OIDC_CLIENTS ? JSON.parse(env.OIDC_CLIENTS) : [{ client_id: 'g2m-panel' }];
const specById = new Map(clientSpecs.map((c) => [c.client_id, c]));
const ttlFor = (client, key, fallback) => {
  const spec = client && specById.get(client.clientId);
  return spec?.[key] ? seconds(String(spec[key])) : fallback;
};

// The in-memory user directory.
const ACCOUNTS = {
  adele: {
    sub: 'adele',
    name: 'Adele Vance',
    preferred_username: 'adele@example.test',
    email: 'adele@example.test',
    email_verified: true,
  },
};

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

// Bind first, so that the issuer can name the port.
let handler = (_req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(env.OIDC_PORT || 0), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: clientSpecs.map((c) => ({
    client_id: c.client_id,
    client_name: `graph2mqtt (${c.client_id})`,
    application_type: 'native',
    ...(c.client_secret
      ? { client_secret: c.client_secret, token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_post' }
      : { token_endpoint_auth_method: 'none' }),
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: c.redirect_uris || ['http://127.0.0.1/cb', 'http://localhost/cb'],
  })),
  features: {
    deviceFlow: { enabled: true }, // charset base-20, mask ****-****: the library's defaults
    devInteractions: { enabled: true }, // the provider's own login and consent pages
    userinfo: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: true },
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  conformIdTokenClaims: env.OIDC_CONFORM_ID_TOKEN_CLAIMS !== 'false',
  // The library's rule, spelled out: a refresh token goes to a client allowed the refresh_token
  // grant whose grant includes offline_access (the device flow keeps offline_access: it has no
  // prompt parameter that could drop it; the authorization endpoint drops it only when the
  // request has a prompt parameter without consent, and graph2mqtt's sign_in_url has none).
  issueRefreshToken: async (_ctx, client, source) => (
    client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access')
  ),
  async findAccount(_ctx, id) {
    const record = ACCOUNTS[id];
    if (!record) return undefined;
    return {
      accountId: id,
      async claims() { return { ...record }; },
    };
  },
  ttl: {
    AccessToken: (_ctx, _token, client) => ttlFor(client, 'access_token_ttl', defaults.accessToken),
    DeviceCode: (_ctx, _code, client) => ttlFor(client, 'device_code_ttl', defaults.deviceCode),
    RefreshToken: (_ctx, _token, client) => ttlFor(client, 'refresh_token_ttl', defaults.refreshToken),
    IdToken: 3600,
    Grant: 14 * 24 * 3600,
    Interaction: 600,
    Session: 3600,
  },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  // PKCE: the library's default, required of public clients (token_endpoint_auth_method none),
  // optional for the others; S256 is the only method oidc-provider 9 accepts.
});

// Server-side errors would otherwise be silent: put them on stderr.
provider.on('server_error', (_ctx, err) => process.stderr.write(`provider server_error: ${err.stack}\n`));

// The protected resource: GET /api/me with a bearer access token issued by this provider,
// checked through the provider's own AccessToken model.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/api/')) return next();
  const record = { ev: 'api', method: ctx.method, path: ctx.path, at: Date.now() };
  const auth = ctx.get('authorization');
  const m = /^Bearer ([^\s]+)$/i.exec(auth);
  ctx.set('cache-control', 'no-store');
  try {
    if (ctx.method !== 'GET') {
      ctx.status = 405;
      ctx.body = { error: 'method_not_allowed' };
      return;
    }
    if (!m) {
      ctx.status = 401;
      ctx.set('www-authenticate', 'Bearer realm="api"');
      ctx.body = { error: 'invalid_token', error_description: 'no bearer token' };
      return;
    }
    record.token_sha256 = sha256(m[1]);
    const token = await provider.AccessToken.find(m[1]);
    if (!token || token.isExpired) {
      ctx.status = 401;
      ctx.set('www-authenticate', 'Bearer realm="api", error="invalid_token"');
      ctx.body = { error: 'invalid_token', error_description: token ? 'expired' : 'unknown token' };
      return;
    }
    record.gty = token.gty;
    const account = ACCOUNTS[token.accountId];
    if (ctx.path === '/api/me' && account) {
      ctx.status = 200;
      ctx.body = {
        sub: account.sub,
        name: account.name,
        preferred_username: account.preferred_username,
        email: account.email,
        // how the access token used was obtained: "device_code", or
        // "device_code refresh_token" once refreshed (this changes the body after a refresh)
        gty: token.gty,
      };
      return;
    }
    ctx.status = 404;
    ctx.body = { error: 'not_found' };
  } finally {
    record.status = ctx.status;
    if (ctx.body?.error) record.error = ctx.body.error;
    emit(record);
  }
});

// OIDC Core §11: offline_access needs prompt=consent at the authorization endpoint, and
// oidc-provider drops it otherwise. Entra issues refresh tokens without it, and graph2mqtt's
// sign_in_url has no prompt: unless OIDC_OFFLINE_NEEDS_CONSENT_PROMPT is "true", such a request
// is taken as prompt=consent (the development interactions show the consent page either way).
if (env.OIDC_OFFLINE_NEEDS_CONSENT_PROMPT !== 'true') {
  provider.use(async (ctx, next) => {
    if (ctx.path === '/auth' && ctx.method === 'GET' && ctx.query.prompt === undefined
      && typeof ctx.query.scope === 'string' && ctx.query.scope.split(' ').includes('offline_access')) {
      ctx.query = { ...ctx.query, prompt: 'consent' };
    }
    return next();
  });
}

if (env.OIDC_HIDE_OPENID_CONFIGURATION === 'true') {
  provider.use(async (ctx, next) => {
    if (ctx.path !== '/.well-known/openid-configuration') return next();
    ctx.status = 404;
    ctx.body = { error: 'not_found' };
    emit({ ev: 'http', method: ctx.method, path: ctx.path, status: 404, at: Date.now(), ms: 0 });
  });
}

// A record of every exchange with the provider, for the driver's checks.
provider.use(async (ctx, next) => {
  const started = Date.now();
  let thrown;
  try {
    await next();
  } catch (err) {
    thrown = err;
    throw err;
  } finally {
    if (!ctx.path.startsWith('/api/')) {
      const record = {
        ev: 'http', method: ctx.method, path: ctx.path, status: thrown ? 500 : ctx.status,
        at: started, ms: Date.now() - started,
      };
      let oidc;
      try { oidc = ctx.oidc; } catch { oidc = undefined; }
      const params = oidc?.params;
      if (params?.grant_type) record.grant_type = params.grant_type;
      if (oidc?.client?.clientId) record.client_id = oidc.client.clientId;
      if (oidc?.client?.clientAuthMethod) record.client_auth = oidc.client.clientAuthMethod;
      // How the client actually authenticated (the library takes basic and post alike).
      if (/^basic /i.test(ctx.get('authorization'))) record.client_auth_sent = 'client_secret_basic';
      else if (params?.client_secret !== undefined) record.client_auth_sent = 'client_secret_post';
      else if (params?.client_assertion !== undefined) record.client_auth_sent = 'jwt';
      else if (params?.client_id !== undefined) record.client_auth_sent = 'none';
      // What the client sent (secrets included, for the driver's correlation and leak checks).
      if (record.grant_type && params) {
        record.request = {};
        for (const key of ['device_code', 'refresh_token', 'scope', 'code', 'redirect_uri', 'code_verifier']) {
          if (params[key] !== undefined) record.request[key] = params[key];
        }
      }
      const body = ctx.body;
      if (body && typeof body === 'object' && !Buffer.isBuffer(body) && typeof body.pipe !== 'function') {
        for (const key of ['error', 'error_description', 'device_code', 'user_code', 'access_token',
          'refresh_token', 'id_token', 'expires_in', 'interval', 'scope', 'verification_uri',
          'verification_uri_complete']) {
          if (body[key] !== undefined) record[key] = body[key];
        }
      }
      emit(record);
    }
  }
});

handler = provider.callback();
emit({ ev: 'ready', issuer, pid: process.pid });

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// graph2mqtt against panva's oidc-provider: the RFC 8628 device flow end to end, checked over
// MQTT as a display would see it, with the code approved or denied through the provider's own
// HTML pages. Everything runs on 127.0.0.1; see README.md.
//
//   node run-test.mjs          (tests/oidc/run installs the pinned packages first)
//
// Environment:
//   G2M_AGENT_BIN        the graph2mqtt binary (default: ../../build/agent/graph2mqtt from here)
//   G2M_MOSQUITTO_BIN    mosquitto (default: mosquitto on PATH)
//   G2M_OIDC_AT_TTL      access token lifetime for the refresh test, seconds (default 45; the
//                        agent refreshes at once when a token has 30 s or less, so keep it above)
//   G2M_OIDC_DC_TTL      device code lifetime for the expiry test, seconds (default 10)
//   G2M_OIDC_DEADLINE    the whole run's deadline, seconds (default 240)
//   G2M_OIDC_KEEP=1      keep the work folder (logs, configs) even when everything passed
//   G2M_OIDC_VERBOSE=1   echo every MQTT message and every provider exchange as it happens
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { browserLogin } from './browser-login.mjs';
import { Browser, excerpt, forms, links } from './html-browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const AGENT = env.G2M_AGENT_BIN || path.resolve(here, '../../build/agent/graph2mqtt');
const MOSQUITTO = env.G2M_MOSQUITTO_BIN || 'mosquitto';
const AT_TTL = Number(env.G2M_OIDC_AT_TTL || 45);
const DC_TTL = Number(env.G2M_OIDC_DC_TTL || 10);
const DEADLINE_S = Number(env.G2M_OIDC_DEADLINE || 240);
const VERBOSE = env.G2M_OIDC_VERBOSE === '1';
const USER = { login: 'adele', name: 'Adele Vance', username: 'adele@example.test' };
const SCOPES = ['openid', 'profile', 'email', 'offline_access'];

const t0 = Date.now();
const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
const say = (...a) => console.log(stamp(), ...a);
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const parse = (text) => { try { return JSON.parse(text); } catch { return undefined; } };

// ---------------------------------------------------------------------------------------------
// Waiting: everything observable (MQTT messages, log lines, provider records, exits) fires
// `update`; a wait re-checks its condition on each one, against a deadline.
const hub = new EventEmitter();
hub.setMaxListeners(0);
const changed = () => hub.emit('update');

function waitFor(what, seconds, probe) {
  return new Promise((resolve, reject) => {
    let timer;
    const finish = () => { clearTimeout(timer); hub.off('update', check); };
    function check() {
      let value;
      try { value = probe(); } catch (err) { finish(); reject(err); return; }
      if (value !== undefined && value !== null && value !== false) { finish(); resolve(value); }
    }
    timer = setTimeout(() => { finish(); reject(new Error(`timed out after ${seconds} s waiting for ${what}`)); }, seconds * 1000);
    hub.on('update', check);
    check();
  });
}

// ---------------------------------------------------------------------------------------------
// Results.
const results = [];
function report(name, ok, detail) {
  results.push({ name, ok });
  say(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
}
class Scenario {
  constructor(name) { this.name = name; this.broken = null; }
  async step(title, fn) {
    const name = `${this.name}: ${title}`;
    if (this.broken) { report(name, false, `not run: "${this.broken}" failed`); return undefined; }
    try {
      const value = await fn();
      report(name, true);
      return value;
    } catch (err) {
      this.broken = title;
      report(name, false, err?.message || String(err));
      return undefined;
    }
  }
}
function expect(cond, message) { if (!cond) throw new Error(message); }

// ---------------------------------------------------------------------------------------------
// Processes, each with its output in the work folder and in memory.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'g2m-oidc-'));
const procs = [];

function start(name, cmd, args, { extraEnv = {}, onLine } = {}) {
  const logPath = path.join(work, `${name}.log`);
  const file = fs.openSync(logPath, 'a');
  const child = spawn(cmd, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { name, child, lines: [], exit: null, logPath };
  for (const stream of ['stdout', 'stderr']) {
    let rest = '';
    child[stream].setEncoding('utf8');
    child[stream].on('data', (chunk) => {
      rest += chunk;
      const parts = rest.split('\n');
      rest = parts.pop();
      for (const text of parts) {
        p.lines.push({ stream, text, at: Date.now() });
        fs.writeSync(file, `${stream === 'stderr' ? 'E' : 'O'} ${text}\n`);
        onLine?.(stream, text);
      }
      if (parts.length) changed();
    });
  }
  child.on('error', (err) => { p.exit = { error: err.message }; changed(); });
  child.on('exit', (code, signal) => { p.exit = { code, signal, at: Date.now() }; fs.closeSync(file); changed(); });
  procs.push(p);
  return p;
}

async function stop(p, seconds = 5) {
  if (p.exit) return p.exit;
  p.child.kill('SIGTERM');
  try {
    return await waitFor(`${p.name} to exit`, seconds, () => p.exit);
  } catch {
    p.child.kill('SIGKILL');
    return waitFor(`${p.name} to die`, 5, () => p.exit);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// ---------------------------------------------------------------------------------------------
// The provider: its stdout is a stream of JSON records (see provider.mjs).
async function startProvider(name, extraEnv) {
  const records = [];
  const p = start(name, process.execPath, [path.join(here, 'provider.mjs')], {
    extraEnv,
    onLine(stream, text) {
      if (stream !== 'stdout') return;
      const r = parse(text);
      if (!r) return;
      records.push(r);
      if (VERBOSE && r.ev !== 'ready') {
        say(`${name}: ${r.method} ${r.path} ${r.status}${r.grant_type ? ` ${r.grant_type.replace(/.*:/, '')}` : ''}${r.error ? ` ${r.error}` : ''}`);
      }
    },
  });
  p.records = records;
  const ready = await waitFor(`${name} to start`, 30, () => {
    if (p.exit) throw new Error(`${name} exited: ${JSON.stringify(p.exit)}; see ${p.logPath}`);
    return records.find((r) => r.ev === 'ready');
  });
  p.issuer = ready.issuer;
  return p;
}
const tokenRecords = (prov, pred = () => true) => prov.records.filter((r) => r.ev === 'http' && r.path === '/token' && pred(r));
// The provider's records come through a pipe, the agent's doings through the broker: either may
// be first, so a record is waited for (briefly) rather than looked up.
const record = (prov, what, pred, seconds = 5) => waitFor(`the provider's record of ${what}`, seconds, () => prov.records.find(pred));

// ---------------------------------------------------------------------------------------------
// MQTT: one client that sees everything, as a display (and a debugging human) would.
const msgs = [];
let client;
async function connectMqtt(port) {
  client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    protocolVersion: 5, clientId: `g2m-oidc-display-${process.pid}`, reconnectPeriod: 0, connectTimeout: 5000,
  });
  client.on('message', (topic, payload, packet) => {
    const m = { topic, text: payload.toString('utf8'), retain: packet.retain, at: Date.now() };
    msgs.push(m);
    if (VERBOSE) say(`mqtt ${topic}${m.retain ? ' (retained)' : ''} ${m.text.slice(0, 300)}`);
    changed();
  });
  await client.subscribeAsync(['g2m/#', 'g2mb/#', 'g2mc/#'], { qos: 1 });
}
const since = (from, pred) => msgs.slice(from).find(pred);
const onTopic = (topic, pred = () => true) => (m) => m.topic === topic && pred(m.text === '' ? null : parse(m.text), m);
const eventIs = (base, account, name) => onTopic(`${base}/${account}/events`, (j) => j?.event === name);

let transactions = 0;
async function request(base, action, body, seconds = 15) {
  const transaction = `oidc-${++transactions}`;
  const from = msgs.length;
  await client.publishAsync(`${base}/bridge/request/${action}`, JSON.stringify({ ...body, transaction }), { qos: 1 });
  const m = await waitFor(`the reply to ${action} (${transaction})`, seconds, () => since(from,
    onTopic(`${base}/bridge/response/${action}`, (j) => j?.transaction === transaction)));
  return parse(m.text);
}

// ---------------------------------------------------------------------------------------------
function needForm(page, what, pred, b) {
  const f = forms(page.text).find(pred);
  if (!f) throw new Error(`no ${what} on ${new URL(page.url).pathname} (HTTP ${page.status}); went ${b.where()}; page: ${excerpt(page.text)}`);
  return f;
}

// A person at a browser: opens the verification page, enters (or is handed) the code, confirms
// the device, signs in as adele, and consents — or aborts at the confirmation or consent page.
async function actAsUser(code, { via = 'typed', decision = 'approve' } = {}) {
  const b = new Browser();
  let page;
  if (via === 'complete') {
    // verification_uri_complete: the provider answers with an auto-submitting form (form_post).
    page = await b.go(code.verification_uri_complete);
    const auto = needForm(page, 'auto-submitted code form', (f) => 'xsrf' in f.fields && 'user_code' in f.fields, b);
    page = await b.submit(page, auto);
  } else {
    page = await b.go(code.verification_uri);
    const input = needForm(page, 'user code form', (f) => f.id === 'op.deviceInputForm', b);
    page = await b.submit(page, input, { user_code: code.user_code });
  }
  const confirm = needForm(page, 'device confirmation form', (f) => f.id === 'op.deviceConfirmForm', b);
  expect(page.text.includes(`<code>${code.user_code}</code>`), `the confirmation page does not show ${code.user_code}`);
  if (decision === 'abort-confirm') {
    page = await b.submit(page, confirm, { abort: 'yes' }); // the [ Abort ] button
    expect(/interrupted/i.test(page.text), `no "interrupted" after abort (HTTP ${page.status}; ${b.where()})`);
    return b.where();
  }
  page = await b.submit(page, confirm);
  const login = needForm(page, 'login form', (f) => f.fields.prompt === 'login', b);
  page = await b.submit(page, login, { login: USER.login, password: 'any password' });
  const consent = needForm(page, 'consent form', (f) => f.fields.prompt === 'consent', b);
  if (decision === 'abort-consent') {
    const cancel = links(page.text).find((l) => /cancel/i.test(l.text));
    expect(cancel, 'no [ Cancel ] link on the consent page');
    page = await b.go(new URL(cancel.href, page.url).href);
    expect(page.status < 500, `the abort answered HTTP ${page.status} (${b.where()})`);
    return b.where();
  }
  page = await b.submit(page, consent);
  expect(/Sign-in Success/.test(page.text), `no "Sign-in Success" page at the end (HTTP ${page.status}; ${b.where()})`);
  return b.where();
}

// ---------------------------------------------------------------------------------------------
// The agent.
function writeConfig(name, text) {
  const file = path.join(work, `${name}.yaml`);
  fs.writeFileSync(file, text);
  return file;
}
async function startAgent(name, config, base) {
  const from = msgs.length;
  const p = start(name, AGENT, ['--config', config]);
  await waitFor(`${name} to be online`, 20, () => {
    if (p.exit) throw new Error(`${name} exited ${JSON.stringify(p.exit)}: ${p.lines.slice(-5).map((l) => l.text).join(' | ')}`);
    return since(from, onTopic(`${base}/bridge/state`, (j) => j?.state === 'online'));
  });
  return p;
}
const agentLog = (p) => p.lines.map((l) => l.text).join('\n');

const closeTo = (iso, expectedMs, slackMs) => Math.abs(Date.parse(iso) - expectedMs) <= slackMs;

// Gaps between a device code's polls, as the provider saw them.
function pollTimes(prov, deviceCode) {
  const auth = prov.records.find((r) => r.ev === 'http' && r.path === '/device/auth' && r.device_code === deviceCode);
  const polls = tokenRecords(prov, (r) => r.request?.device_code === deviceCode);
  return { auth, polls };
}
function checkPolling(prov, deviceCode) {
  const { auth, polls } = pollTimes(prov, deviceCode);
  expect(auth && polls.length, 'the provider saw no poll for this code');
  const first = polls[0].at - auth.at;
  const gaps = polls.slice(1).map((p, i) => p.at - polls[i].at);
  // The answer had no interval: RFC 8628 §3.2 says 5 s. Arrival times at the provider jitter
  // under load, so allow 0.5 s: an agent that ignored the rule would poll at 0 or 1 s.
  expect(first >= 4500, `first poll ${first} ms after the code (want 5 s: no interval means 5)`);
  expect(gaps.every((g) => g >= 4500), `poll gaps ${gaps.join(', ')} ms (want each ≥ 5 s)`);
  return { first, gaps, polls };
}

// ---------------------------------------------------------------------------------------------
// Scenarios.
async function signInScenario(sc, { base, account, prov }) {
  const from = msgs.length;
  const sentAt = Date.now();
  const reply = await sc.step('login is accepted and a code is out (pending)', async () => {
    const r = await request(base, 'login', { account });
    expect(r.status === 'ok', `reply ${JSON.stringify(r)}`);
    expect(r.data?.state === 'pending' && r.data?.code?.user_code, `reply data ${JSON.stringify(r.data)}`);
    return r;
  });
  const code = await sc.step('auth/code carries the provider\'s user_code, verification_uri and verification_uri_complete; interval 5 (none sent)', async () => {
    const m = await waitFor('auth/code', 10, () => since(from, onTopic(`${base}/${account}/auth/code`, (j) => j?.user_code)));
    const c = parse(m.text);
    const auth = await record(prov, `user_code ${c.user_code}`, (r) => r.ev === 'http' && r.path === '/device/auth' && r.user_code === c.user_code);
    expect(auth.interval === undefined, 'the provider sent an interval (the facts say it does not)');
    expect(c.verification_uri === auth.verification_uri, `verification_uri ${c.verification_uri} ≠ ${auth.verification_uri}`);
    expect(c.verification_uri_complete === auth.verification_uri_complete,
      `verification_uri_complete ${c.verification_uri_complete} ≠ ${auth.verification_uri_complete}`);
    expect(c.interval === 5, `interval ${c.interval}`);
    expect(closeTo(c.expires_at, sentAt + auth.expires_in * 1000, 5000), `expires_at ${c.expires_at} is not ~${auth.expires_in} s away`);
    expect(reply.data.code.user_code === c.user_code, 'the login reply names another code');
    const issued = since(from, eventIs(base, account, 'code_issued'));
    expect(issued, 'no code_issued event');
    const ev = parse(issued.text);
    expect(ev.user_code === c.user_code && ev.verification_uri_complete === auth.verification_uri_complete,
      `code_issued ${issued.text}`);
    const state = [...msgs.slice(from)].reverse().find(onTopic(`${base}/${account}/auth/state`));
    expect(parse(state?.text)?.state === 'pending' && parse(state.text).code?.verification_uri_complete === auth.verification_uri_complete,
      `auth/state ${state?.text}`);
    return { ...c, device_code: auth.device_code };
  });
  return { code, from, sentAt };
}

async function approveAndSignIn(sc, {
  base, account, prov, code, from, via, expectUserinfo, clientAuth, scopes = SCOPES, pendingPolls = 0,
}) {
  if (pendingPolls) {
    // A user who takes their time: the agent keeps polling, ≥ 5 s apart, meanwhile.
    await sc.step(`the agent polls (authorization_pending ×${pendingPolls}) while the user has not acted`, () => waitFor(
      `${pendingPolls} authorization_pending answers`, 5 * pendingPolls + 10,
      () => tokenRecords(prov, (r) => r.request?.device_code === code.device_code && r.error === 'authorization_pending').length >= pendingPolls,
    ));
  }
  await sc.step(`the user approves at the provider's pages (${via === 'complete' ? 'verification_uri_complete' : 'verification_uri, code typed'}; login, consent)`,
    () => actAsUser(code, { via }));
  const tokens = await sc.step(`signed_in with the user ${expectUserinfo ? 'from userinfo (the id_token has no name)' : 'from the id_token'}`, async () => {
    const ev = await waitFor('the signed_in event', 15, () => since(from, eventIs(base, account, 'signed_in')));
    const e = parse(ev.text);
    expect(e.user?.name === USER.name && e.user?.username === USER.username, `signed_in user ${JSON.stringify(e.user)}`);
    const state = await waitFor('auth/state signed_in', 5, () => since(from, onTopic(`${base}/${account}/auth/state`, (j) => j?.state === 'signed_in')));
    const s = parse(state.text);
    expect(s.user?.name === USER.name && s.user?.username === USER.username, `auth/state user ${JSON.stringify(s.user)}`);
    for (const scope of scopes) expect(s.scopes?.includes(scope), `scopes ${JSON.stringify(s.scopes)} lack ${scope}`);
    expect(s.scopes.length === scopes.length, `scopes ${JSON.stringify(s.scopes)}, want ${JSON.stringify(scopes)}`);
    expect(s.code === null && s.reason === null, `auth/state ${state.text}`);
    const cleared = since(from, (m) => m.topic === `${base}/${account}/auth/code` && m.text === '');
    expect(cleared, 'auth/code was not cleared');
    const grant = await record(prov, 'the device_code grant', (r) => r.path === '/token' && r.request?.device_code === code.device_code && r.status === 200);
    expect(grant.access_token && grant.refresh_token && grant.id_token, 'the device_code grant gave no access, refresh and id token');
    if (clientAuth) {
      expect(grant.client_auth === clientAuth.registered && grant.client_auth_sent === clientAuth.sent,
        `client registered for ${grant.client_auth}, authenticated with ${grant.client_auth_sent}`);
    }
    expect(closeTo(s.expires_at, grant.at + grant.expires_in * 1000, 3000), `expires_at ${s.expires_at} vs expires_in ${grant.expires_in}`);
    const claims = parse(Buffer.from(grant.id_token.split('.')[1], 'base64url').toString());
    const isUserinfo = (r) => r.ev === 'http' && r.path === '/me' && r.method === 'GET';
    // Records arrive in order: the userinfo request (if any) comes before the first /api/me.
    if (expectUserinfo) await record(prov, 'the userinfo request', isUserinfo);
    else await record(prov, 'the first /api/me', (r) => r.ev === 'api' && r.token_sha256 === sha256(grant.access_token), 15);
    const userinfo = prov.records.filter(isUserinfo);
    if (expectUserinfo) {
      expect(!claims.name && !claims.preferred_username, `the id_token has a name: ${Object.keys(claims)}`);
      // One userinfo request for this sign-in (the browser account, same provider, has its own).
      const mine = userinfo.filter((r) => r.at >= grant.at);
      expect(mine.length >= 1 && mine[0].status === 200, `userinfo requests: ${userinfo.map((r) => r.status)}`);
    } else {
      expect(claims.name === USER.name, `the id_token has no name: ${Object.keys(claims)}`);
      expect(userinfo.length === 0, `the agent asked userinfo ${userinfo.length} times though the id_token had the name`);
    }
    return grant;
  });
  await sc.step('graph/me is published from the protected resource, fetched with that access token', async () => {
    const m = await waitFor('graph/me', 15, () => since(from, onTopic(`${base}/${account}/graph/me`, (j) => j?.sub)));
    const body = parse(m.text);
    expect(body.sub === USER.login && body.name === USER.name && body.gty === 'device_code', `graph/me ${m.text}`);
    await record(prov, '/api/me with that access token', (r) => r.ev === 'api' && r.status === 200 && r.token_sha256 === sha256(tokens.access_token));
  });
  await sc.step('polling: first poll and every gap ≥ 5 s (no interval sent), one redemption, no invalid_grant', async () => {
    const { first, gaps, polls } = checkPolling(prov, code.device_code);
    const ok = polls.filter((p) => p.status === 200);
    expect(ok.length === 1, `${ok.length} successful redemptions`);
    expect(polls.every((p) => p.status === 200 || p.error === 'authorization_pending'), `poll answers ${polls.map((p) => p.error || p.status)}`);
    expect(polls[polls.length - 1].status === 200, 'the agent polled again after it had the tokens');
    say(`  ${account}: first poll after ${(first / 1000).toFixed(1)} s, gaps ${gaps.map((g) => (g / 1000).toFixed(1)).join(', ') || '(none)'} s`);
  });
  return tokens;
}

// The browser sign-in (authorization code + PKCE, RFC 7636) against an implementation we did not
// write: oidc-provider requires PKCE S256 from public clients and checks the verifier itself.
async function browserScenario(prov) {
  const sc = new Scenario('browser sign-in (browser)');
  const base = 'g2m';
  const account = 'browser';
  const from = msgs.length;
  const url = await sc.step('login: the reply carries a browser sign-in with the discovered authorization_endpoint, S256 and state', async () => {
    const r = await request(base, 'login', { account });
    expect(r.status === 'ok' && r.data?.state === 'pending', `reply ${JSON.stringify(r)}`);
    const code = r.data.code;
    expect(code?.method === 'browser' && code.user_code === null, `code ${JSON.stringify(code)}`);
    const u = new URL(code.sign_in_url);
    expect(`${u.origin}${u.pathname}` === `${prov.issuer}/auth`, `sign_in_url ${code.sign_in_url}`);
    expect(u.searchParams.get('code_challenge_method') === 'S256', 'no S256');
    expect((u.searchParams.get('state') || '').length >= 22, 'state too short');
    expect(u.searchParams.get('redirect_uri') === 'http://localhost:8400/cb', 'redirect_uri');
    await waitFor('code_issued (browser)', 10, () => since(from, eventIs(base, account, 'code_issued')));
    return code.sign_in_url;
  });
  if (sc.broken) return sc;
  const address = await sc.step('the user signs in at the provider\'s pages and ends at the redirect URI with a code', async () => {
    const a = await browserLogin(url, { decision: 'approve', login: USER.login });
    expect(new URL(a).searchParams.get('code'), `address without a code: ${a.slice(0, 60)}`);
    return a;
  });
  if (sc.broken) return sc;
  await sc.step('a pasted address with another state is refused and the sign-in keeps waiting', async () => {
    const other = new URL(address);
    other.searchParams.set('state', 'someone-else');
    const r = await request(base, 'complete', { account, url: other.toString() });
    expect(r.status === 'error', `reply ${JSON.stringify(r)}`);
  });
  await sc.step('complete: the provider accepts the code with the PKCE verifier; signed_in as the user', async () => {
    const r = await request(base, 'complete', { account, url: address }, 20);
    expect(r.status === 'ok' && r.data?.state === 'signed_in', `reply ${JSON.stringify(r)}`);
    expect(r.data.user?.name === USER.name, `user ${JSON.stringify(r.data.user)}`);
    const grants = prov.records.filter((x) => x.grant_type === 'authorization_code');
    expect(grants.length === 1 && grants[0].status === 200, `authorization_code grants: ${grants.map((g) => g.status)}`);
    expect(grants[0].request?.code_verifier?.length === 43, 'no 43-character code_verifier sent');
    expect(grants[0].request?.redirect_uri === 'http://localhost:8400/cb', 'redirect_uri at the token endpoint');
    await waitFor('signed_in event', 10, () => since(from, eventIs(base, account, 'signed_in')));
  });
  await sc.step('the browser-born refresh token works: refresh command ok, token_refreshed', async () => {
    const r = await request(base, 'refresh', { account }, 20);
    expect(r.status === 'ok', `reply ${JSON.stringify(r)}`);
  });
  return sc;
}

async function panelScenario(prov) {
  const sc = new Scenario('sign-in (panel)');
  const base = 'g2m';
  const account = 'panel';
  const { code, from } = await signInScenario(sc, { base, account, prov });
  const first = await approveAndSignIn(sc, {
    base, account, prov, code, from, via: 'typed', expectUserinfo: true, clientAuth: { registered: 'none', sent: 'none' },
  });

  const rf = new Scenario('refresh (panel)');
  if (sc.broken) rf.broken = `sign-in (${sc.broken})`;
  let newest;
  const cmdFrom = msgs.length;
  newest = await rf.step('the refresh command: ok reply, token_refreshed, the provider rotated the refresh token', async () => {
    const r = await request(base, 'refresh', { account });
    expect(r.status === 'ok' && r.data?.state === 'signed_in', `reply ${JSON.stringify(r)}`);
    const ev = await waitFor('token_refreshed', 5, () => since(cmdFrom, eventIs(base, account, 'token_refreshed')));
    const grant = await record(prov, 'the refresh', (x) => x.path === '/token' && x.grant_type === 'refresh_token' && x.request?.refresh_token === first.refresh_token);
    expect(grant.status === 200, `the refresh with the first refresh token: ${grant?.status} ${grant?.error || ''}`);
    expect(grant.refresh_token && grant.refresh_token !== first.refresh_token, 'no rotated refresh token in the answer');
    expect(closeTo(parse(ev.text).expires_at, grant.at + grant.expires_in * 1000, 3000), `token_refreshed ${ev.text}`);
    return grant;
  });
  await rf.step('refresh of resource me: ok 200, graph/me re-published, served with the refreshed access token', async () => {
    const f = msgs.length;
    const r = await request(base, 'refresh', { account, resource: 'me' });
    expect(r.status === 'ok' && r.data?.resource === 'me' && r.data?.status === 200, `reply ${JSON.stringify(r)}`);
    const m = await waitFor('graph/me', 5, () => since(f, onTopic(`${base}/${account}/graph/me`, (j) => j?.sub)));
    expect(parse(m.text).gty === 'device_code refresh_token', `graph/me ${m.text}`);
    await record(prov, '/api/me with the refreshed access token', (x) => x.ev === 'api' && x.status === 200 && x.token_sha256 === sha256(newest.access_token));
  });
  const proFrom = msgs.length;
  const second = await rf.step(`proactive refresh before the ${AT_TTL} s access token expires, with the rotated refresh token`, async () => {
    const ev = await waitFor('a proactive token_refreshed', AT_TTL + 10, () => since(proFrom, eventIs(base, account, 'token_refreshed')));
    const lead = newest.at + newest.expires_in * 1000 - ev.at;
    const grant = await record(prov, 'the proactive refresh', (x) => x.path === '/token' && x.grant_type === 'refresh_token' && x.request?.refresh_token === newest.refresh_token);
    expect(grant.status === 200, `the refresh with the rotated refresh token: ${grant?.status} ${grant?.error || ''}`);
    expect(ev.at < newest.at + newest.expires_in * 1000, 'refreshed only after expiry');
    say(`  panel: proactive refresh ${((grant.at - newest.at) / 1000).toFixed(1)} s into a ${newest.expires_in} s token (${(lead / 1000).toFixed(1)} s left)`);
    return grant;
  });
  await rf.step('the scheduled fetch (every 5 s) uses the newest access token', async () => {
    await waitFor('an /api/me with the newest access token', 12, () => prov.records.find((x) => x.ev === 'api' && x.status === 200 && x.token_sha256 === sha256(second.access_token)));
    const refreshes = tokenRecords(prov, (x) => x.grant_type === 'refresh_token');
    expect(refreshes.every((x) => x.status === 200), `refresh answers ${refreshes.map((x) => x.error || x.status)}`);
    expect(!since(from, eventIs(base, account, 'auth_error')), 'an auth_error was emitted');
    const unauthorized = prov.records.filter((x) => x.ev === 'api' && x.status !== 200);
    expect(!unauthorized.length, `the resource refused ${unauthorized.length} requests: ${unauthorized.map((x) => x.error)}`);
  });
  return { sc, rf };
}

async function endScenario(sc, { base, account, prov, code, from, reason, event, eventPred = () => true, seconds }) {
  await sc.step(`${event} event, then signed_out with reason ${reason}`, async () => {
    const ev = await waitFor(`the ${event} event`, seconds, () => since(from, eventIs(base, account, event)));
    expect(eventPred(parse(ev.text)), `${event} ${ev.text}`);
    const out = await waitFor('signed_out', 5, () => since(from, eventIs(base, account, 'signed_out')));
    expect(parse(out.text).reason === reason, `signed_out ${out.text}`);
    expect(msgs.indexOf(ev) < msgs.indexOf(out), `signed_out came before ${event}`);
    const state = await waitFor(`auth/state signed_out (${reason})`, 5, () => since(from, onTopic(`${base}/${account}/auth/state`, (j) => j?.state === 'signed_out' && j.reason === reason)));
    const s = parse(state.text);
    expect(s.code === null && s.user === null && s.expires_at === null, `auth/state ${state.text}`);
    expect(since(from, (m) => m.topic === `${base}/${account}/auth/code` && m.text === ''), 'auth/code was not cleared');
    return ev;
  });
  const polls = tokenRecords(prov, (r) => r.request?.device_code === code?.device_code);
  return polls;
}

async function expiryScenario(prov) {
  const sc = new Scenario(`expiry (kiosk, device code ttl ${DC_TTL} s)`);
  const base = 'g2m';
  const account = 'kiosk';
  const { code, from, sentAt } = await signInScenario(sc, { base, account, prov });
  await endScenario(sc, {
    base, account, prov, code, from, reason: 'code_expired', event: 'code_expired',
    eventPred: (e) => e.renewing === false, seconds: DC_TTL + 15,
  });
  await sc.step('expiry came at the code\'s expires_in, polls ≥ 5 s apart, none after expiry was known', async () => {
    const ev = since(from, eventIs(base, account, 'code_expired'));
    const late = ev.at - (sentAt + DC_TTL * 1000);
    expect(late > -1500 && late < 6000, `code_expired ${(late / 1000).toFixed(1)} s after the code's expiry`);
    const { polls } = checkPolling(prov, code.device_code);
    const expired = polls.filter((p) => p.error === 'expired_token');
    expect(polls.every((p) => p.error === 'authorization_pending' || p.error === 'expired_token'), `poll answers ${polls.map((p) => p.error || p.status)}`);
    expect(expired.length <= 1, `${expired.length} expired_token answers (polled on after expiry)`);
    const after = prov.records.filter((r) => r.ev === 'http' && r.path === '/token' && r.request?.device_code === code.device_code && r.at > ev.at + 200);
    expect(!after.length, `${after.length} polls after code_expired`);
    say(`  kiosk: ${polls.length} polls; ended by ${expired.length ? "the provider's expired_token" : "the agent's own clock (expires_in)"}, ${(late / 1000).toFixed(1)} s after expiry`);
  });
  return sc;
}

async function denialScenario(prov, { account, decision, via }) {
  const where = decision === 'abort-confirm' ? 'the device confirmation page ([ Abort ])' : 'the consent page ([ Cancel ])';
  const sc = new Scenario(`denial at ${decision === 'abort-confirm' ? 'confirmation' : 'consent'} (${account})`);
  const base = 'g2m';
  const { code, from } = await signInScenario(sc, { base, account, prov });
  await sc.step(`the user aborts at ${where}${via === 'complete' ? ', reached through verification_uri_complete' : ''}`,
    () => actAsUser(code, { via, decision }));
  await endScenario(sc, { base, account, prov, code, from, reason: 'declined', event: 'declined', seconds: 15 });
  await sc.step('the provider answered access_denied once and the agent stopped polling', async () => {
    await record(prov, 'access_denied', (r) => r.path === '/token' && r.request?.device_code === code.device_code && r.error === 'access_denied');
    const polls = tokenRecords(prov, (r) => r.request?.device_code === code.device_code);
    const denied = polls.filter((p) => p.error === 'access_denied');
    expect(denied.length === 1 && polls[polls.length - 1] === denied[0], `poll answers ${polls.map((p) => p.error || p.status)}`);
    checkPolling(prov, code.device_code);
  });
  return sc;
}

async function confidentialScenario(prov, secret) {
  const sc = new Scenario('explicit endpoints + client_secret_file (lobby)');
  const base = 'g2mb';
  const account = 'lobby';
  const { code, from } = await signInScenario(sc, { base, account, prov });
  await approveAndSignIn(sc, {
    base, account, prov, code, from, via: 'complete', expectUserinfo: false, pendingPolls: 2,
    clientAuth: { registered: 'client_secret_post', sent: 'client_secret_post' },
    scopes: ['email', 'openid', 'profile', 'offline_access'], // [email] configured, the rest added
  });
  await sc.step('no discovery request (both endpoints configured)', () => {
    const wk = prov.records.filter((r) => r.ev === 'http' && r.path.startsWith('/.well-known/'));
    expect(!wk.length, `${wk.length} discovery requests`);
  });
  return sc;
}

async function fallbackScenario(prov, agent) {
  const sc = new Scenario('RFC 8414 fallback + client registered for client_secret_basic (basic)');
  const base = 'g2mc';
  const account = 'basic';
  const { code, from } = await signInScenario(sc, { base, account, prov });
  await sc.step('discovery: openid-configuration 404, then /.well-known/oauth-authorization-server', async () => {
    await waitFor('the discovery log line', 5, () => agent.lines.some((l) => l.text.includes(`discovery: device authorization at ${prov.issuer}/device/auth`)));
    const wk = prov.records.filter((r) => r.ev === 'http' && r.path.startsWith('/.well-known/'));
    expect(wk.map((r) => `${r.path} ${r.status}`).join(', ') === '/.well-known/openid-configuration 404, /.well-known/oauth-authorization-server 200',
      `discovery requests: ${wk.map((r) => `${r.path} ${r.status}`).join(', ')}`);
  });
  await approveAndSignIn(sc, {
    base, account, prov, code, from, via: 'typed', expectUserinfo: true,
    clientAuth: { registered: 'client_secret_basic', sent: 'client_secret_post' },
    scopes: ['openid', 'profile', 'offline_access'], // none configured: the ones always added
  });
  return sc;
}

async function wrongSecretScenario(prov) {
  const sc = new Scenario('wrong client secret (wrong-secret)');
  const base = 'g2mc';
  const account = 'wrong-secret';
  const from = msgs.length;
  await sc.step('login: error reply naming invalid_client, auth_error with retry_in null, signed_out reason error', async () => {
    const r = await request(base, 'login', { account });
    expect(r.status === 'error' && /invalid_client/.test(r.error) && r.retry_in === undefined, `reply ${JSON.stringify(r)}`);
    const ev = await waitFor('auth_error', 5, () => since(from, eventIs(base, account, 'auth_error')));
    const e = parse(ev.text);
    expect(e.error === 'invalid_client' && e.retry_in === null, `auth_error ${ev.text}`);
    const out = await waitFor('signed_out', 5, () => since(from, eventIs(base, account, 'signed_out')));
    expect(parse(out.text).reason === 'error', `signed_out ${out.text}`);
    await record(prov, 'the refused device authorization', (x) => x.path === '/device/auth' && x.status === 401 && x.error === 'invalid_client');
  });
  return sc;
}

// ---------------------------------------------------------------------------------------------
async function main() {
  say(`graph2mqtt: ${AGENT}`);
  say(`work folder: ${work}`);
  const setup = new Scenario('setup');
  await setup.step('the graph2mqtt binary exists', () => {
    fs.accessSync(AGENT, fs.constants.X_OK);
  });
  await setup.step('settings are usable', () => {
    // An access token with 30 s or less left is refreshed at once (docs/mqtt-api.md), which would make
    // every sign-in a refresh: the checks below assume a first token that is used as issued.
    expect(Number.isInteger(AT_TTL) && AT_TTL > 30, `G2M_OIDC_AT_TTL=${env.G2M_OIDC_AT_TTL} must be a whole number above 30`);
    expect(Number.isInteger(DC_TTL) && DC_TTL >= 5 && DC_TTL < 120, `G2M_OIDC_DC_TTL=${env.G2M_OIDC_DC_TTL} must be 5..119`);
  });
  if (setup.broken) return;

  // Broker.
  const mport = await freePort();
  const mconf = path.join(work, 'mosquitto.conf');
  fs.writeFileSync(mconf, `listener ${mport} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
  const broker = start('mosquitto', MOSQUITTO, ['-c', mconf]);
  await setup.step('mosquitto runs', () => waitFor('mosquitto', 10, () => {
    if (broker.exit) throw new Error(`mosquitto exited: ${broker.lines.map((l) => l.text).join(' | ')}`);
    return broker.lines.some((l) => / running$/.test(l.text));
  }));

  // Providers: A as the library sets it up (id_token claims per spec, userinfo for the rest),
  // B with claims in the id_token and a confidential client.
  const secret = crypto.randomBytes(24).toString('base64url');
  const secretC = crypto.randomBytes(24).toString('base64url');
  let provA;
  let provB;
  let provC;
  await setup.step('oidc-provider A (public clients), B (client_secret_post client, claims in the id_token) and C (client_secret_basic client, no openid-configuration) start', async () => {
    [provA, provB, provC] = await Promise.all([
      startProvider('provider-a', {
        OIDC_CLIENTS: JSON.stringify([
          { client_id: 'g2m-panel', access_token_ttl: AT_TTL },
          { client_id: 'g2m-kiosk', device_code_ttl: DC_TTL },
        ]),
      }),
      startProvider('provider-b', {
        OIDC_CLIENTS: JSON.stringify([{ client_id: 'g2m-lobby', client_secret: secret }]),
        OIDC_CONFORM_ID_TOKEN_CLAIMS: 'false',
      }),
      startProvider('provider-c', {
        OIDC_CLIENTS: JSON.stringify([{ client_id: 'g2m-basic', client_secret: secretC, token_endpoint_auth_method: 'client_secret_basic' }]),
        OIDC_HIDE_OPENID_CONFIGURATION: 'true',
      }),
    ]);
  });
  await setup.step('the display connects to the broker', () => connectMqtt(mport));
  if (setup.broken) return;

  const secretFile = path.join(work, 'lobby.secret');
  fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const accountsA = `  browser:
    client_id: g2m-panel
    scopes: [${SCOPES.join(', ')}]
    sign_in_method: browser
    redirect_uri: "http://localhost:8400/cb"
` + ['panel', 'kiosk', 'deny-confirm', 'deny-consent'].map((name) => `  ${name}:
    client_id: ${name === 'kiosk' ? 'g2m-kiosk' : 'g2m-panel'}
    scopes: [${SCOPES.join(', ')}]${name === 'panel' ? `
    resources:
      me: { path: /me, every: 5s }` : ''}
`).join('');
  const configA = writeConfig('agent-a', `mqtt: { server: "mqtt://127.0.0.1:${mport}", base_topic: g2m, client_id: g2m-oidc-a }
identity: { provider: oidc, issuer: "${provA.issuer}", api: "${provA.issuer}/api", timeout: 10s }
storage: { dir: "${path.join(work, 'tokens-a')}" }
log: { level: debug }
accounts:
${accountsA}`);
  const configB = writeConfig('agent-b', `mqtt: { server: "mqtt://127.0.0.1:${mport}", base_topic: g2mb, client_id: g2m-oidc-b }
identity:
  provider: oidc
  device_authorization_endpoint: "${provB.issuer}/device/auth"
  token_endpoint: "${provB.issuer}/token"
  api: "${provB.issuer}/api"
storage: { dir: "${path.join(work, 'tokens-b')}" }
log: { level: debug }
accounts:
  lobby:
    client_id: g2m-lobby
    client_secret_file: "${secretFile}"
    scopes: [email]
    resources:
      me: { path: /me, every: 1h }
`);
  const wrongSecret = crypto.randomBytes(24).toString('base64url');
  fs.writeFileSync(path.join(work, 'basic.secret'), secretC, { mode: 0o600 });
  fs.writeFileSync(path.join(work, 'wrong.secret'), `${wrongSecret}\n`, { mode: 0o600 });
  const configC = writeConfig('agent-c', `mqtt: { server: "mqtt://127.0.0.1:${mport}", base_topic: g2mc, client_id: g2m-oidc-c }
identity: { provider: oidc, issuer: "${provC.issuer}", api: "${provC.issuer}/api" }
storage: { dir: "${path.join(work, 'tokens-c')}" }
log: { level: debug }
accounts:
  basic:
    client_id: g2m-basic
    client_secret_file: "${path.join(work, 'basic.secret')}"
    resources:
      me: { path: /me, every: 1h }
  wrong-secret:
    client_id: g2m-basic
    client_secret_file: "${path.join(work, 'wrong.secret')}"
`);
  const agents = [];
  let agentA;
  let agentB;
  let agentC;
  await setup.step('the three agents start and are online', async () => {
    [agentA, agentB, agentC] = await Promise.all([
      startAgent('agent-a', configA, 'g2m'), startAgent('agent-b', configB, 'g2mb'), startAgent('agent-c', configC, 'g2mc')]);
    agents.push(agentA, agentB, agentC);
  });
  if (setup.broken) return;

  const scenarios = await Promise.all([
    (async () => {
      const disc = new Scenario('discovery (agent a)');
      await disc.step('the agent reads /.well-known/openid-configuration before the first sign-in', async () => {
        // Discovery happens at the first login: panel's, which the next scenario starts.
        await waitFor('the discovery log line', 15, () => agentA.lines.some((l) => l.text.includes(`discovery: device authorization at ${provA.issuer}/device/auth`)));
        const wk = provA.records.filter((r) => r.ev === 'http' && r.path === '/.well-known/openid-configuration');
        expect(wk.length === 1 && wk[0].status === 200, `discovery requests: ${wk.map((r) => r.status)}`);
      });
      return [disc];
    })(),
    panelScenario(provA).then(({ sc, rf }) => [sc, rf]),
    expiryScenario(provA).then((sc) => [sc]),
    denialScenario(provA, { account: 'deny-confirm', decision: 'abort-confirm', via: 'complete' }).then((sc) => [sc]),
    denialScenario(provA, { account: 'deny-consent', decision: 'abort-consent', via: 'typed' }).then((sc) => [sc]),
    confidentialScenario(provB, secret).then((sc) => [sc]),
    browserScenario(provA).then((sc) => [sc]),
    fallbackScenario(provC, agentC).then((sc) => [sc]),
    wrongSecretScenario(provC).then((sc) => [sc]),
  ]);

  // A restart keeps the sign-in: tokens from disk, no user action.
  const rs = new Scenario('restart (agent a)');
  if (scenarios[1][0].broken) rs.broken = 'sign-in (panel)';
  await rs.step('SIGTERM: exit 0 within 2 s, bridge/state offline', async () => {
    const from = msgs.length;
    const sent = Date.now();
    const exit = await stop(agentA, 5);
    expect(exit.code === 0, `exit ${JSON.stringify(exit)}`);
    expect(exit.at - sent <= 2500, `took ${exit.at - sent} ms`);
    expect(since(from, onTopic('g2m/bridge/state', (j) => j?.state === 'offline')), 'no offline state');
  });
  await rs.step('restarted: panel signed_in from stored tokens and graph/me fetched again, no new device code', async () => {
    const from = msgs.length;
    const restarted = Date.now();
    const devices = provA.records.filter((r) => r.path === '/device/auth').length;
    const again = await startAgent('agent-a2', configA, 'g2m');
    agents.push(again);
    await waitFor('auth/state signed_in', 10, () => since(from, onTopic('g2m/panel/auth/state', (j) => j?.state === 'signed_in' && j.user?.name === USER.name)));
    await waitFor('graph/me', 15, () => since(from, onTopic('g2m/panel/graph/me', (j) => j?.sub === USER.login)));
    expect(provA.records.some((r) => r.ev === 'api' && r.status === 200 && r.at >= restarted), 'no /api/me served after the restart');
    expect(provA.records.filter((r) => r.path === '/device/auth').length === devices, 'a new device code was requested');
    expect(!since(from, eventIs('g2m', 'panel', 'signed_in')), 'tokens restored from disk emitted signed_in');
    for (const a of ['kiosk', 'deny-confirm', 'deny-consent']) {
      expect(since(from, onTopic(`g2m/${a}/auth/state`, (j) => j?.state === 'signed_out')), `${a} is not signed_out after the restart`);
    }
  });

  const late = new Scenario('wrong client secret, later');
  await late.step('still exactly one refused device authorization (no retry of a terminal error)', () => {
    const refused = provC.records.filter((r) => r.path === '/device/auth' && r.status === 401);
    expect(refused.length === 1, `${refused.length} refused requests`);
  });

  // Secrets: every device_code, access, refresh and id token the providers handed out, and the
  // client secret, must be absent from the agents' output and from every MQTT payload.
  const sec = new Scenario('secrets');
  await sec.step('no device_code, access/refresh/id token or client secret in the agents\' logs or any MQTT payload', async () => {
    await Promise.all(agents.map((a) => stop(a, 5)));
    const secrets = new Map();
    for (const prov of [provA, provB, provC]) {
      for (const r of prov.records) {
        for (const k of ['device_code', 'access_token', 'refresh_token', 'id_token']) if (r[k]) secrets.set(r[k], k);
        // The browser sign-in's authorization code and PKCE verifier, as the agent sent them.
        for (const k of ['code', 'code_verifier']) if (r.request?.[k]) secrets.set(r.request[k], k);
      }
    }
    secrets.set(secret, 'client secret');
    secrets.set(secretC, 'client secret');
    secrets.set(wrongSecret, 'wrong client secret');
    expect(secrets.size > 5, `only ${secrets.size} secrets collected`);
    const leaks = [];
    for (const [value, kind] of secrets) {
      for (const a of agents) if (agentLog(a).includes(value)) leaks.push(`${kind} in ${a.name}'s log`);
      for (const m of msgs) {
        // The pasted address reaches the agent on its request topic by design (docs/mqtt-api.md "Commands"
        // complete): that message is the display's, not the agent's.
        if (kind === 'code' && m.topic.endsWith('/bridge/request/complete')) continue;
        if (m.text.includes(value)) leaks.push(`${kind} on ${m.topic}`);
      }
    }
    expect(!leaks.length, [...new Set(leaks)].join('; '));
    say(`  ${secrets.size} secrets checked against ${agents.reduce((n, a) => n + a.lines.length, 0)} log lines and ${msgs.length} MQTT messages`);
  });
}

// ---------------------------------------------------------------------------------------------
let exiting = false;
async function finish(code) {
  if (exiting) return;
  exiting = true;
  try { await client?.endAsync(true); } catch { /* gone */ }
  await Promise.all(procs.map((p) => stop(p, 3).catch(() => {})));
  const failed = results.filter((r) => !r.ok).length;
  const passed = results.length - failed;
  if (failed || code) {
    say(`logs and configs kept in ${work}`);
    for (const p of procs.filter((x) => x.name.startsWith('agent'))) {
      say(`--- last lines of ${p.name} (${p.logPath})`);
      for (const l of p.lines.slice(-25)) console.log(`    ${l.text}`);
    }
  } else if (env.G2M_OIDC_KEEP === '1') {
    say(`work folder kept: ${work}`);
  } else {
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed || code ? 1 : 0);
}

const watchdog = setTimeout(() => {
  say(`FAIL the whole run passed its ${DEADLINE_S} s deadline`);
  results.push({ name: 'deadline', ok: false });
  finish(1);
}, DEADLINE_S * 1000);
process.on('SIGINT', () => { results.push({ name: 'interrupted', ok: false }); finish(1); });
process.on('SIGTERM', () => { results.push({ name: 'terminated', ok: false }); finish(1); });

main().then(() => { clearTimeout(watchdog); return finish(0); }, (err) => {
  clearTimeout(watchdog);
  say(`FAIL the driver itself: ${err?.stack || err}`);
  results.push({ name: 'driver', ok: false });
  return finish(1);
});

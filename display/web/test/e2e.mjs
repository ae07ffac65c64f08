// End-to-end test of the web display in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser is downloaded).
//
// It starts its own Mosquitto (a plain listener for the agent, a WebSockets listener for the
// page, password auth and an ACL), the simulated identity platform over HTTPS with a test CA,
// and the graph2mqtt agent for one account; serves dist/ on loopback; opens the page; presses
// its "Sign in" button (a login request over MQTT); checks the code on the page against the one
// on MQTT and the QR code against the URL; approves the code through the simulator; waits for
// "Signed in as Adele Vance", the presence and the meetings; follows a presence change; restarts
// the broker (the page reconnects, the agent re-publishes); stops the agent and waits for
// "Agent offline". scripts/display (the terminal display) runs beside the page and its output
// is checked too. Screenshots go to $G2M_ARTIFACTS (default display/web/test/artifacts/).
//
//   node test/e2e.mjs          (after npm ci and npm run build; test/run does all three)
// Environment: G2M_BUILD_DIR (default build, relative to the repository), G2M_ARTIFACTS,
// G2M_CHROMIUM (default /usr/bin/chromium), G2M_E2E_KEEP=1 keeps the work folder.

import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import net from 'node:net';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync, existsSync, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, extname, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import mqtt from 'mqtt';
import jsQR from 'jsqr';
import { PNG } from 'pngjs';

const here = dirname(fileURLToPath(import.meta.url));
const web = resolve(here, '..');
const repo = resolve(web, '../..');
const buildDir = resolve(repo, process.env.G2M_BUILD_DIR || 'build');
const artifacts = resolve(process.env.G2M_ARTIFACTS || join(here, 'artifacts'));
const chromiumPath = process.env.G2M_CHROMIUM || '/usr/bin/chromium';
const agentBin = join(buildDir, 'agent', 'graph2mqtt');
const simulatorBin = join(buildDir, 'tests', 'g2m-simulator');
const dist = join(web, 'dist');
const sbin = (name) => (existsSync(`/usr/sbin/${name}`) ? `/usr/sbin/${name}` : existsSync(`/usr/bin/${name}`) ? `/usr/bin/${name}` : name);

const ACCOUNT = 'kitchen';
const BASE = 'graph2mqtt';
const WAIT = 20000; // ms, for any one thing the page or the agent should do
const started = Date.now();

const work = mkdtempSync(join(tmpdir(), 'g2m-display-e2e.'));
const processes = [];
const closers = [];
let failed = false;

function log(message) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`e2e ${t}s: ${message}`);
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

// ---- processes ---------------------------------------------------------------------------

function start(name, argv) {
  const logFile = join(work, `${name}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const entry = { name, child, logFile, exit: null };
  let resolveSpawnError;
  entry.exited = new Promise((resolveExit) => {
    resolveSpawnError = resolveExit;
    child.on('exit', (code, signal) => {
      entry.exit = { code, signal };
      resolveExit(entry.exit);
    });
  });
  child.on('error', (err) => {
    // Not started (or not killable): no 'exit' will come.
    out.write(`spawn failed: ${err.message}\n`);
    entry.exit = entry.exit || { code: null, signal: null, error: err.message };
    resolveSpawnError(entry.exit);
  });
  processes.push(entry);
  return entry;
}

async function stop(entry, signal = 'SIGTERM', ms = 5000) {
  if (entry.exit) return entry.exit;
  entry.child.kill(signal);
  const done = await Promise.race([entry.exited, delay(ms).then(() => null)]);
  if (done) return done;
  entry.child.kill('SIGKILL');
  return Promise.race([entry.exited, delay(ms).then(() => ({ code: null, signal: 'unkillable' }))]);
}

async function freePort() {
  const server = net.createServer();
  await new Promise((ok, fail) => server.listen(0, '127.0.0.1', ok).on('error', fail));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

// Polls `probe` until it returns a truthy value; no fixed sleeps elsewhere.
async function until(what, probe, ms = WAIT, every = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await delay(every);
  }
}

function portOpen(port) {
  return new Promise((ok) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); ok(true); });
    socket.once('error', () => ok(false));
  });
}

// ---- the simulator's control API (its plain-HTTP listener, same routes and state) ---------

async function sim(path, body) {
  const res = await fetch(`http://127.0.0.1:${ports.simHttp}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`simulator ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

// ---- a static server for dist/ -------------------------------------------------------------

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.map': 'application/json', '.txt': 'text/plain; charset=utf-8' };

async function serveDist() {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = normalize(join(dist, path === '/' ? 'index.html' : path));
    if (req.method !== 'GET' || !file.startsWith(dist + sep)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const data = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(data);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  closers.push(() => new Promise((ok) => server.close(ok)));
  return server.address().port;
}

// ---- the test ------------------------------------------------------------------------------

const ports = {};
let currentPage = null; // for a screenshot when something fails

async function main() {
  for (const [what, file] of [['agent', agentBin], ['simulator', simulatorBin], ['page', join(dist, 'index.html')], ['chromium', chromiumPath]]) {
    if (!existsSync(file)) throw new Error(`${what} not found at ${file} (build it first; see test/run)`);
  }
  mkdirSync(artifacts, { recursive: true });
  log(`work folder ${work}; artifacts in ${artifacts}`);

  // Test CA and server certificate for the simulator's HTTPS listener.
  execFileSync(join(repo, 'scripts', 'make-test-ca'), [join(work, 'pki')], { stdio: 'inherit' });

  // Mosquitto: a plain listener (agent, observer) and a WebSockets listener (the page), with
  // users: the agent, a TV that may read its account and ask for a sign-in, and an observer.
  ports.mqtt = await freePort();
  ports.ws = await freePort();
  const passwords = { agent: 'agent-secret', tv: 'tv-secret', observer: 'observer-secret' };
  const passwd = join(work, 'passwd');
  writeFileSync(passwd, '');
  for (const [user, password] of Object.entries(passwords)) {
    execFileSync(sbin('mosquitto_passwd'), ['-b', passwd, user, password], { stdio: 'inherit' });
  }
  writeFileSync(join(work, 'acl'), [
    'user agent', `topic readwrite ${BASE}/#`, '',
    'user tv', `topic read ${BASE}/bridge/state`, `topic read ${BASE}/+/auth/#`, `topic read ${BASE}/+/graph/#`,
    `topic read ${BASE}/bridge/response/login`, `topic write ${BASE}/bridge/request/login`, '',
    'user observer', `topic read ${BASE}/#`, '',
  ].join('\n'));
  const conf = [
    'persistence false',
    'log_dest stderr',
    'log_type all',
    ...(process.getuid && process.getuid() === 0 ? ['user root'] : []),
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${passwd}`,
    `acl_file ${join(work, 'acl')}`,
    `listener ${ports.mqtt} 127.0.0.1`,
    `listener ${ports.ws} 127.0.0.1`,
    'protocol websockets',
    '',
  ].join('\n');
  writeFileSync(join(work, 'mosquitto.conf'), conf);
  let brokerRuns = 0;
  const startBroker = async () => {
    brokerRuns += 1;
    const name = brokerRuns === 1 ? 'mosquitto' : `mosquitto-${brokerRuns}`;
    const broker = start(name, [sbin('mosquitto'), '-c', join(work, 'mosquitto.conf')]);
    await until('Mosquitto to listen', async () => !broker.exit && (await portOpen(ports.mqtt)) && (await portOpen(ports.ws)), 10000);
    return broker;
  };
  let broker = await startBroker();
  log(`mosquitto on ${ports.mqtt} (mqtt) and ${ports.ws} (websockets)`);

  // The simulated identity platform and Graph, with a 1 s polling interval to keep this quick.
  const portFile = join(work, 'ports.json');
  const simulator = start('simulator', [simulatorBin, '--port-file', portFile,
    '--cert', join(work, 'pki', 'server.pem'), '--key', join(work, 'pki', 'server.key'),
    '--verification-uri', 'self', '--interval', '1', '--log']);
  const simPorts = await until('the simulator port file', () => {
    if (simulator.exit) throw new Error(`the simulator exited: ${JSON.stringify(simulator.exit)}`);
    return existsSync(portFile) ? JSON.parse(readFileSync(portFile, 'utf8')) : null;
  }, 10000);
  ports.simHttps = simPorts.https;
  ports.simHttp = simPorts.http;
  await sim('/_sim/config', { events: 5, presence: { availability: 'Busy', activity: 'InAMeeting' } });
  log(`simulator on https ${ports.simHttps}, http ${ports.simHttp}`);

  // The agent, one account with presence, profile and calendar resources.
  writeFileSync(join(work, 'agent.secret'), `${passwords.agent}\n`, { mode: 0o600 });
  writeFileSync(join(work, 'config.yaml'), `mqtt:
  server: mqtt://127.0.0.1:${ports.mqtt}
  base_topic: ${BASE}
  client_id: graph2mqtt-display-e2e
  username: agent
  password_file: ${join(work, 'agent.secret')}
identity:
  # The simulator's plain-HTTP port: its --verification-uri self page is http://, which the agent
  # accepts only from a loopback http:// authority (CONTRACT §6 Untrusted input).
  authority: http://127.0.0.1:${ports.simHttp}
  graph: https://127.0.0.1:${ports.simHttps}/v1.0
  ca: ${join(work, 'pki', 'ca.pem')}
storage:
  dir: ${join(work, 'tokens')}
log:
  level: debug
accounts:
  ${ACCOUNT}:
    client_id: 11111111-2222-3333-4444-555555555555
    scopes: [User.Read, Presence.Read, Calendars.Read]
    resources:
      presence: { path: /me/presence, every: 5s }
      me: { path: "/me?$select=displayName,mail", every: 1h }
      today: { path: "/me/calendarView?startDateTime={now-1h}&endDateTime={now+12h}", every: 5m }
`);
  const agent = start('agent', [agentBin, '--config', join(work, 'config.yaml')]);

  // An observer on the plain listener: what the agent really published.
  const seen = {};
  const observer = mqtt.connect(`mqtt://127.0.0.1:${ports.mqtt}`, {
    protocolVersion: 5, username: 'observer', password: passwords.observer, reconnectPeriod: 500,
  });
  closers.push(() => new Promise((ok) => observer.end(true, {}, ok)));
  const trace = [];
  observer.on('message', (topic, payload, packet) => {
    seen[topic] = payload.length ? JSON.parse(payload.toString()) : null;
    const props = packet.properties && Object.keys(packet.properties).length ? ` ${JSON.stringify(packet.properties)}` : '';
    trace.push(`${new Date().toISOString()} ${packet.retain ? 'R' : '-'} ${topic}${props} ${payload.toString().slice(0, 300)}`);
  });
  closers.push(() => writeFileSync(join(artifacts, 'mqtt-trace.txt'), trace.join('\n') + '\n'));
  await until('the observer to connect', () => observer.connected, 10000);
  await observer.subscribeAsync(`${BASE}/#`, { qos: 1 });
  await until('the agent online', () => seen[`${BASE}/bridge/state`]?.state === 'online');
  await until('auth/state signed_out', () => seen[`${BASE}/${ACCOUNT}/auth/state`]?.state === 'signed_out');
  log('agent online, account signed out');

  // The terminal display (scripts/display), beside the page; its output is checked at the end.
  const terminal = start('terminal-display', [join(repo, 'scripts', 'display'), ACCOUNT, '--port', String(ports.mqtt),
    '--base', BASE, '--user', 'observer', '--password', passwords.observer]);

  // The page, in headless Chromium at TV size.
  const httpPort = await serveDist();
  const profile = mkdtempSync(join(tmpdir(), 'g2m-display-chromium.'));
  closers.push(() => rmSync(profile, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1920, height: 1080 },
    timezoneId: 'UTC',
    locale: 'en-GB',
  });
  closers.unshift(() => context.close());
  const page = context.pages()[0] || (await context.newPage());
  currentPage = page;
  const consoleLines = [];
  const pageErrors = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.setDefaultTimeout(WAIT);

  const query = new URLSearchParams({ account: ACCOUNT, base: BASE, broker: `ws://127.0.0.1:${ports.ws}`,
    username: 'tv', password: passwords.tv });
  const url = `http://127.0.0.1:${httpPort}/?${query}`;
  log(`opening ${url.replace(passwords.tv, '***')}`);
  await page.goto(url);

  // Signed out, agent online: the "Sign in" button.
  await page.locator('#agent-status', { hasText: 'Agent online' }).waitFor();
  await page.locator('#signed-out').waitFor({ state: 'visible' });
  await page.locator('#sign-in:enabled').waitFor();
  check((await page.locator('#signed-out-reason').innerText()).length > 0, 'signed-out screen with a reason');
  await page.screenshot({ path: join(artifacts, '0-signed-out.png') });

  // Press it: the page publishes the login request over MQTT.
  await page.click('#sign-in');
  const code = await until('auth/code on MQTT', () => seen[`${BASE}/${ACCOUNT}/auth/code`]);
  log(`code on MQTT: ${code.user_code} at ${code.verification_uri}`);
  const reply = await until('the login reply', () => seen[`${BASE}/bridge/response/login`]);
  check(reply.status === 'ok' && typeof reply.transaction === 'string' && reply.transaction.startsWith('display-'),
    'the agent answered the page\'s login request with ok');

  // The code on the page is the one on MQTT.
  await page.locator(`#user-code[data-code="${code.user_code}"]`).waitFor();
  const shown = (await page.locator('#user-code').innerText()).replace(/\s+/g, '');
  check(shown === code.user_code, `the page shows the code ${code.user_code} (shown: ${shown})`);
  const urlShown = await page.locator('#code-url').innerText();
  check(code.verification_uri.includes(urlShown) && urlShown.length > 10, `the page shows the URL (${urlShown})`);
  const countdown = await page.locator('#code-countdown').innerText();
  const m = countdown.match(/expires in (\d+):(\d\d)/);
  check(m && Number(m[1]) * 60 + Number(m[2]) > 800 && Number(m[1]) * 60 + Number(m[2]) <= 900,
    `a countdown near 15 minutes (${countdown})`);
  // MQTT 5: the agent puts a message-expiry interval on auth/code, which the page prefers to
  // expires_at because it does not depend on the TV's clock. Noted, not required.
  log(`the countdown follows: ${await page.locator('#code-countdown').getAttribute('data-source')}`);
  await page.screenshot({ path: join(artifacts, '1-code.png') });

  // The QR code scans to the URL.
  const qrPng = PNG.sync.read(await page.locator('#qr').screenshot({ path: join(artifacts, '1-qr.png') }));
  const decoded = jsQR(new Uint8ClampedArray(qrPng.data), qrPng.width, qrPng.height);
  const expectedQr = code.verification_uri_complete || code.verification_uri;
  check(decoded && decoded.data === expectedQr, `the QR code decodes to ${expectedQr} (got ${decoded && decoded.data})`);

  // Approve it as the simulator's default user; the page signs in.
  await sim('/_sim/approve', { user_code: code.user_code });
  log('approved through the simulator');
  await page.locator('#signed-in-text', { hasText: 'Adele Vance' }).waitFor();
  const signedIn = (await page.locator('#signed-in').innerText()).replace(/\s+/g, ' ');
  check(/Signed in as Adele Vance/i.test(signedIn), 'the page says "Signed in as Adele Vance"');
  check(!(await page.locator('#user-code').isVisible()), 'the code is gone');
  await page.locator('#presence[data-availability="Busy"]').waitFor();
  check((await page.locator('#presence').getAttribute('data-colour')) === 'red', 'presence Busy with a red dot');
  check((await page.locator('#presence-activity').innerText()) === 'In a meeting', 'the activity "In a meeting"');
  await page.locator('#meeting-list li', { hasText: 'Simulated meeting' }).first().waitFor();
  const meetings = await page.locator('#meeting-list li').allInnerTexts();
  check(meetings.length >= 2 && /Now/.test(meetings[0]), `next meetings shown, the current one first (${meetings.length})`);
  // Wait for the dot's colour to be painted before the screenshot.
  await page.waitForFunction(() => getComputedStyle(document.querySelector('#presence .dot')).backgroundColor !== 'rgb(138, 150, 163)');
  await page.screenshot({ path: join(artifacts, '2-signed-in.png') });

  // Presence changes are followed (the resource is fetched every 5 s).
  await sim('/_sim/config', { presence: { availability: 'Away', activity: 'Away' } });
  await page.locator('#presence[data-availability="Away"][data-colour="yellow"]').waitFor({ timeout: 20000 });
  check((await page.locator('#presence-label').innerText()) === 'Away', 'presence follows Graph: Away, yellow');

  // The broker restarts with nothing retained (persistence false): the page says it lost the
  // broker, reconnects, and the agent re-publishes its retained topics.
  await stop(broker);
  await page.locator('#banner', { hasText: 'No connection to the broker' }).waitFor();
  log('broker stopped: the page says so');
  broker = await startBroker();
  await page.locator('#banner').waitFor({ state: 'hidden' });
  await page.locator('#signed-in-text', { hasText: 'Adele Vance' }).waitFor();
  await page.locator('#presence[data-availability="Away"]').waitFor();
  check((await page.locator('#agent-status').innerText()) === 'Agent online', 'after a broker restart the page shows the signed-in state again');

  // The agent stops: bridge/state offline, the page says so.
  const exit = await stop(agent);
  check(exit.code === 0, `the agent stopped cleanly (${JSON.stringify(exit)})`);
  await page.locator('#banner', { hasText: 'Agent offline' }).waitFor();
  check((await page.locator('#agent-status').innerText()) === 'Agent offline', 'the page says "Agent offline"');
  await page.screenshot({ path: join(artifacts, '3-agent-offline.png') });

  // The terminal display saw the same: one line per change (its output is not a terminal).
  await until('scripts/display to show the agent offline', () => /\[agent offline\]/.test(readFileSync(terminal.logFile, 'utf8')));
  await stop(terminal);
  const termText = readFileSync(terminal.logFile, 'utf8');
  writeFileSync(join(artifacts, 'terminal-display.txt'), termText);
  check(termText.includes(`code: ${code.user_code} at ${code.verification_uri}`), 'scripts/display showed the code');
  check(/signed in as Adele Vance; presence: Busy \(in a meeting\)/.test(termText), 'scripts/display showed the sign-in and the presence');
  check(/\[agent offline\]/.test(termText), 'scripts/display showed the agent offline');

  check(pageErrors.length === 0, `no script errors on the page ${pageErrors.length ? JSON.stringify(pageErrors) : ''}`);
  writeFileSync(join(artifacts, 'console.log'), consoleLines.join('\n') + '\n');
  const counters = await sim('/_sim/counters');
  writeFileSync(join(artifacts, 'simulator-counters.json'), JSON.stringify(counters, null, 2));
  log(`simulator: ${counters.interval_violations} interval violations, ${counters.slow_down_sent} slow_down`);
}

async function cleanup() {
  for (const close of closers) {
    try { await close(); } catch { /* already closed */ }
    if (process.env.G2M_E2E_DEBUG) log('closed one');
  }
  for (const entry of [...processes].reverse()) {
    const exit = await stop(entry);
    if (process.env.G2M_E2E_DEBUG) log(`${entry.name} stopped: ${JSON.stringify(exit)}`);
  }
  if (failed) {
    for (const entry of processes) {
      const text = existsSync(entry.logFile) ? readFileSync(entry.logFile, 'utf8') : '';
      const lines = text.trimEnd().split('\n').slice(-40).join('\n');
      console.log(`---- ${entry.name} (last 40 lines of ${entry.logFile}) ----\n${lines}`);
      writeFileSync(join(artifacts, `${entry.name}.log`), text);
    }
  }
  if (process.env.G2M_E2E_KEEP === '1' || failed) log(`work folder kept: ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

// A watchdog: the whole test never takes more than 3 minutes.
const watchdog = setTimeout(async () => {
  console.error('e2e: FAILED: the whole test took more than 180 s');
  failed = true;
  for (const entry of processes) if (!entry.exit) entry.child.kill('SIGKILL');
  await Promise.race([cleanup(), delay(10000)]);
  console.log('0 passed, 1 failed');
  process.exit(1);
}, 180000);

try {
  await main();
  log('PASSED');
} catch (err) {
  failed = true;
  console.error(`e2e: FAILED: ${err.stack || err}`);
  try {
    // The page as it was when it failed, if there is one.
    if (currentPage) await currentPage.screenshot({ path: join(artifacts, 'failure.png') });
  } catch { /* no page */ }
}
await cleanup();
clearTimeout(watchdog);
console.log(failed ? '0 passed, 1 failed' : '1 passed, 0 failed');
process.exit(failed ? 1 : 0);

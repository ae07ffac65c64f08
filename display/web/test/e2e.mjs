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
const consoleLinesRef = [];
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
  const passwords = { agent: 'agent-secret', tv: 'tv-secret', observer: 'observer-secret', display: 'display-secret' };
  const passwd = join(work, 'passwd');
  writeFileSync(passwd, '');
  for (const [user, password] of Object.entries(passwords)) {
    execFileSync(sbin('mosquitto_passwd'), ['-b', passwd, user, password], { stdio: 'inherit' });
  }
  writeFileSync(join(work, 'acl'), [
    'user agent', `topic readwrite ${BASE}/#`, '',
    'user tv', `topic read ${BASE}/bridge/state`, `topic read ${BASE}/+/auth/#`, `topic read ${BASE}/+/graph/#`,
    `topic read ${BASE}/bridge/response/login`, `topic write ${BASE}/bridge/request/login`,
    `topic read ${BASE}/bridge/response/complete`, `topic write ${BASE}/bridge/request/complete`, '',
    'user observer', `topic read ${BASE}/#`, '',
    // A read-only screen (as config/mosquitto.acl's display user): it may not send complete.
    'user display', `topic read ${BASE}/bridge/state`, `topic read ${BASE}/+/auth/#`, `topic read ${BASE}/+/graph/#`, '',
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
    reducedMotion: 'reduce', // the countdown bar is where it belongs in every screenshot
  });
  closers.unshift(() => context.close());
  const page = context.pages()[0] || (await context.newPage());
  currentPage = page;
  const consoleLines = consoleLinesRef;
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

  await synthetic({ page, httpPort, passwords });

  check(pageErrors.length === 0, `no script errors on the page ${pageErrors.length ? JSON.stringify(pageErrors) : ''}`);
  writeFileSync(join(artifacts, 'console.log'), consoleLines.join('\n') + '\n');
  const counters = await sim('/_sim/counters');
  writeFileSync(join(artifacts, 'simulator-counters.json'), JSON.stringify(counters, null, 2));
  log(`simulator: ${counters.interval_violations} interval violations, ${counters.slow_down_sent} slow_down`);
}

// ---- the browser sign-in, the layouts and the refusals -----------------------------------
// The agent stopped; the test now publishes what an agent would, in the contract's shapes
// (retained auth/code and auth/state, replies to `complete`), for an account "hall", and
// answers the page's requests itself. Each layout is checked at three screen sizes.

const SIZES = [
  { name: 'landscape', width: 1920, height: 1080 },
  { name: 'portrait', width: 1080, height: 1920 },
  { name: 'small', width: 800, height: 480 },
];
const HALL = 'hall';
const b64url = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + seed) % 256)).toString('base64url');
const STATE = b64url(32, 11);
const SIGN_IN_URL = 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize' +
  '?client_id=11111111-2222-3333-4444-555555555555&response_type=code' +
  '&redirect_uri=https%3A%2F%2Flogin.microsoftonline.com%2Fcommon%2Foauth2%2Fnativeclient' +
  '&response_mode=query&scope=offline_access%20openid%20profile%20User.Read%20Presence.Read%20Calendars.Read' +
  `&state=${STATE}&code_challenge=${b64url(32, 5)}&code_challenge_method=S256`;
const iso = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

// The boxes of these elements must not intersect, and each must lie inside the viewport.
const BOXES = {
  device_code: ['#code .title', '#code-url', '#user-code', '#code .countdown', '#qr', '#qr-caption'],
  browser: ['#code .title', '#browser-steps > li:nth-child(1)', '#browser-steps > li:nth-child(2)',
    '#browser-steps > li:nth-child(3)', '#code .countdown', '#qr', '#qr-caption'],
};

async function checkLayout(page, size, method) {
  const boxes = [];
  for (const selector of BOXES[method]) {
    const box = await page.locator(selector).boundingBox();
    if (!box) throw new Error(`${selector} is not shown (${method}, ${size.name})`);
    boxes.push({ selector, ...box });
  }
  const inside = boxes.filter((b) => b.x >= 0 && b.y >= 0 && b.x + b.width <= size.width + 0.5 && b.y + b.height <= size.height + 0.5);
  check(inside.length === boxes.length,
    `${method} at ${size.width}x${size.height}: every box inside the screen ${inside.length === boxes.length ? '' : JSON.stringify(boxes.filter((b) => !inside.includes(b)))}`);
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
      const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
      if (w > 0.5 && h > 0.5) overlaps.push(`${a.selector} / ${b.selector}`);
    }
  }
  check(overlaps.length === 0, `${method} at ${size.width}x${size.height}: no two boxes overlap ${overlaps.join(', ')}`);
  // Nothing is cut off inside its box either (a code too wide for its line, a URL too long).
  const clipped = await page.evaluate((selectors) => selectors.filter((s) => {
    const el = document.querySelector(s);
    return el.scrollWidth > el.clientWidth + 1;
  }), BOXES[method]);
  check(clipped.length === 0, `${method} at ${size.width}x${size.height}: no box overflows ${clipped.join(', ')}`);
}

async function decodeQr(page, file) {
  const png = PNG.sync.read(await page.locator('#qr').screenshot({ path: file }));
  const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  return decoded ? decoded.data : null;
}

async function synthetic({ page, httpPort, passwords }) {
  const fake = mqtt.connect(`mqtt://127.0.0.1:${ports.mqtt}`, {
    protocolVersion: 5, username: 'agent', password: passwords.agent, reconnectPeriod: 500,
  });
  closers.unshift(() => new Promise((ok) => fake.end(true, {}, ok)));
  await until('the fake agent to connect', () => fake.connected, 10000);
  const requests = { complete: [], login: [] };
  fake.on('message', (topic, payload, packet) => {
    const action = topic.slice(`${BASE}/bridge/request/`.length);
    if (requests[action]) requests[action].push({ body: JSON.parse(payload.toString()), retain: packet.retain });
  });
  await fake.subscribeAsync(`${BASE}/bridge/request/+`, { qos: 1 });
  const pub = (topic, body, options = {}) => fake.publishAsync(`${BASE}/${topic}`, body === null ? '' : JSON.stringify(body), { qos: 1, ...options });
  const retain = (topic, body, expiry) => pub(topic, body, { retain: true, ...(expiry ? { properties: { messageExpiryInterval: expiry } } : {}) });
  await retain('bridge/state', { state: 'online' });
  const signedOut = (reason, error = null) => ({ state: 'signed_out', since: iso(Date.now()), user: null, expires_at: null,
    scopes: [], reason, code: null, error });

  const deviceCode = () => ({ method: 'device_code', user_code: 'E4AAFX9VN', verification_uri: 'https://microsoft.com/devicelogin',
    verification_uri_complete: null, sign_in_url: null,
    message: 'To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code E4AAFX9VN to authenticate.',
    expires_at: iso(Date.now() + 900000), interval: 5 });
  const browserCode = () => ({ method: 'browser', user_code: null, verification_uri: null, verification_uri_complete: null,
    sign_in_url: SIGN_IN_URL, message: `To sign in, open ${SIGN_IN_URL} and paste the address your browser ends at.`,
    expires_at: iso(Date.now() + 900000), interval: null });
  const pending = async (code) => {
    await retain(`${HALL}/auth/code`, code, 900);
    await retain(`${HALL}/auth/state`, { state: 'pending', since: iso(Date.now()), user: null, expires_at: code.expires_at,
      scopes: [], reason: null, code, error: null }, 900);
  };

  const terminal = start('terminal-display-hall', [join(repo, 'scripts', 'display'), HALL, '--port', String(ports.mqtt),
    '--base', BASE, '--user', 'observer', '--password', passwords.observer]);
  const termSays = (what, re) => until(`scripts/display to show ${what}`, () => re.test(readFileSync(terminal.logFile, 'utf8')));

  const query = new URLSearchParams({ account: HALL, base: BASE, broker: `ws://127.0.0.1:${ports.ws}`, username: 'tv', password: passwords.tv });
  await page.goto(`http://127.0.0.1:${httpPort}/?${query}`);
  await page.locator('#agent-status', { hasText: 'Agent online' }).waitFor();

  // A device code and a browser sign-in at each size: nothing overlaps, the QR code scans.
  for (const [method, code] of [['device_code', deviceCode()], ['browser', browserCode()]]) {
    await pending(code);
    await page.locator(`#code[data-method="${method}"]`).waitFor({ state: 'visible' });
    const expected = method === 'browser' ? SIGN_IN_URL : code.verification_uri;
    for (const size of SIZES) {
      await page.setViewportSize({ width: size.width, height: size.height });
      await page.waitForFunction(([w, h]) => innerWidth === w && innerHeight === h, [size.width, size.height]);
      await page.locator(`#qr[data-text="${expected}"]`).waitFor();
      await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));
      await checkLayout(page, size, method);
      const shot = join(artifacts, `4-${method}-${size.name}.png`);
      await page.screenshot({ path: shot });
      const decoded = await decodeQr(page, join(artifacts, `4-${method}-${size.name}-qr.png`));
      check(decoded === expected, `${method} at ${size.width}x${size.height}: the QR code decodes to ${expected.length > 60 ? `the ${expected.length}-character sign_in_url` : expected} (got ${decoded && decoded.slice(0, 80)})`);
      if (method === 'device_code') {
        // The URL breaks only between its pieces (after / or .), never inside a word.
        const broken = await page.evaluate(() => [...document.querySelectorAll('#code-url')].flatMap((el) => [...el.childNodes]
          .filter((n) => n.nodeType === 3).filter((n) => {
            const r = document.createRange();
            r.selectNodeContents(n);
            return new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size > 1;
          }).map((n) => n.textContent)));
        check(broken.length === 0, `the URL wraps only at / and . at ${size.width}x${size.height} ${broken.join(' ')}`);
        check((await page.locator('#user-code').innerText()).replace(/\s+/g, '') === 'E4AAFX9VN', `the code is whole at ${size.width}x${size.height}`);
      }
    }
    if (method === 'device_code') {
      // Another provider's long code (up to 32 characters): scaled down to fit, still whole.
      const long = { ...code, user_code: 'WDJB-MJHT-ABCD-EFGH-JKLM-NPQR-ST', expires_at: iso(Date.now() + 900000) };
      await pending(long);
      await page.locator(`#user-code[data-code="${long.user_code}"]`).waitFor();
      await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));
      await checkLayout(page, SIZES[2], method);
      check((await page.locator('#user-code').innerText()) === long.user_code, 'a 32-character code is shown whole at 800x480');
    }
    await page.setViewportSize({ width: 1920, height: 1080 });
    if (method === 'device_code') {
      await termSays('the device code', /code: E4AAFX9VN at https:\/\/microsoft\.com\/devicelogin/);
    }
  }

  // The browser sign-in: the terminal display shows the address and how to finish.
  await termSays('the browser sign-in', /sign in with a browser: open https:\/\/login\.microsoftonline\.com\//);
  const termText = readFileSync(terminal.logFile, 'utf8');
  check(termText.includes(SIGN_IN_URL), 'scripts/display shows the whole sign_in_url');
  check(termText.includes(`mosquitto_pub -h 127.0.0.1 -p ${ports.mqtt} -t ${BASE}/bridge/request/complete -m '{"account":"${HALL}","url":"<the address>"}'`)
    && termText.includes(`graph2mqtt login ${HALL} --browser`), 'scripts/display says how to finish: complete, or graph2mqtt login --browser');
  // On a terminal (script(1) gives it one) it draws a QR code of the sign_in_url with qrencode.
  if (existsSync('/usr/bin/qrencode') && existsSync('/usr/bin/script')) {
    const sh = (w) => `'${String(w).replace(/'/g, "'\\''")}'`;
    const cmd = [join(repo, 'scripts', 'display'), HALL, '--port', ports.mqtt, '--base', BASE, '--user', 'observer', '--password', passwords.observer].map(sh).join(' ');
    const expectedLines = execFileSync('/usr/bin/qrencode', ['-t', 'ansiutf8', '-m', '2', '--', SIGN_IN_URL]).toString().split('\n').filter((l) => /[▀▄█]{10}/.test(l));
    const tty = start('terminal-display-tty', ['/usr/bin/script', '-qfec', cmd, '/dev/null']);
    const drawn = () => {
      const text = readFileSync(tty.logFile, 'utf8');
      return text.includes(SIGN_IN_URL) && text.includes('scan the QR code below') && expectedLines.every((l) => text.includes(l));
    };
    try {
      await until('scripts/display on a terminal to draw the QR code', drawn);
    } catch { /* the check below says what was missing */ }
    await stop(tty);
    writeFileSync(join(artifacts, 'terminal-display-tty.txt'), readFileSync(tty.logFile, 'utf8'));
    check(expectedLines.length > 20 && drawn(), `scripts/display on a terminal draws qrencode's QR code of the sign_in_url (${expectedLines.length} lines)`);
  } else {
    log('qrencode or script(1) is not installed: the terminal QR code is not checked');
  }

  // The paste field: a wrong address (the agent refuses it), not an address at all (the page
  // refuses it and sends nothing), then the right one (signed in).
  await page.locator('#complete-url').waitFor({ state: 'visible' });
  check(await page.locator('#complete').evaluate((d) => d.open), 'the paste field is open on a screen with a pointer');
  const wrongUrl = 'https://login.microsoftonline.com/common/oauth2/nativeclient?code=0.AWrong-code&state=not-this-sign-in';
  const rightUrl = `https://login.microsoftonline.com/common/oauth2/nativeclient?code=0.ARight-code_xyz&state=${STATE}&session_state=1234`;
  const refusal = 'This address is not from the sign-in that is waiting (its state does not match): sign in again from the QR code.';
  let answer = (req) => ({ status: 'error', error: refusal, transaction: req.transaction });
  fake.on('message', async (topic, payload) => {
    if (topic !== `${BASE}/bridge/request/complete`) return;
    const req = JSON.parse(payload.toString());
    const reply = answer(req);
    await pub('bridge/response/complete', reply);
    if (reply.status === 'ok') {
      await retain(`${HALL}/auth/code`, null);
      await retain(`${HALL}/auth/state`, { state: 'signed_in', since: iso(Date.now()), user: { name: 'Megan Bowen', username: 'megan@contoso.com' },
        expires_at: iso(Date.now() + 3600000), scopes: ['User.Read'], reason: null, code: null, error: null });
    }
  });
  // A screen whose broker user may not publish complete: the page says so, nothing reaches the
  // agent. With controls=0 there is no field at all.
  const readOnly = await page.context().newPage();
  await readOnly.goto(`http://127.0.0.1:${httpPort}/?${new URLSearchParams({ account: HALL, base: BASE,
    broker: `ws://127.0.0.1:${ports.ws}`, username: 'display', password: passwords.display })}`);
  await readOnly.locator('#complete-url').waitFor({ state: 'visible' });
  await readOnly.fill('#complete-url', wrongUrl);
  await readOnly.click('#complete-send');
  await readOnly.locator('#complete-status[data-status="error"]').waitFor();
  check(/may not finish a sign-in/.test(await readOnly.locator('#complete-status').innerText()),
    `a display user without write rights on request/complete is told so (${await readOnly.locator('#complete-status').innerText()})`);
  // A TV (no keyboard, no pointer): the field is there, collapsed, one click away.
  await readOnly.addInitScript(() => {
    const real = window.matchMedia.bind(window);
    window.matchMedia = (q) => (/pointer|hover/.test(q) ? { matches: false, media: q, addEventListener() {}, removeEventListener() {} } : real(q));
  });
  await readOnly.reload();
  await readOnly.locator('#complete summary').waitFor({ state: 'visible' });
  check(!(await readOnly.locator('#complete').evaluate((d) => d.open)) && !(await readOnly.locator('#complete-url').isVisible()),
    'on a screen without keyboard or pointer the paste field is collapsed');
  await readOnly.click('#complete summary');
  await readOnly.locator('#complete-url').waitFor({ state: 'visible' });
  log('... and opens with one click');
  await readOnly.goto(`http://127.0.0.1:${httpPort}/?${new URLSearchParams({ account: HALL, base: BASE,
    broker: `ws://127.0.0.1:${ports.ws}`, username: 'display', password: passwords.display, controls: '0' })}`);
  await readOnly.locator('#complete-readonly').waitFor({ state: 'visible' });
  check(!(await readOnly.locator('#complete').isVisible()), 'controls=0: no paste field, a line that says where the address goes');
  await readOnly.close();
  check(requests.complete.length === 0, 'the refused publish never reached the agent');

  await page.fill('#complete-url', wrongUrl);
  await page.click('#complete-send');
  await page.locator('#complete-status[data-status="error"]', { hasText: 'state does not match' }).waitFor();
  check((await page.locator('#complete-status').innerText()) === refusal, 'the agent\'s refusal is shown under the paste field');
  await page.screenshot({ path: join(artifacts, '5-browser-refused.png') });
  await page.fill('#complete-url', 'hello');
  await page.click('#complete-send');
  await page.locator('#complete-status[data-status="error"]', { hasText: 'no "code="' }).waitFor();
  answer = (req) => ({ status: 'ok', data: { state: 'signed_in' }, transaction: req.transaction });
  await page.fill('#complete-url', `  ${rightUrl}\n`);
  await page.press('#complete-url', 'Enter');
  await page.locator('#signed-in-text', { hasText: 'Megan Bowen' }).waitFor();
  check(requests.complete.length === 2, `the page sent two complete requests, not the one without a code (${requests.complete.length})`);
  const [first, second] = requests.complete;
  check(first.body.account === HALL && first.body.url === wrongUrl && !first.retain, 'complete carries the account and the pasted address, not retained');
  check(second.body.url === rightUrl && typeof second.body.transaction === 'string', 'the second complete carries the right address, trimmed');
  check(await page.locator('#signed-in-text').innerText() === 'Megan Bowen', 'after complete: "Signed in as Megan Bowen"');
  const consoleText = consoleLinesRef.join('\n');
  check(!consoleText.includes('ARight-code'), 'the pasted address is not in the page\'s console');

  // Why a sign-in ended: a tenant's policy, an unknown tenant, and the plain reasons.
  const policyError = { error: 'invalid_request',
    description: 'AADSTS530035: Access has been blocked by security defaults. Turn security defaults off, or use the browser sign-in.',
    policy: 'security_defaults' };
  await retain(`${HALL}/auth/state`, signedOut('blocked', policyError));
  await page.locator('#signed-out[data-policy="true"]').waitFor({ state: 'visible' });
  check(await page.locator('#signed-out-reason').innerText() ===
    'Your organisation blocks sign-in with a code — ask your administrator, or use the browser sign-in.', 'a policy refusal: the sentence');
  check((await page.locator('#signed-out-detail').innerText()).includes('AADSTS530035'), 'a policy refusal: the description in small print');
  for (const size of SIZES) {
    await page.setViewportSize({ width: size.width, height: size.height });
    await page.waitForFunction(([w, h]) => innerWidth === w && innerHeight === h, [size.width, size.height]);
    const boxes = await Promise.all(['#signed-out-reason', '#signed-out-detail', '#sign-in', '#sign-in-browser'].map((s) => page.locator(s).boundingBox()));
    check(boxes.every((b) => b && b.y >= 0 && b.y + b.height <= size.height && b.x >= 0 && b.x + b.width <= size.width),
      `the policy refusal fits ${size.width}x${size.height}`);
    await page.screenshot({ path: join(artifacts, `6-blocked-${size.name}.png`) });
  }
  await page.setViewportSize({ width: 1920, height: 1080 });
  await termSays('the policy sentence', /signed out: Your organisation blocks sign-in with a code/);
  await page.click('#sign-in-browser');
  const login = await until('a login request with method browser', () => requests.login.find((r) => r.body.method === 'browser' && r.body.account === HALL));
  log('the "Sign in with a browser" button asked for a browser sign-in');
  // As the agent would: the browser sign-in goes out, then the reply.
  await pending(browserCode());
  await pub('bridge/response/login', { status: 'ok', data: { state: 'pending' }, transaction: login.body.transaction });
  await page.locator('#code[data-method="browser"]').waitFor({ state: 'visible' });
  await retain(`${HALL}/auth/code`, null);

  await retain(`${HALL}/auth/state`, signedOut('error', { error: 'invalid_request',
    description: "AADSTS90002: Tenant 'contoso.example' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
    policy: null }));
  await page.locator('#signed-out-reason', { hasText: 'Unknown tenant' }).waitFor();
  check(await page.locator('#signed-out-reason').innerText() === "Unknown tenant 'contoso.example'.", 'an unknown tenant: "Unknown tenant \'contoso.example\'."');
  check(!(await page.locator('#sign-in-browser').isVisible()), 'no browser button when the policy is not the cause');
  await page.screenshot({ path: join(artifacts, '6-unknown-tenant.png') });
  await termSays('the unknown tenant', /signed out: Unknown tenant 'contoso\.example'/);

  for (const [reason, text] of [['declined', 'The sign-in was declined.'], ['code_expired', 'The sign-in expired before anyone finished it.'],
    ['cancelled', 'The sign-in was cancelled.'], ['logout', 'Signed out.'], ['shutdown', 'The sign-in stopped when the agent shut down.']]) {
    await retain(`${HALL}/auth/state`, signedOut(reason));
    await page.locator('#signed-out-reason', { hasText: text }).waitFor();
  }
  log('declined, code_expired, cancelled, logout and shutdown each have their line');
  await stop(terminal);
  writeFileSync(join(artifacts, 'terminal-display-hall.txt'), readFileSync(terminal.logFile, 'utf8'));
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

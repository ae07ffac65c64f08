// scripts/bench's peer: the same N device-code sign-ins with @azure/msal-node (pinned in
// package-lock.json) against g2m-simulator — one PublicClientApplication, N concurrent
// acquireTokenByDeviceCode calls, then one Graph GET of /me/presence each. Writes one JSON object
// to --out with the same figures as bench/driver.mjs.
//
//   NODE_EXTRA_CA_CERTS=ca.pem node bench/peer/peer.mjs --https-port P --sim-http P --n N
//       --interval I --approve-after A --out FILE [--as-is] [--connections K] [--timeout SECONDS]
//       [--rtt MS] [--http 1.1|2] [--front-log FILE]
//
// --https-port is whatever the bench put in front of the simulator (the delay relay, nghttpx):
// msal-node connects there as it would to login.microsoftonline.com. --rtt and --http are only
// recorded; --front-log is nghttpx's access log, for the client's connections and protocols.
//
// By default Node's fetch, which msal-node uses, opens one connection per concurrent request.
// --connections K makes the app cap it at K per origin (undici's Agent as Node's global
// dispatcher), as graph2mqtt caps its own at 4.
//
// msal-node sends its first token poll at once, without waiting `interval` (DeviceCodeClient
// polls, then sleeps). RFC 8628 §3.5 and the simulator count that as a violation and answer
// slow_down, which msal-node does not handle: it throws, and the sign-in fails. So unless --as-is
// is given, a thin wrapper around msal-node's own network client holds each code's first poll until
// one interval after the code arrived, and counts how many it held. Nothing else is changed: the
// requests are msal-node's, sent by its own HttpClient (Node's fetch).
//
// msal-node (msal-common) sends `grant_type=device_code`, an alias of RFC 8628's
// `urn:ietf:params:oauth:grant-type:device_code` that Entra accepts; so does the simulator, so
// the request goes as msal-node wrote it (the wrapper only counts these).
//
// Nothing may leave loopback: every outgoing TCP connection and DNS lookup of this process is
// checked, and one to another address is refused and reported.
import dns from 'node:dns';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import {
  controlConnections, cpuSeconds, frontFigures, machine, memoryKiB, parseArgs, pollLateness, simRequest,
  simulatorFigures, sleep, summary,
} from '../lib.mjs';

// --- loopback guard (installed before msal-node is loaded) ----------------------------------------

const outside = [];
let socketsOpened = 0;
const isLoopback = (host) => host === undefined || host === 'localhost' || host === '::1'
  || /^127\.\d+\.\d+\.\d+$/.test(host) || /^::ffff:127\./.test(host);
const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  // net.createConnection passes the normalized [options, callback] array as the first argument.
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const opts = typeof first === 'object' && first !== null ? first : { port: first, host: args[1] };
  if (!opts.path) {
    socketsOpened += 1;
    if (!isLoopback(opts.host)) {
      outside.push(`${opts.host}:${opts.port}`);
      process.nextTick(() => this.destroy(new Error(`bench: refused a connection outside loopback to ${opts.host}:${opts.port}`)));
      return this;
    }
  }
  return originalConnect.apply(this, args);
};
const originalLookup = dns.lookup;
dns.lookup = function guardedLookup(host, ...rest) {
  if (!isLoopback(host)) outside.push(`dns:${host}`);
  return originalLookup.call(this, host, ...rest);
};

// msal-node's HttpClient calls the global fetch and drops the cause of a failure (undici's error
// code): count the causes here.
const fetchFailures = {};
const originalFetch = globalThis.fetch;
globalThis.fetch = async function countingFetch(...fetchArgs) {
  try {
    return await originalFetch(...fetchArgs);
  } catch (e) {
    const cause = e?.cause?.code || e?.cause?.name || e?.name;
    fetchFailures[cause] = (fetchFailures[cause] || 0) + 1;
    throw e;
  }
};

const { PublicClientApplication, LogLevel, version: msalVersion } = await import('@azure/msal-node');

const args = parseArgs(process.argv.slice(2));
const connections = args.connections ? Number(args.connections) : null;
if (connections) {
  const { Agent, setGlobalDispatcher } = await import('undici');
  setGlobalDispatcher(new Agent({ connections }));
}
const n = Number(args.n);
const interval = Number(args.interval);
const approveAfter = Number(args['approve-after']);
const port = Number(args['https-port']);
const simHttp = Number(args['sim-http']);
const asIs = Boolean(args['as-is']);
const timeoutSeconds = Number(args.timeout || Math.max(120, approveAfter + 60 + n * 1.0));
const rtt = Number(args.rtt || 0);
const httpVersion = String(args.http || '1.1');
const base = `https://127.0.0.1:${port}`;
const log = (...m) => process.stderr.write(`peer: ${m.join(' ')}\n`);

// The simulator's /common/v2.0/.well-known/openid-configuration, given to msal-node so that it
// never fetches metadata or runs instance discovery.
const metadata = {
  token_endpoint: `${base}/common/oauth2/v2.0/token`,
  device_authorization_endpoint: `${base}/common/oauth2/v2.0/devicecode`,
  authorization_endpoint: `${base}/common/oauth2/v2.0/authorize`,
  end_session_endpoint: `${base}/common/oauth2/v2.0/logout`,
  jwks_uri: `${base}/common/discovery/v2.0/keys`,
  issuer: `${base}/common/v2.0`,
  response_modes_supported: ['query', 'fragment', 'form_post'],
  scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
};

const pca = new PublicClientApplication({
  auth: {
    clientId: 'b3e0c0de-0000-4000-8000-0000000f33e1',
    authority: `${base}/common`,
    knownAuthorities: [`127.0.0.1:${port}`],
    authorityMetadata: JSON.stringify(metadata),
  },
  system: { loggerOptions: { logLevel: LogLevel.Error, piiLoggingEnabled: false, loggerCallback: (_l, m) => log(m) } },
});

// --- the wrapper around msal-node's own network client --------------------------------------------

const clientRequests = {};
const codeArrivedAt = new Map(); // device_code -> ms
const firstPollSeen = new Set();
const earlyFirstPoll = []; // ms after the code arrived at which msal-node sent its first poll
let held = 0;
let grantTypeAliasPolls = 0; // polls with grant_type=device_code
const inner = pca.config.system.networkClient;
pca.config.system.networkClient = {
  async sendGetRequestAsync(url, options, timeout) {
    const key = `GET ${new URL(url).pathname}`;
    clientRequests[key] = (clientRequests[key] || 0) + 1;
    return inner.sendGetRequestAsync(url, options, timeout);
  },
  async sendPostRequestAsync(url, options) {
    const path = new URL(url).pathname;
    clientRequests[`POST ${path}`] = (clientRequests[`POST ${path}`] || 0) + 1;
    const form = new URLSearchParams(options?.body || '');
    if (form.get('grant_type') === 'device_code') grantTypeAliasPolls += 1;
    const deviceCode = form.get('device_code');
    if (deviceCode && !firstPollSeen.has(deviceCode)) {
      firstPollSeen.add(deviceCode);
      const arrived = codeArrivedAt.get(deviceCode);
      if (arrived !== undefined) {
        const early = Date.now() - arrived;
        earlyFirstPoll.push(early);
        const wait = interval * 1000 - early;
        if (!asIs && wait > 0) {
          held += 1;
          await sleep(wait);
        }
      }
    }
    const response = await inner.sendPostRequestAsync(url, options);
    if (path.endsWith('/devicecode') && response?.body?.device_code) {
      codeArrivedAt.set(response.body.device_code, Date.now());
    }
    return response;
  },
};

// --- N sign-ins -----------------------------------------------------------------------------------

const flows = Array.from({ length: n }, () => ({ start: null, code: null, userCode: null, token: null, graph: null, error: null }));
let remaining = n;
let resolveAll;
const allDone = new Promise((r) => { resolveAll = r; });
const settle = () => { remaining -= 1; if (remaining === 0) resolveAll(true); };
const errors = {};

async function signIn(flow) {
  flow.start = Date.now();
  try {
    const result = await pca.acquireTokenByDeviceCode({
      scopes: ['User.Read', 'Presence.Read'],
      deviceCodeCallback: (r) => { flow.code = Date.now(); flow.userCode = r.userCode; },
    });
    flow.token = Date.now();
    const res = await fetch(`${base}/v1.0/me/presence`, { headers: { Authorization: `Bearer ${result.accessToken}` } });
    const body = await res.json();
    if (res.status !== 200 || !body.availability) throw new Error(`Graph answered ${res.status}`);
    flow.graph = Date.now();
  } catch (e) {
    flow.error = `${e.errorCode || e.name}${e.errorMessage ? `: ${e.errorMessage.split('\n')[0].slice(0, 120)}` : `: ${String(e.message).slice(0, 120)}`}`;
    errors[flow.error] = (errors[flow.error] || 0) + 1;
  }
  settle();
}

const simPid = args['sim-pid'] ? Number(args['sim-pid']) : null;
const simCpuBefore = simPid ? cpuSeconds(simPid).total : null;
const cpuBefore = cpuSeconds();
const machineAtStart = machine();
log(`msal-node ${msalVersion}: ${n} concurrent acquireTokenByDeviceCode${asIs ? ' (as is)' : ''}`
  + `${connections ? `, at most ${connections} connections` : ''}`);
const t0 = Date.now();
flows.forEach((f) => { signIn(f); });
const finished = await Promise.race([allDone, sleep(timeoutSeconds * 1000).then(() => false)]);
const tEnd = Date.now();
const cpuAfter = cpuSeconds();
const simCpuAfter = simPid ? cpuSeconds(simPid).total : null;
const clientSockets = socketsOpened;
const mem = memoryKiB();
if (!finished) log(`timed out after ${timeoutSeconds} s: ${remaining} of ${n} still running`);

const counters = await simRequest(simHttp, 'GET', '/_sim/counters');
const connectionsBeforeCodes = controlConnections;
const { codes } = await simRequest(simHttp, 'GET', '/_sim/codes');
const byUserCode = new Map(codes.map((c) => [c.user_code, c]));
const done = flows.filter((f) => f.graph !== null);
const approvalToToken = [];
const nominal = [];
for (const f of flows) {
  const c = f.userCode ? byUserCode.get(f.userCode) : undefined;
  if (c && f.token !== null) {
    if (c.approved_at_ms !== null) approvalToToken.push(f.token - c.approved_at_ms);
    nominal.push(f.token - (c.issued_at_ms + approveAfter * 1000));
  }
}
const stillRunning = flows.filter((f) => f.graph === null && f.error === null);
if (stillRunning.length) {
  const stage = (f) => (f.code === null ? 'waiting for a device code' : f.token === null ? 'polling' : 'waiting for Graph');
  for (const f of stillRunning) errors[`still ${stage(f)} at the deadline`] = (errors[`still ${stage(f)} at the deadline`] || 0) + 1;
}

const notes = [];
if (connections) notes.push(`Node's fetch was capped at ${connections} connections per origin (--peer-connections)`);
if (!asIs && held > 0) {
  notes.push(`its first poll came ${summary(earlyFirstPoll).p50} ms (median) after the code, not ${interval * 1000} ms;`
    + ` the wrapper held ${held} first polls until one interval had passed (as is, each would be an interval violation answered with slow_down, which msal-node throws on)`);
}
if (asIs && earlyFirstPoll.length) {
  notes.push(`as is: its first poll came ${summary(earlyFirstPoll).p50} ms (median) after the code, not ${interval * 1000} ms`);
}
if (grantTypeAliasPolls > 0) {
  notes.push(`its ${grantTypeAliasPolls} token polls sent grant_type=device_code (Entra's alias, which the simulator accepts like Entra)`);
}
if (Object.keys(fetchFailures).length) {
  notes.push(`fetch failures by cause: ${Object.entries(fetchFailures).map(([k, v]) => `${k} x${v}`).join(', ')}`);
}
if (outside.length) notes.push(`REFUSED connections outside loopback: ${[...new Set(outside)].join(', ')}`);
else notes.push(`no connection or DNS lookup outside loopback (${clientSockets} TCP connections opened by msal-node and the Graph GETs, all to 127.0.0.1)`);

const result = {
  client: `msal-node ${msalVersion}`,
  n, approve_after_s: approveAfter, interval_s: interval, rtt_ms: rtt, http: httpVersion, as_is: asIs,
  connections_cap: connections,
  completed: done.length,
  wall_s: (tEnd - t0) / 1000,
  cpu_s: Math.round(cpuAfter.total * 100) / 100,
  cpu_user_s: cpuAfter.user, cpu_sys_s: cpuAfter.sys,
  cpu_startup_s: cpuBefore.total,
  cpu_sign_in_s: Math.round((cpuAfter.total - cpuBefore.total) * 100) / 100,
  peak_rss_kib: mem.hwm, rss_kib: mem.rss, rss_anon_kib: mem.anon, rss_file_kib: mem.file, threads: mem.threads,
  ...simulatorFigures(counters, codes, { controlConnections: connectionsBeforeCodes },
    args['front-log'] ? frontFigures(args['front-log']) : null),
  poll_lateness_ms: pollLateness(codes),
  login_to_code_ms: summary(flows.filter((f) => f.code !== null).map((f) => f.code - f.start)),
  approval_to_signed_in_ms: summary(approvalToToken),
  nominal_approval_to_signed_in_ms: summary(nominal),
  login_to_graph_ms: summary(done.map((f) => f.graph - f.start)),
  first_poll_after_code_ms: summary(earlyFirstPoll),
  first_polls_held: held,
  grant_type_alias_polls: grantTypeAliasPolls,
  client_requests: clientRequests,
  sockets_opened: clientSockets,
  outside_loopback: [...new Set(outside)],
  simulator_cpu_s: simPid ? Math.round((simCpuAfter - simCpuBefore) * 100) / 100 : null,
  errors,
  fetch_failures: fetchFailures,
  notes,
  machine: machineAtStart,
};
writeFileSync(args.out, `${JSON.stringify(result)}\n`);
process.exit(outside.length ? 3 : finished && done.length === n ? 0 : 1);

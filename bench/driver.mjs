// scripts/bench's driver for graph2mqtt. It subscribes to the agent's topics, starts the agent
// itself (so that start-up is timed from the moment the process is spawned), waits until every
// account's retained auth/state is on the broker, sends N `login` requests over MQTT, times what
// the agent publishes, and reads the simulator's counters. It writes one JSON object to --out.
//
//   node bench/driver.mjs --mqtt-port P --sim-http P --agent-bin BIN --config FILE --agent-log FILE
//       --agent-pid-file FILE --n N --approve-after A --interval I [--rtt MS] [--http 1.1|2]
//       [--front-log FILE] [--sim-pid PID] [--broker-pid PID] [--base graph2mqtt]
//       [--steady SECONDS] [--startup-timeout SECONDS] [--timeout SECONDS] --out FILE
//
// Every time is the system clock (Date.now()), the same clock as the simulator's issued_at_ms and
// approved_at_ms, on the same machine.
import { spawn } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import mqtt from 'mqtt';
import {
  controlConnections, cpuSeconds, frontFigures, machine, memoryKiB, parseArgs, pollLateness, rateFigures,
  simRequest, simulatorFigures, sleep, summary,
} from './lib.mjs';

const args = parseArgs(process.argv.slice(2));
const n = Number(args.n);
const approveAfter = Number(args['approve-after']);
const interval = Number(args.interval);
const rtt = Number(args.rtt || 0);
const httpVersion = String(args.http || '1.1');
const base = args.base || 'graph2mqtt';
const simHttp = Number(args['sim-http']);
const steadySeconds = Number(args.steady || 0);
// Generous: on a stock broker the agent may deliver only a few dozen messages a second, and the
// bench must show that, not cut it short.
const startupTimeout = Number(args['startup-timeout'] || 120 + n * 0.2);
const timeoutSeconds = Number(args.timeout || Math.max(60, approveAfter + 30 + n * 0.1));
const names = Array.from({ length: n }, (_, i) => `a${String(i + 1).padStart(4, '0')}`);

const log = (...m) => process.stderr.write(`bench: ${m.join(' ')}\n`);

const acct = new Map(names.map((name) => [name, {
  retainedState: null, login: null, code: null, userCode: null, signedIn: null, graph: null, reply: null,
}]));
const events = {};
const received = []; // arrival time of every message from the agent (ms)
let bridgeOnline = false;
let statesRetained = 0;
let remaining = n;
let onAllDone = null;
let onOnline = null;
let onStartup = null;
let lastMessage = 0;

const client = mqtt.connect(`mqtt://127.0.0.1:${args['mqtt-port']}`, {
  protocolVersion: 5, clientId: `g2m-bench-${process.pid}`, clean: true, reconnectPeriod: 0,
});
client.on('error', (e) => { log('MQTT error:', e.message); process.exit(1); });

// Start-up is timed on a connection of its own that subscribes to auth/state only: a stock
// Mosquitto queues at most 1,000 messages for a client (max_queued_messages) and drops the rest,
// and the agent's start-up burst is several messages per account, so the `#` subscriber below may
// lose some of it (counted as lost); N retained auth/state fit in the queue.
const stateClient = mqtt.connect(`mqtt://127.0.0.1:${args['mqtt-port']}`, {
  protocolVersion: 5, clientId: `g2m-bench-state-${process.pid}`, clean: true, reconnectPeriod: 0,
});
stateClient.on('error', (e) => { log('MQTT error:', e.message); process.exit(1); });
stateClient.on('message', (topic, payload, packet) => {
  const now = Date.now();
  const a = acct.get(topic.slice(base.length + 1).split('/')[0]);
  // Retain As Published: the retain flag says the broker stored this state.
  if (a && payload.length && packet.retain && a.retainedState === null) {
    a.retainedState = now;
    statesRetained += 1;
    if (statesRetained === n && onStartup) onStartup();
  }
});
const startupTopics = new Set(); // "account/suffix" and bridge topics the `#` subscriber saw at start-up
let inStartup = true;

client.on('message', (topic, payload, packet) => {
  const now = Date.now();
  received.push(now);
  lastMessage = now;
  const text = payload.toString();
  const rest = topic.slice(base.length + 1);
  if (inStartup) startupTopics.add(rest);
  if (rest === 'bridge/state') {
    if (text && JSON.parse(text).state === 'online') {
      bridgeOnline = true;
      if (onOnline) onOnline();
    }
    return;
  }
  if (rest === 'bridge/response/login') {
    const reply = JSON.parse(text);
    const a = acct.get(String(reply.transaction));
    if (a && !a.reply) a.reply = reply.status === 'ok' ? 'ok' : reply.error;
    return;
  }
  const slash = rest.indexOf('/');
  const a = acct.get(rest.slice(0, slash));
  if (!a || !text) return;
  const what = rest.slice(slash + 1);
  if (what === 'auth/code') {
    if (a.code === null && a.login !== null) {
      a.code = now;
      a.userCode = JSON.parse(text).user_code;
    }
  } else if (what === 'auth/state') {
    if (a.signedIn === null && a.login !== null && JSON.parse(text).state === 'signed_in') a.signedIn = now;
  } else if (what === 'graph/presence') {
    if (a.graph === null && a.login !== null) {
      a.graph = now;
      remaining -= 1;
      if (remaining === 0 && onAllDone) onAllDone();
    }
  } else if (what === 'events') {
    const e = JSON.parse(text).event;
    events[e] = (events[e] || 0) + 1;
  }
});

await new Promise((resolve) => client.on('connect', resolve));
// One subscription to everything under the base topic (overlapping subscriptions would bring
// duplicates), Retain As Published, and none of the bench's own requests back (No Local).
await client.subscribeAsync({ [`${base}/#`]: { qos: 1, rap: true, nl: true } });
if (!stateClient.connected) await new Promise((resolve) => stateClient.on('connect', resolve));
await stateClient.subscribeAsync({ [`${base}/+/auth/state`]: { qos: 1, rap: true } });

// --- start-up: agent spawned -> every account's retained auth/state on the broker -------------------

const spawnedAt = Date.now();
const agentLog = openSync(args['agent-log'], 'w');
const agent = spawn(args['agent-bin'], ['--config', args.config], { stdio: ['ignore', agentLog, agentLog] });
const agentPid = agent.pid;
writeFileSync(args['agent-pid-file'], `${agentPid}\n`);
let agentExited = null;
agent.on('exit', (code, signal) => { agentExited = signal || code; });

const startupDone = statesRetained === n || await Promise.race([
  new Promise((resolve) => { onStartup = () => resolve(true); }),
  sleep(startupTimeout * 1000).then(() => false),
]);
const startupAt = Date.now();
const startupMs = startupDone ? Math.max(...[...acct.values()].map((a) => a.retainedState)) - spawnedAt : null;
if (!startupDone) log(`start-up: only ${statesRetained} of ${n} retained auth/state after ${startupTimeout} s`);
else log(`start-up: ${n} retained auth/state ${startupMs} ms after the agent was spawned`);
if (agentExited !== null) { log(`the agent exited (${agentExited}): see its log`); process.exit(1); }
if (!bridgeOnline) {
  await Promise.race([
    new Promise((resolve) => { onOnline = resolve; }),
    sleep(30000).then(() => { throw new Error('the agent did not come online within 30 s'); }),
  ]);
}
// The rest of start-up (retained values after the last auth/state) must not count as sign-in
// traffic: wait until the agent has been quiet for 500 ms.
const quietDeadline = Date.now() + startupTimeout * 1000;
while (Date.now() - lastMessage < 500 && Date.now() < quietDeadline) await sleep(100);
const startupMessages = received.length;
const startupLastMessage = lastMessage;
inStartup = false;
// What the `#` subscriber should have seen at start-up: every per-account topic it saw for any
// account, for every account, and the bridge topics.
const suffixes = new Set();
let bridgeTopics = 0;
for (const t of startupTopics) {
  const slash = t.indexOf('/');
  if (acct.has(t.slice(0, slash))) suffixes.add(t.slice(slash + 1));
  else bridgeTopics += 1;
}
const startupExpected = n * suffixes.size + bridgeTopics;
const startupMissing = Math.max(0, startupExpected - startupTopics.size);
if (startupMissing) log(`start-up: the # subscriber missed ${startupMissing} of ${startupExpected} retained topics`);

const simPid = args['sim-pid'] ? Number(args['sim-pid']) : null;
const brokerPid = args['broker-pid'] ? Number(args['broker-pid']) : null;
const otherCpu = () => ({ sim: simPid ? cpuSeconds(simPid).total : null, broker: brokerPid ? cpuSeconds(brokerPid).total : null });
const cpuBefore = cpuSeconds(agentPid);
const otherBefore = otherCpu();
const machineAtStart = machine();
log(`sending ${n} login requests`);
const t0 = Date.now();
const signInFrom = received.length;
for (const name of names) {
  acct.get(name).login = Date.now();
  client.publish(`${base}/bridge/request/login`, JSON.stringify({ account: name, transaction: name }), { qos: 1 });
}

const finished = await Promise.race([
  new Promise((resolve) => { onAllDone = () => resolve(true); }),
  sleep(timeoutSeconds * 1000).then(() => false),
]);
const tEnd = Date.now();
const cpuAfter = cpuSeconds(agentPid);
const otherAfter = otherCpu();
const memAfter = memoryKiB(agentPid);
if (!finished) log(`timed out after ${timeoutSeconds} s: ${remaining} of ${n} accounts not done`);
// Messages still on their way (the clearing of auth/code, the signed_in events) are waited for
// until the agent is quiet for 1 s, so that none of them is counted as lost while in transit.
const drainDeadline = Date.now() + timeoutSeconds * 1000;
while (Date.now() - lastMessage < 1000 && Date.now() < drainDeadline) await sleep(100);

const counters = await simRequest(simHttp, 'GET', '/_sim/counters');
const connectionsBeforeCodes = controlConnections;
const { codes } = await simRequest(simHttp, 'GET', '/_sim/codes');
const byUserCode = new Map(codes.map((c) => [c.user_code, c]));

const loginToCode = [];
const approvalToSignedIn = [];
const nominalApprovalToSignedIn = [];
const loginToGraph = [];
const failures = {};
// Messages the agent should have published and the bench did not receive (QoS 1 all the way).
const missing = {
  startup_auth_state: 0, startup_retained_topics: startupMissing, login_reply: 0, auth_code: 0, auth_state_signed_in: 0, graph_presence: 0,
  events_code_issued: 0, events_signed_in: 0,
};
for (const [name, a] of acct) {
  if (a.code !== null) loginToCode.push(a.code - a.login);
  if (a.graph !== null) loginToGraph.push(a.graph - a.login);
  const c = a.userCode ? byUserCode.get(a.userCode) : undefined;
  if (c && a.signedIn !== null) {
    if (c.approved_at_ms !== null) approvalToSignedIn.push(a.signedIn - c.approved_at_ms);
    nominalApprovalToSignedIn.push(a.signedIn - (c.issued_at_ms + approveAfter * 1000));
  }
  if (a.retainedState === null) missing.startup_auth_state += 1;
  if (a.reply === null) missing.login_reply += 1;
  if (a.code === null) missing.auth_code += 1;
  if (a.signedIn === null) missing.auth_state_signed_in += 1;
  if (a.graph === null) {
    missing.graph_presence += 1;
    const why = a.reply !== 'ok' && a.reply ? `login: ${a.reply}` : 'no graph/presence';
    failures[why] = (failures[why] || 0) + 1;
    if (Object.keys(failures).length === 1 && failures[why] === 1) log(`${name}: ${why}`);
  }
}
missing.events_code_issued = Math.max(0, n - (events.code_issued || 0));
missing.events_signed_in = Math.max(0, n - (events.signed_in || 0));

const front = args['front-log'] ? frontFigures(args['front-log']) : null;
const result = {
  client: 'graph2mqtt',
  n, approve_after_s: approveAfter, interval_s: interval, rtt_ms: rtt, http: httpVersion,
  completed: n - remaining,
  startup_ms: startupMs,
  startup_states_retained: statesRetained,
  startup_retained_topics_expected: startupExpected,
  wall_s: (tEnd - t0) / 1000,
  cpu_s: Math.round(cpuAfter.total * 100) / 100,
  cpu_user_s: cpuAfter.user, cpu_sys_s: cpuAfter.sys,
  cpu_startup_s: cpuBefore.total,
  cpu_sign_in_s: Math.round((cpuAfter.total - cpuBefore.total) * 100) / 100,
  peak_rss_kib: memAfter.hwm, rss_kib: memAfter.rss, rss_anon_kib: memAfter.anon, rss_file_kib: memAfter.file, threads: memAfter.threads,
  ...simulatorFigures(counters, codes, { controlConnections: connectionsBeforeCodes }, front),
  poll_lateness_ms: pollLateness(codes),
  login_to_code_ms: summary(loginToCode),
  approval_to_signed_in_ms: summary(approvalToSignedIn),
  nominal_approval_to_signed_in_ms: summary(nominalApprovalToSignedIn),
  login_to_graph_ms: summary(loginToGraph),
  mqtt: rateFigures(received, {
    spawnedAt, startupEnd: startupLastMessage, startupMessages, signInFrom, t0,
  }),
  events, failures,
  mqtt_messages_missing: missing,
  // The other processes on the same 2 cores during the sign-ins, for context.
  simulator_cpu_s: simPid ? Math.round((otherAfter.sim - otherBefore.sim) * 100) / 100 : null,
  broker_cpu_s: brokerPid ? Math.round((otherAfter.broker - otherBefore.broker) * 100) / 100 : null,
  machine: machineAtStart,
  startup_wait_s: Math.round((startupAt - spawnedAt) / 100) / 10,
};

if (steadySeconds > 0 && finished) {
  log(`steady state: ${n} signed-in accounts, measuring for ${steadySeconds} s`);
  const before = await simRequest(simHttp, 'GET', '/_sim/counters');
  const controlBefore = controlConnections;
  const cpu0 = cpuSeconds(agentPid);
  const other0 = otherCpu();
  const s0 = Date.now();
  let rssMax = 0;
  const rssSamples = [];
  while (Date.now() - s0 < steadySeconds * 1000) {
    await sleep(Math.min(1000, steadySeconds * 1000 - (Date.now() - s0)));
    const m = memoryKiB(agentPid);
    rssMax = Math.max(rssMax, m.rss);
    rssSamples.push(m.rss);
  }
  const cpu1 = cpuSeconds(agentPid);
  const other1 = otherCpu();
  const seconds = (Date.now() - s0) / 1000;
  const mem = memoryKiB(agentPid);
  const after = await simRequest(simHttp, 'GET', '/_sim/counters');
  result.steady = {
    window_s: Math.round(seconds * 10) / 10,
    cpu_s: Math.round((cpu1.total - cpu0.total) * 100) / 100,
    cpu_percent_of_one_core: Math.round(((cpu1.total - cpu0.total) / seconds) * 10000) / 100,
    simulator_cpu_s: simPid ? Math.round((other1.sim - other0.sim) * 100) / 100 : null,
    broker_cpu_s: brokerPid ? Math.round((other1.broker - other0.broker) * 100) / 100 : null,
    rss_kib_max: rssMax,
    rss_kib_mean: Math.round(rssSamples.reduce((x, y) => x + y, 0) / rssSamples.length),
    peak_rss_kib: mem.hwm,
    rss_anon_kib: mem.anon,
    rss_file_kib: mem.file,
    graph_requests: after.requests.graph - before.requests.graph,
    refresh_requests: after.requests.refresh - before.requests.refresh,
    token_requests: after.requests.token - before.requests.token,
    new_tcp_connections: after.tcp_connections - before.tcp_connections - (controlConnections - controlBefore),
    new_tls_handshakes: after.tls_handshakes - before.tls_handshakes,
  };
}

writeFileSync(args.out, `${JSON.stringify(result)}\n`);
agent.kill('SIGTERM');
await Promise.race([new Promise((resolve) => { if (agentExited !== null) resolve(); else agent.on('exit', resolve); }), sleep(5000)]);
await client.endAsync();
await stateClient.endAsync();
process.exit(finished ? 0 : 1);

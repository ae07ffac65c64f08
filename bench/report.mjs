// Prints scripts/bench's result: one JSON line, then a readable table with the targets of issue 6.
//   node bench/report.mjs AGENT.json [PEER.json]
import { readFileSync } from 'node:fs';

const [agent, peer] = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, 'utf8')));

const ratio = (ours, theirs) => (ours > 0 && theirs > 0 ? Math.round((theirs / ours) * 10) / 10 : null);
const out = { bench: 'graph2mqtt', agent };
if (peer) {
  out.peer = peer;
  out.ratios = {
    cpu: ratio(agent.cpu_s, peer.cpu_s),
    cpu_sign_in: ratio(agent.cpu_sign_in_s, peer.cpu_sign_in_s),
    peak_rss: ratio(agent.peak_rss_kib, peer.peak_rss_kib),
    tls_handshakes: ratio(agent.tls_handshakes, peer.tls_handshakes),
    tcp_connections: ratio(agent.tcp_connections, peer.tcp_connections),
    wall: ratio(agent.wall_s, peer.wall_s),
  };
}
const { n, approve_after_s: A, interval_s: I } = agent;
const pollLimit = Math.ceil(A / I) + 1;
const MB = 1000 * 1000 / 1024; // targets say MB: 10^6 bytes, in KiB
const targets = [
  ['agent peak RSS <= 16 MB', agent.peak_rss_kib <= 16 * MB, `${(agent.peak_rss_kib / 1024).toFixed(1)} MiB`],
  ['TLS handshakes <= 8 for the whole run', agent.tls_handshakes <= 8, `${agent.tls_handshakes}`],
  ['zero interval violations, first poll included', agent.interval_violations === 0, `${agent.interval_violations}`],
  [`token polls per sign-in <= ceil(A/I)+1 = ${pollLimit}`, agent.polls_per_sign_in.max !== null && agent.polls_per_sign_in.max <= pollLimit,
    `max ${agent.polls_per_sign_in.max}, mean ${agent.polls_per_sign_in.mean}`],
  [`approval -> signed_in p95 <= I + 100 ms = ${I * 1000 + 100} ms (simulator's approved_at_ms)`,
    agent.approval_to_signed_in_ms.p95 !== null && agent.approval_to_signed_in_ms.p95 <= I * 1000 + 100, `${agent.approval_to_signed_in_ms.p95} ms`],
  [`approval -> signed_in p95 <= ${I * 1000 + 100} ms (approval = issued_at + A)`,
    agent.nominal_approval_to_signed_in_ms.p95 !== null && agent.nominal_approval_to_signed_in_ms.p95 <= I * 1000 + 100,
    `${agent.nominal_approval_to_signed_in_ms.p95} ms`],
];
if (peer) {
  targets.unshift(['agent CPU <= 1/15 of msal-node\'s', peer.completed === peer.n && agent.cpu_s * 15 <= peer.cpu_s,
    `${agent.cpu_s} s vs ${peer.cpu_s} s (1/${out.ratios.cpu ?? '?'})${peer.completed === peer.n ? '' : `; msal-node completed ${peer.completed}/${peer.n}`}`]);
}
if (agent.steady) {
  if (n === 1) {
    targets.push(['steady state, 1 account: RSS <= 6 MB', agent.steady.rss_kib_max <= 6 * MB,
      `${(agent.steady.rss_kib_max / 1024).toFixed(1)} MiB`]);
  }
  targets.push([`steady state: CPU <= 2 % of one core (target set for 1,000 accounts)`,
    agent.steady.cpu_percent_of_one_core <= 2, `${agent.steady.cpu_percent_of_one_core} %`]);
}
out.targets = Object.fromEntries(targets.map(([name, ok, value]) => [name, { ok, value }]));
console.log(JSON.stringify(out));

// --- the table ------------------------------------------------------------------------------------

const fmt = (v, digits = 0) => (v === null || v === undefined ? '-' : typeof v === 'number' ? v.toFixed(digits) : String(v));
const mib = (kib) => (kib ? `${(kib / 1024).toFixed(1)} MiB` : '-');
const lat = (s) => (s && s.n ? `${fmt(s.p50)} / ${fmt(s.p95)} / ${fmt(s.max)}` : '-');
const lat2 = (s) => (s && s.n ? `${fmt(s.p50)} / ${fmt(s.p95)}` : '-');
const reqs = (r) => r.http_requests;
const rows = [
  ['accounts (N) / completed', (x) => `${x.n} / ${x.completed}`],
  ['wall time, first login to last Graph result', (x) => `${fmt(x.wall_s, 2)} s`, 'wall'],
  ['CPU user+sys, whole process', (x) => `${fmt(x.cpu_s, 2)} s`, 'cpu'],
  ['  of which after start-up (sign-ins)', (x) => `${fmt(x.cpu_sign_in_s, 2)} s`, 'cpu_sign_in'],
  ['peak RSS (VmHWM)', (x) => mib(x.peak_rss_kib), 'peak_rss'],
  ['  RSS at the end: anonymous / file-backed', (x) => `${mib(x.rss_anon_kib)} / ${mib(x.rss_file_kib)}`],
  ['HTTP requests: devicecode', (x) => fmt(reqs(x).devicecode)],
  ['HTTP requests: token (polls)', (x) => fmt(reqs(x).token)],
  ['HTTP requests: Graph', (x) => fmt(reqs(x).graph)],
  ['HTTP requests: refresh / openid-configuration', (x) => `${fmt(reqs(x).refresh)} / ${fmt(reqs(x).openid_configuration)}`],
  ['token polls per sign-in, mean / max', (x) => `${fmt(x.polls_per_sign_in.mean, 2)} / ${fmt(x.polls_per_sign_in.max)}`],
  ['interval violations (first poll counts)', (x) => fmt(x.interval_violations)],
  ['TCP connections accepted', (x) => fmt(x.tcp_connections), 'tcp_connections'],
  ['TLS handshakes', (x) => fmt(x.tls_handshakes), 'tls_handshakes'],
  ['approval -> signed_in ms, p50 / p95 / max', (x) => lat(x.approval_to_signed_in_ms)],
  ['  approval taken as issued_at + A', (x) => lat(x.nominal_approval_to_signed_in_ms)],
  ['login -> auth/code ms, p50 / p95', (x) => lat2(x.login_to_code_ms)],
  ['simulator CPU during the run (same 2 cores)', (x) => (x.simulator_cpu_s === null || x.simulator_cpu_s === undefined ? '-' : `${fmt(x.simulator_cpu_s, 2)} s`)],
  ['Mosquitto CPU during the run', (x) => (x.broker_cpu_s === null || x.broker_cpu_s === undefined ? '-' : `${fmt(x.broker_cpu_s, 2)} s`)],
  ['MQTT messages not received (of 5 per account)', (x) => (x.mqtt_messages_missing
    ? fmt(Object.values(x.mqtt_messages_missing).reduce((a, b) => a + b, 0)) : '-')],
  ['load average (1 min) at the start', (x) => fmt(x.machine?.loadavg_1m, 2)],
];
const cols = peer ? [agent, peer] : [agent];
const header = ['', 'graph2mqtt', ...(peer ? ['msal-node', 'msal-node / ours'] : [])];
const table = [header];
for (const [label, get, key] of rows) {
  const line = [label, ...cols.map(get)];
  if (peer) line.push(key && out.ratios[key] !== null ? `${out.ratios[key]}x` : '');
  table.push(line);
}
if (agent.steady) {
  const s = agent.steady;
  table.push([`steady state, ${s.window_s} s window`, '', ...(peer ? ['', ''] : [])]);
  table.push(['  CPU, % of one core', `${fmt(s.cpu_percent_of_one_core, 2)} %`, ...(peer ? ['', ''] : [])]);
  table.push(['  RSS max / mean', `${mib(s.rss_kib_max)} / ${mib(s.rss_kib_mean)}`, ...(peer ? ['', ''] : [])]);
  table.push(['  RSS at the end: anonymous / file-backed', `${mib(s.rss_anon_kib)} / ${mib(s.rss_file_kib)}`, ...(peer ? ['', ''] : [])]);
  table.push(['  Graph requests / new TLS handshakes', `${s.graph_requests} / ${s.new_tls_handshakes}`, ...(peer ? ['', ''] : [])]);
}
const widths = header.map((_, i) => Math.max(...table.map((r) => String(r[i]).length)));
const print = (r) => console.log(r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ').trimEnd());
console.log('');
console.log(`graph2mqtt bench: N=${n}, approval ${A} s after issue, interval ${I} s`
  + ` (${agent.machine.cores} x ${agent.machine.cpu}, ${agent.machine.memory_gib} GiB, Linux ${agent.machine.kernel})`);
print(table[0]);
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
table.slice(1).forEach(print);
if (peer && peer.notes && peer.notes.length) {
  console.log('');
  for (const note of peer.notes) console.log(`msal-node: ${note}`);
  for (const [error, count] of Object.entries(peer.errors || {})) console.log(`msal-node: ${count} sign-ins failed: ${error}`);
}
console.log('');
console.log(`targets (issue 6; set for N=1000, A=3 s, I=1 s)${n === 1000 && A === 3 && I === 1 ? '' : ' — this run has other settings'}:`);
for (const [name, ok, value] of targets) console.log(`  ${ok ? 'met ' : 'MISS'}  ${name}: ${value}`);

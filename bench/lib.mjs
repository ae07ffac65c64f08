// Helpers shared by the bench's driver, the msal-node peer and the report.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';

// --- process figures from /proc (the same method for the agent and the peer) --------------------

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86_64 and arm64

// user+sys CPU seconds of a whole process (all threads), from /proc/PID/stat fields 14 and 15.
export function cpuSeconds(pid = 'self') {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  return { user: utime / CLK_TCK, sys: stime / CLK_TCK, total: (utime + stime) / CLK_TCK };
}

// VmHWM (peak resident set) and VmRSS, in KiB, from /proc/PID/status.
export function memoryKiB(pid = 'self') {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (key) => Number((status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm')) || [])[1]);
  return { hwm: get('VmHWM'), rss: get('VmRSS'), anon: get('RssAnon'), file: get('RssFile'), threads: Number((status.match(/^Threads:\s+(\d+)/m) || [])[1]) };
}

// The machine a run was made on, and how busy it was (other processes share its cores).
export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model, cores: cpus.length, memory_gib: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(), loadavg_1m: Math.round(os.loadavg()[0] * 100) / 100,
  };
}

// --- the simulator's control API --------------------------------------------------------------

// Each call is one fresh TCP connection to the simulator's plain-HTTP listener (never TLS), and is
// counted, so the bench can take its own connections out of `tcp_connections`.
export let controlConnections = 0;

export function simRequest(port, method, path, body) {
  controlConnections += 1;
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1', port, method, path, agent: false,
        headers: { Connection: 'close', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text}`));
          try { resolve(JSON.parse(text)); } catch (e) { reject(e); }
        });
      });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

// --- statistics -------------------------------------------------------------------------------

// Nearest-rank percentile of an array of numbers (p in 0..100); null for an empty array.
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

export function summary(values) {
  if (values.length === 0) return { n: 0, mean: null, p50: null, p95: null, max: null };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return {
    n: values.length,
    mean: Math.round(mean * 100) / 100,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    max: Math.max(...values),
  };
}

// The figures that come from the simulator, for the codes this run issued. With an HTTP/2 front
// (nghttpx), the client's connections and TLS handshakes are the front's (its access log), and the
// simulator's own are the front's connections to it.
export function simulatorFigures(counters, codes, bench, front = null) {
  const polls = codes.map((c) => c.polls);
  const out = {
    http_requests: {
      devicecode: counters.requests.devicecode,
      token: counters.requests.token,
      refresh: counters.requests.refresh,
      graph: counters.requests.graph,
      openid_configuration: counters.requests.openid_configuration,
      graph_paths: counters.requests.graph_paths,
    },
    polls_per_sign_in: summary(polls),
    interval_violations: counters.interval_violations,
    slow_down_sent: counters.slow_down_sent,
    // The bench's own control connections (plain HTTP) are not the client's.
    tcp_connections: counters.tcp_connections - bench.controlConnections,
    tls_handshakes: counters.tls_handshakes,
    unauthorized_graph: counters.unauthorized_graph,
  };
  if (front) {
    out.front = front;
    out.simulator_connections_from_front = out.tcp_connections;
    out.tcp_connections = front.connections;
    out.tls_handshakes = front.connections;
  }
  return out;
}

// Poll lateness: each device-code poll's arrival at the simulator minus the earliest moment the
// interval allowed it (the simulator's poll_lateness_ms, negative for an early poll).
export function pollLateness(codes) {
  const all = codes.flatMap((c) => c.poll_lateness_ms || []);
  const s = summary(all);
  // The first poll is measured from the device-code answer, later ones from the previous poll.
  const first = summary(codes.filter((c) => c.poll_lateness_ms?.length).map((c) => c.poll_lateness_ms[0]));
  const later = summary(codes.flatMap((c) => (c.poll_lateness_ms || []).slice(1)));
  // By the poll's number (1st, 2nd, ...): which round of polls is late.
  const rounds = Math.max(0, ...codes.map((c) => (c.poll_lateness_ms || []).length));
  const byPoll = [];
  for (let i = 0; i < rounds; i += 1) {
    byPoll.push(summary(codes.filter((c) => (c.poll_lateness_ms || []).length > i).map((c) => c.poll_lateness_ms[i])));
  }
  return { ...s, min: all.length ? Math.min(...all) : null, first_poll: first, later_polls: later, by_poll: byPoll };
}

// nghttpx's access log, one line per request: "$remote_port $alpn $tls_session_reused $status".
// Each TLS connection is one client port and one handshake (full or resumed).
export function frontFigures(file) {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { return null; }
  const ports = new Map();
  const byAlpn = {};
  let requests = 0;
  for (const line of text.split('\n')) {
    const [port, alpn, reused] = line.trim().split(' ');
    if (!port) continue;
    requests += 1;
    byAlpn[alpn] = (byAlpn[alpn] || 0) + 1;
    if (!ports.has(port)) ports.set(port, reused === 'r');
  }
  return {
    requests, requests_by_alpn: byAlpn, connections: ports.size,
    resumed_handshakes: [...ports.values()].filter(Boolean).length,
  };
}

// MQTT messages a second, as the bench's subscriber received them. Sustained: start-up, when the
// agent has N accounts' retained values to publish at once (agent spawned -> last message of
// start-up). Peak: the busiest 1 s window of the whole run.
export function rateFigures(times, { spawnedAt, startupEnd, startupMessages, signInFrom, t0 }) {
  const first = times.length ? times[0] : null;
  const startupSpan = first !== null ? (startupEnd - spawnedAt) / 1000 : null;
  let peak = 0;
  for (let i = 0, j = 0; i < times.length; i += 1) {
    while (times[i] - times[j] >= 1000) j += 1;
    peak = Math.max(peak, i - j + 1);
  }
  const signIn = times.slice(signInFrom);
  const signInSpan = signIn.length ? (signIn[signIn.length - 1] - t0) / 1000 : null;
  return {
    startup_messages: startupMessages,
    first_message_after_spawn_ms: first !== null ? first - spawnedAt : null,
    startup_messages_per_s: startupSpan > 0 ? Math.round(startupMessages / startupSpan) : null,
    sign_in_messages: signIn.length,
    sign_in_messages_per_s: signInSpan > 0 ? Math.round(signIn.length / signInSpan) : null,
    peak_messages_in_1s: peak,
  };
}

// --- command line -----------------------------------------------------------------------------

export function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) {
      out[key] = true;
    } else {
      out[key] = next;
      i += 1;
    }
  }
  return out;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// scripts/bench's WAN round trip: a TCP relay on loopback that delays every byte by RTT/2 in each
// direction, in order, and the first byte a client sends by one more RTT (the TCP handshake its
// connect() would have waited for: the kernel completes it at once on loopback). TLS and HTTP/2
// pass through untouched, so a TLS handshake costs its real round trips. Bandwidth is unlimited.
//
//   node bench/delay.mjs --upstream PORT --rtt MS --port-file FILE
//
// Listens on a free port of 127.0.0.1 and writes {"port":P} to FILE (atomically) once listening.
// On SIGTERM it writes {"port":P,"connections":N,"bytes_up":B,"bytes_down":B} to FILE and exits.
import net from 'node:net';
import { renameSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from './lib.mjs';

const args = parseArgs(process.argv.slice(2));
const upstream = Number(args.upstream);
const rtt = Number(args.rtt);
const oneWay = rtt / 2;
const stats = { port: 0, rtt_ms: rtt, connections: 0, bytes_up: 0, bytes_down: 0 };

const writeStats = () => {
  writeFileSync(`${args['port-file']}.tmp`, `${JSON.stringify(stats)}\n`);
  renameSync(`${args['port-file']}.tmp`, args['port-file']);
};

// One direction of one connection: chunks leave in arrival order, each `oneWay` ms after it came
// (and not before `notBefore`). One timer per direction, for the chunk at the head of the queue.
function relay(from, to, notBefore, counter) {
  const queue = [];
  let timer = null;
  let ended = false;
  const flush = () => {
    timer = null;
    const now = performance.now();
    while (queue.length && queue[0].at <= now + 0.5) {
      const { chunk } = queue.shift();
      if (chunk === null) {
        to.end();
      } else if (!to.destroyed) {
        to.write(chunk);
      }
    }
    if (queue.length) timer = setTimeout(flush, Math.max(1, queue[0].at - now));
  };
  const push = (chunk) => {
    const last = queue.length ? queue[queue.length - 1].at : 0;
    const at = Math.max(performance.now() + oneWay, notBefore, last);
    queue.push({ at, chunk });
    if (timer === null) timer = setTimeout(flush, Math.max(0, at - performance.now()));
  };
  from.on('data', (chunk) => {
    stats[counter] += chunk.length;
    push(chunk);
  });
  from.on('end', () => {
    if (!ended) {
      ended = true;
      push(null);
    }
  });
}

const server = net.createServer({ noDelay: true }, (down) => {
  stats.connections += 1;
  const accepted = performance.now();
  const up = net.connect({ host: '127.0.0.1', port: upstream, noDelay: true });
  // allowHalfOpen is false: a side that ends is closed after its queued data went out.
  const close = () => {
    setTimeout(() => {
      down.destroy();
      up.destroy();
    }, oneWay + 5);
  };
  down.on('error', close);
  up.on('error', close);
  down.on('close', close);
  up.on('close', close);
  relay(down, up, accepted + rtt + oneWay, 'bytes_up');
  relay(up, down, 0, 'bytes_down');
});
server.listen(0, '127.0.0.1', () => {
  stats.port = server.address().port;
  writeStats();
});
const stop = () => {
  writeStats();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

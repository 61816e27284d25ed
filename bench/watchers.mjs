// Many spectators in one node process, for bench/fanout.py and bench/sidebyside.py.
//
// Opens <count> socket.io-client connections (websocket only, one engine.io connection
// each), spread round-robin over <urls>, in batches of <batch>; each watches <room>.
// Every `leaderboard:delta` is recorded as (seq, Date.now()). When all are watching,
// prints one line {"ready": ...} on stdout. Lines on stdin:
// - "wait <n> [timeout_ms]": prints {"complete", "seen", "timed_out"} once <n> deltas have
//   reached every watching socket, or <n> were seen and none arrived for QUIET_MS (a
//   watcher was skipped), or after timeout_ms (default 15000);
// - "stop": prints one JSON summary line and exits.
//
// usage: node watchers.mjs <urls comma-separated> <count> <room> [batch] [deflate: 1|0]
import { io } from "socket.io-client";

const [urlList, countArg, room, batchArg, deflateArg] = process.argv.slice(2);
const urls = urlList.split(",");
const count = Number(countArg);
const batchSize = Number(batchArg || 200);
// Node's ws offers permessage-deflate like browsers do; "0" turns the offer off, to compare.
const deflate = deflateArg !== "0";

const sockets = [];
const receipts = new Map(); // seq -> {at, times: number[]}
const snapshotSeq = [];     // per watcher
const stats = { connected: 0, watching: 0, disconnects: 0, errors: {}, stale: 0, gaps: 0, watch_retries: 0 };
const lastSeq = [];         // per watcher: last seq applied, to count gaps
let complete = 0;           // deltas that reached every watching socket
let lastReceipt = 0;        // Date.now() of the latest receipt
let sample = null;          // the boards of the latest new delta, for bench/sidebyside.py
let waiting = null;         // a pending "wait": {count, deadline, timer}
const QUIET_MS = 2000;

function error(code) {
  stats.errors[code] = (stats.errors[code] || 0) + 1;
}

// Event-loop lag of this process: a delta handled late here is measured as late.
let loopLagMax = 0;
let loopLagSum = 0;
let loopLagTicks = 0;
let expected = Date.now() + 20;
const lagTimer = setInterval(() => {
  const late = Date.now() - expected;
  if (late > loopLagMax) loopLagMax = late;
  loopLagSum += Math.max(0, late);
  loopLagTicks += 1;
  expected = Date.now() + 20;
}, 20);

function open(i) {
  return new Promise((resolve) => {
    const socket = io(urls[i % urls.length], {
      transports: ["websocket"],
      forceNew: true,          // one engine.io connection per watcher, no multiplexing
      reconnection: false,
      timeout: 30000,
      perMessageDeflate: deflate ? { threshold: 1024 } : false,
    });
    sockets[i] = socket;
    let settled = false;
    const done = (ok) => { if (!settled) { settled = true; resolve(ok); } };
    socket.on("connect", async () => {
      stats.connected += 1;
      try {
        // `unavailable` means "retry later" (PROTOCOL.md 1): a client retries, so do we, and count it.
        let reply;
        for (let attempt = 0; ; attempt++) {
          reply = await socket.timeout(30000).emitWithAck("watch", { room });
          if (reply.ok || reply.error.code !== "unavailable" || attempt >= 50) break;
          stats.watch_retries += 1;
          await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
        }
        if (!reply.ok) { error(reply.error.code); done(false); return; }
        snapshotSeq[i] = reply.snapshot.seq;
        lastSeq[i] = reply.snapshot.seq;
        stats.watching += 1;
        done(true);
      } catch (err) {
        error("watch_timeout");
        done(false);
      }
    });
    socket.on("connect_error", (err) => { error(`connect_error:${err.message}`); done(false); });
    socket.on("disconnect", (reason) => {
      stats.disconnects += 1;
      if (!settled) { error(`disconnect:${reason}`); done(false); }
    });
    socket.on("leaderboard:delta", (delta) => {
      const received = Date.now();
      if (delta.room !== room) return;
      if (snapshotSeq[i] !== undefined && delta.seq <= snapshotSeq[i]) { stats.stale += 1; return; }
      if (lastSeq[i] !== undefined && delta.seq !== lastSeq[i] + 1) stats.gaps += 1;
      lastSeq[i] = delta.seq;
      let entry = receipts.get(delta.seq);
      if (!entry) {
        // Measured once per delta, on its first receipt: the size of what every watcher got.
        entry = { at: Date.parse(delta.at), times: [], bytes: Buffer.byteLength(JSON.stringify(delta)) };
        receipts.set(delta.seq, entry);
        sample = delta.boards;
      }
      entry.times.push(received);
      lastReceipt = received;
      if (entry.times.length === stats.watching) {
        complete += 1;
        if (waiting && complete >= waiting.count) answerWait(false);
      }
    });
  });
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[k];
}

async function main() {
  const started = Date.now();
  for (let i = 0; i < count; i += batchSize) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + batchSize); j++) batch.push(open(j));
    await Promise.all(batch);
  }
  process.stdout.write(JSON.stringify({ ready: true, ...stats, connect_ms: Date.now() - started }) + "\n");
}

function answerWait(timedOut) {
  clearInterval(waiting.timer);
  waiting = null;
  process.stdout.write(JSON.stringify({ complete, seen: receipts.size, timed_out: timedOut }) + "\n");
}

function wait(count, timeoutMs) {
  if (waiting) answerWait(true);
  waiting = { count, deadline: Date.now() + timeoutMs };
  waiting.timer = setInterval(() => {
    const now = Date.now();
    if (complete >= count || (receipts.size >= count && now - lastReceipt >= QUIET_MS)) answerWait(false);
    else if (now >= waiting.deadline) answerWait(true);
  }, 100);
}

process.stdin.setEncoding("utf8");
let buffered = "";
process.stdin.on("data", (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const [verb, ...rest] = buffered.slice(0, nl).trim().split(/\s+/);
    buffered = buffered.slice(nl + 1);
    if (verb === "wait") wait(Number(rest[0]), Number(rest[1] || 15000));
    else if (verb === "stop") { stop(); return; }
  }
});

function stop() {
  clearInterval(lagTimer);
  if (waiting) clearInterval(waiting.timer);
  const deltas = [];
  const all = [];
  for (const [seq, entry] of [...receipts.entries()].sort((a, b) => a[0] - b[0])) {
    const lags = entry.times.map((t) => t - entry.at).sort((a, b) => a - b);
    for (const lag of lags) all.push(lag);
    deltas.push({
      seq,
      at: entry.at,
      receivers: lags.length,
      bytes: entry.bytes,
      first_ms: lags[0],
      p50_ms: pct(lags, 50),
      last_ms: lags[lags.length - 1],
    });
  }
  all.sort((a, b) => a - b);
  const out = {
    ...stats,
    watchers: count,
    deltas,
    receipts: all.length,
    receipt_p50_ms: pct(all, 50),
    receipt_p99_ms: pct(all, 99),
    loop_lag_max_ms: loopLagMax,
    loop_lag_mean_ms: loopLagTicks ? loopLagSum / loopLagTicks : 0,
    rss_mb: process.memoryUsage().rss / 1048576,
    sample,
  };
  process.stdout.write(JSON.stringify(out) + "\n", () => {
    for (const socket of sockets) if (socket) socket.disconnect();
    process.exit(0);
  });
}
process.stdin.on("end", () => process.exit(0));

main().catch((err) => { console.error(err); process.exit(1); });

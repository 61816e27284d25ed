// A spectator on the official socket.io-client: watches rooms, applies every delta to
// its snapshot as PROTOCOL.md section 6 says, and re-watches on a seq gap or a
// reconnect. Prints one JSON object when a line "stop" arrives on stdin.
// usage: node watcher.mjs <url> <transports comma-separated> <rooms comma-separated> [topN]
import { io } from "socket.io-client";

const [url, transports, roomList, topArg] = process.argv.slice(2);
const rooms = roomList.split(",");
const topN = Number(topArg || 10);
const state = {};        // room -> {seq, boards}
const deltas = {};       // room -> [{seq, at, received}]
const log = { rewatches: 0, gaps: 0, connects: 0, disconnects: [], errors: [], transport: null };

const socket = io(url, { transports: transports.split(","), reconnectionDelay: 200, reconnectionDelayMax: 1000 });

function applyDelta(model, delta) {
  for (const period of delta.reset || []) model.boards[period] = [];
  for (const [period, rows] of Object.entries(delta.boards)) {
    const board = new Map(model.boards[period].map((r) => [r.rank, r]));
    for (const row of rows) board.set(row.rank, row);
    model.boards[period] = [...board.keys()].sort((a, b) => a - b).filter((r) => r <= topN).map((r) => board.get(r));
  }
  model.seq = delta.seq;
}

async function watch(room) {
  const reply = await socket.timeout(10000).emitWithAck("watch", { room });
  if (!reply.ok) { log.errors.push(reply.error); return; }
  state[room] = { seq: reply.snapshot.seq, boards: reply.snapshot.boards, buffered: [] };
}

socket.on("connect", async () => {
  log.connects += 1;
  log.transport = socket.io.engine.transport.name;
  socket.io.engine.on("upgrade", (t) => { log.transport = t.name; });
  for (const room of rooms) await watch(room);
  if (log.connects === 1) console.error("ready");
});

socket.on("leaderboard:delta", async (delta) => {
  (deltas[delta.room] ||= []).push({ seq: delta.seq, at: delta.at, received: Date.now() });
  const model = state[delta.room];
  if (!model || delta.seq <= model.seq) return;
  if (delta.seq !== model.seq + 1) {
    log.gaps += 1; log.rewatches += 1;
    await watch(delta.room);
    return;
  }
  applyDelta(model, delta);
});

socket.on("connect_error", (err) => log.errors.push({ code: err.message }));
socket.on("disconnect", (reason) => log.disconnects.push(reason));

process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  if (!chunk.includes("stop")) return;
  const out = { ...log, transport: log.transport, boards: {}, seq: {}, deltas };
  for (const [room, model] of Object.entries(state)) { out.boards[room] = model.boards; out.seq[room] = model.seq; }
  process.stdout.write(JSON.stringify(out) + "\n");
  socket.disconnect();
  process.exit(0);
});

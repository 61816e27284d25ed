// A tournament entrant on the official socket.io-client, written from shared/PROTOCOL.md 10:
// joins a tournament, watches its room, applies every delta to the snapshot (section 6), and
// prints what it saw once `watch_ms` has passed.
//
//   node tests/tournaments/js/entrant.mjs '<json config>'
//
// config: {"url", "root", "token", "tournament", "watch_ms"}
// Prints one JSON object {"join", "join_again", "snapshot", "board", "deltas", "gaps"} and exits
// 0; on a failure it prints that with {"error"} and exits 1.

import { createRequire } from "node:module";
import path from "node:path";

const config = JSON.parse(process.argv[2] ?? "{}");
const requireFromRoot = createRequire(path.join(config.root, "package.json"));
const { io } = requireFromRoot("socket.io-client");

const result = { deltas: [], gaps: 0 };
const room = `tournament:${config.tournament}`;
let model = null;

function output(code) {
  socket.disconnect();
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

function apply(delta) {
  for (const period of delta.reset || []) model.boards[period] = [];
  for (const [period, rows] of Object.entries(delta.boards)) {
    const board = new Map((model.boards[period] || []).map((r) => [r.rank, r]));
    for (const row of rows) board.set(row.rank, row);
    model.boards[period] = [...board.keys()].sort((a, b) => a - b).map((r) => board.get(r));
  }
  model.seq = delta.seq;
}

const socket = io(config.url, { transports: ["websocket"], auth: { token: config.token }, reconnection: false });
socket.on("leaderboard:delta", (delta) => {
  if (delta.room !== room) return;
  result.deltas.push(delta);
  if (!model || delta.seq <= model.seq) return;
  if (delta.seq !== model.seq + 1) { result.gaps += 1; return; }
  apply(delta);
});
socket.on("connect_error", (err) => { result.error = `connect_error ${err.message}`; output(1); });
socket.on("connect", async () => {
  try {
    result.join = await socket.timeout(10000).emitWithAck("tournament:join", { tournament: config.tournament });
    result.join_again = await socket.timeout(10000).emitWithAck("tournament:join", { tournament: config.tournament });
    const watched = await socket.timeout(10000).emitWithAck("watch", { room });
    if (!watched.ok) throw new Error(`watch refused: ${JSON.stringify(watched.error)}`);
    result.snapshot = watched.snapshot;
    model = { seq: watched.snapshot.seq, boards: structuredClone(watched.snapshot.boards) };
    console.error("ready");
    setTimeout(() => { result.board = model.boards; output(0); }, config.watch_ms);
  } catch (err) {
    result.error = String(err);
    output(1);
  }
});

// A minimal Node.js socket.io 4 server: the other side of bench/sidebyside.py.
//
// Node's http module, the websocket transport only, no per-message compression (ours
// refuses it too), one room. `watch` {room} joins the room and is answered as ours
// answers it: {ok, room, snapshot: {room, seq, boards}}. Each line "emit" on stdin sends
// one `leaderboard:delta` {room, seq, at, boards} to the room through socket.io's own
// broadcast (its adapter encodes the packet and builds the WebSocket frame once), where
// `boards` are read from <boards.json> (the rows our server sent in the same run), `seq`
// grows by 1 from the clock's ms, as ours does, and `at` is when the delta was built.
// Prints {"listening": port} once listening and {"emitted": seq} after each emit; "stop"
// or the end of stdin closes it.
//
// usage: node node_server.mjs <port> <room> <boards.json>
import { readFileSync } from "node:fs";
import http from "node:http";
import { Server } from "socket.io";

const [portArg, room, boardsFile] = process.argv.slice(2);
const boards = JSON.parse(readFileSync(boardsFile, "utf8"));
let seq = Date.now();

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: false,
  serveClient: false,
});

io.on("connection", (socket) => {
  socket.on("watch", (data, ack) => {
    if (typeof ack !== "function") return;
    if (!data || data.room !== room) {
      ack({ ok: false, error: { code: "not_found", message: "no such room" } });
      return;
    }
    socket.join(room);
    ack({ ok: true, room, snapshot: { room, seq, boards } });
  });
});

function stop() {
  io.close();
  process.exit(0);
}

process.stdin.setEncoding("utf8");
let buffered = "";
process.stdin.on("data", (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    if (line === "emit") {
      seq += 1;
      io.to(room).emit("leaderboard:delta", { room, seq, at: new Date().toISOString(), boards });
      process.stdout.write(JSON.stringify({ emitted: seq }) + "\n");
    } else if (line === "stop") {
      stop();
    }
  }
});
process.stdin.on("end", stop);

httpServer.listen(Number(portArg), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ listening: httpServer.address().port }) + "\n");
});

// A player on the real socket.io-client that plays like a bot (completes exactly at min_ms, no
// pauses) or like a person (random pauses of 0.2-2 s on top of min_ms), written from
// shared/PROTOCOL.md section 5 only.
//
//   node tests/clients/js/fairplay.mjs '<json config>'
//
// config: {"url", "root", "player_id", "mode": "bot" | "human", "action", "completions", "seed"}
// Prints one JSON object: {"difficulties": [challenge difficulty per start], "credited": n,
// "errors": {code: n}, "last": <last ack>}; exits 1 with {"error"} on a failure.

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";

const config = JSON.parse(process.argv[2] ?? "{}");
const requireFromRoot = createRequire(path.join(config.root, "package.json"));
const { io } = requireFromRoot("socket.io-client");

const result = { mode: config.mode, difficulties: [], credited: 0, errors: {} };
let socket;

function output(code) {
  if (socket) socket.disconnect();
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A small seeded generator (mulberry32), so a run can be repeated.
let seed = config.seed >>> 0;
function random() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function zeroBits(buf) {
  let n = 0;
  for (const byte of buf) {
    if (byte === 0) { n += 8; continue; }
    return n + Math.clz32(byte) - 24;
  }
  return n;
}

function solve(token, difficulty) {
  for (let p = 0; ; p++) {
    if (zeroBits(createHash("sha256").update(`${token}:${p}`, "utf8").digest()) >= difficulty) return String(p);
  }
}

async function main() {
  const resp = await fetch(`${config.url}/api/v1/sessions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ player_id: config.player_id, name: config.player_id, region: "eu" }),
  });
  const session = await resp.json();
  if (resp.status !== 201) throw new Error(`session: ${resp.status} ${JSON.stringify(session)}`);
  socket = io(config.url, { auth: { token: session.token }, transports: ["websocket"], reconnection: false });
  await new Promise((resolve, reject) => { socket.on("connect", resolve); socket.on("connect_error", reject); });
  const call = (event, data) => socket.timeout(10000).emitWithAck(event, data);

  while (result.credited < config.completions) {
    const started = await call("action:start", { action: config.action });
    if (!started.ok) throw new Error(`start: ${JSON.stringify(started)}`);
    const { token, difficulty, min_ms: minMs } = started.challenge;
    result.difficulties.push(difficulty);
    const t0 = Date.now();
    const proof = solve(token, difficulty);
    const pause = config.mode === "bot" ? minMs : minMs + 200 + random() * 1800;
    await sleep(Math.max(0, pause - (Date.now() - t0)));
    for (;;) {
      const ack = await call("action:complete", { token, proof });
      if (ack.ok) { result.credited += 1; result.last = ack; break; }
      const code = ack.error.code;
      result.errors[code] = (result.errors[code] ?? 0) + 1;
      if (code !== "too_fast") { result.last = ack; return; }
      await sleep(ack.error.retry_after_ms);
    }
  }
}

main().then(() => output(0), (err) => { result.error = String(err?.stack ?? err); output(1); });

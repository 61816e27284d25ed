// An outside JS client, written only from shared/PROTOCOL.md (the public contract), on the real socket.io-client.
//
//   node tests/clients/js/scenario.mjs '<json config>'
//
// config: {"url": "http://127.0.0.1:1234", "root": "<repo root>", "scenario": "play" | "bad_token" | "spectator",
//          "transports": ["websocket"] | ["polling"] | null (the client's default: polling, then upgrade),
//          "player_id": "...", "name": "...", "region": "eu", "action": "quick"}
//
// Prints exactly one JSON object on stdout with everything observed, and exits 0; on a failure it
// prints what it observed so far plus {"error": "..."} and exits 1.

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const config = JSON.parse(process.argv[2] ?? "{}");
const root = path.resolve(config.root ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", ".."));
// Resolve the package from the repo's own node_modules, whatever the cwd.
const requireFromRoot = createRequire(path.join(root, "package.json"));
const clientPath = requireFromRoot.resolve("socket.io-client");
const { io } = requireFromRoot("socket.io-client");
const clientVersion = requireFromRoot("socket.io-client/package.json").version;

const ACK_TIMEOUT_MS = 10000;
const result = { scenario: config.scenario, client_version: clientVersion, client_path: clientPath };
const sockets = [];

function output(code) {
  for (const s of sockets) s.disconnect();
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

const watchdog = setTimeout(() => {
  result.error = "scenario watchdog: took longer than 18 s";
  output(1);
}, 18000);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function leadingZeroBits(buf) {
  let n = 0;
  for (const byte of buf) {
    if (byte === 0) {
      n += 8;
      continue;
    }
    n += Math.clz32(byte) - 24;
    break;
  }
  return n;
}

function solve(token, difficulty) {
  for (let p = 0; ; p++) {
    const digest = createHash("sha256").update(`${token}:${p}`, "utf8").digest();
    if (leadingZeroBits(digest) >= difficulty) return { proof: String(p), zero_bits: leadingZeroBits(digest) };
  }
}

async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function createSession(body) {
  const resp = await fetch(`${config.url}/api/v1/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: resp.status, body: await resp.json() };
}

// Opens a socket and records its engine transports: the first one, and every upgrade.
function open(auth) {
  const opts = { reconnection: false, timeout: 10000 };
  if (config.transports) opts.transports = config.transports;
  if (auth !== undefined) opts.auth = auth;
  const socket = io(config.url, opts);
  sockets.push(socket);
  const seen = { first_transport: null, upgrades: [] };
  socket.io.on("open", () => {
    seen.first_transport = socket.io.engine.transport.name;
  });
  socket.io.engine.on("upgrade", (transport) => seen.upgrades.push(transport.name));
  return { socket, seen };
}

// Resolves with {connected: true} on connect, or {connected: false, error: {...}} on connect_error.
function connected(socket) {
  return new Promise((resolve) => {
    socket.once("connect", () => resolve({ connected: true, id: socket.id }));
    socket.once("connect_error", (err) =>
      resolve({ connected: false, error: { message: err.message, data: err.data ?? null } }),
    );
  });
}

const call = (socket, event, payload) => socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);

function transportReport(socket, seen) {
  return {
    first: seen.first_transport,
    upgrades: seen.upgrades,
    final: socket.io.engine ? socket.io.engine.transport.name : null,
  };
}

async function play() {
  const region = config.region ?? "eu";
  const session = await createSession({ player_id: config.player_id, name: config.name, region });
  result.session = session;
  const { token } = session.body;

  const { socket, seen } = open({ token });
  const events = { "achievement:unlocked": [], "leaderboard:delta": [] };
  for (const name of Object.keys(events)) socket.on(name, (data) => events[name].push(data));
  result.connect = await connected(socket);
  if (!result.connect.connected) throw new Error(`connect refused: ${JSON.stringify(result.connect.error)}`);

  const started = await call(socket, "action:start", { action: config.action ?? "quick" });
  const startedAt = Date.now();
  result.start = started;
  if (!started.ok) throw new Error("action:start failed");
  const challenge = started.challenge;

  const { proof, zero_bits } = solve(challenge.token, challenge.difficulty);
  result.proof = proof;
  result.proof_zero_bits = zero_bits;
  const waitMs = challenge.min_ms - (Date.now() - startedAt);
  if (waitMs > 0) await sleep(waitMs + 20);

  result.complete = await call(socket, "action:complete", { token: challenge.token, proof });
  // The same token and proof again, as a client that lost its ack would.
  result.retry = await call(socket, "action:complete", { token: challenge.token, proof });

  // The player sits in its own region room: wait for the delta carrying this score, then watch.
  const room = `region:${region}`;
  await waitFor(() => events["leaderboard:delta"].some((d) => d.room === room), 5000, `leaderboard:delta in ${room}`);
  result.watch = await call(socket, "watch", { room });
  result.watch_other = await call(socket, "watch", { room: "region:na" });

  result.leaderboard = await call(socket, "leaderboard:get", { board: room, period: "all", limit: 10, offset: 0 });
  result.leaderboard_global_around = await call(socket, "leaderboard:get", {
    board: "global",
    period: "weekly",
    limit: 5,
    around: config.player_id,
  });

  const expected = Array.isArray(result.complete.achievements) ? result.complete.achievements.length : 0;
  await waitFor(() => events["achievement:unlocked"].length >= expected, 5000, "achievement:unlocked events");

  if (!config.transports) {
    // Default transports: polling first, then the upgrade to websocket.
    await waitFor(() => seen.upgrades.length > 0, 5000, "the upgrade to websocket");
    // Still usable after the upgrade.
    result.after_upgrade = await call(socket, "leaderboard:get", { board: room });
  }
  result.events = events;
  result.transport = transportReport(socket, seen);
}

async function badToken() {
  const attempts = {};
  const session = await createSession({ player_id: config.player_id, name: config.name, region: config.region ?? "eu" });
  result.session_status = session.status;
  const real = session.body.token;
  // A real token with one character of its signed payload changed.
  const at = Math.floor(real.length / 3);
  const tampered = real.slice(0, at) + (real[at] === "A" ? "B" : "A") + real.slice(at + 1);
  for (const [label, auth] of [
    ["garbage", { token: "not-a-token" }],
    ["tampered", { token: tampered }],
    ["empty_string", { token: "" }],
  ]) {
    const { socket, seen } = open(auth);
    attempts[label] = await connected(socket);
    attempts[label].transport_first = seen.first_transport;
    socket.disconnect();
  }
  result.attempts = attempts;
}

async function spectator() {
  const runs = {};
  for (const [label, auth] of [
    ["no_auth", undefined],
    ["empty_auth", {}],
  ]) {
    const { socket, seen } = open(auth);
    const run = { connect: await connected(socket) };
    if (!run.connect.connected) throw new Error(`spectator refused: ${JSON.stringify(run.connect.error)}`);
    run.start = await call(socket, "action:start", { action: config.action ?? "quick" });
    run.watch = await call(socket, "watch", { room: "region:eu" });
    run.leaderboard = await call(socket, "leaderboard:get", { board: "global", period: "all" });
    run.transport = transportReport(socket, seen);
    socket.disconnect();
    runs[label] = run;
  }
  result.runs = runs;
}

const scenarios = { play, bad_token: badToken, spectator };

try {
  const run = scenarios[config.scenario];
  if (!run) throw new Error(`unknown scenario ${JSON.stringify(config.scenario)}`);
  await run();
  clearTimeout(watchdog);
  output(0);
} catch (err) {
  clearTimeout(watchdog);
  result.error = String(err && err.stack ? err.stack : err);
  output(1);
}

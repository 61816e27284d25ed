// The reference client for PROTOCOL.md v1: everything a game front end needs to talk to
// Live Scoreboard, with no DOM code (static/app.js wires it to the page).
//
//   HTTP        createSession, GuestKeys, getActions, getPlayer   (sections 3, 5, 6)
//   Socket.IO   openSocket, call                              (sections 1, 4)
//   actions     solveProof (a Web Worker), complete()         (section 5)
//   watching    LiveBoard (snapshot + deltas), RoomWatcher    (section 6)
//
// It uses the official Socket.IO client (the global `io` from /static/vendor/socket.io.min.js).

export const PERIODS = ["all", "daily", "weekly"];
export const ACK_TIMEOUT_MS = 10000;

// What to tell a person for each error code of PROTOCOL.md (and the two the client makes itself:
// `connect_error` when the server cannot be reached, `timeout` when an ack never came).
export const ERROR_TEXT = {
  invalid_payload: "The server refused the request as malformed.",
  unauthorized:
    "Not allowed: this player id belongs to someone else (its guest key is kept in the browser that created it), " +
    "or guest sessions are off on this server.",
  not_found: "Not found.",
  method_not_allowed: "The server does not accept that request.",
  payload_too_large: "The request was too large.",
  unknown_action: "That action is not in the server's catalogue.",
  not_a_player: "Only players can do that: start a session first.",
  token_invalid: "The token was not accepted: start a new session or a new action.",
  token_expired: "The token has expired: start a new session or a new action.",
  too_fast: "Too fast: play a little longer before completing.",
  proof_invalid: "The proof of work was not accepted.",
  rate_limited: "Too many attempts.",
  suspended: "This player is suspended.",
  forbidden: "Only members of that guild may watch its room.",
  too_many_rooms: "This connection already watches too many rooms.",
  unavailable: "The server's storage is unavailable; nothing was credited. Try again shortly.",
  connect_error: "Cannot reach the server; retrying.",
  timeout: "The server did not answer in time.",
};

/** One line for a person from an error object `{code, message, retry_after_ms?}`. */
export function describeError(error) {
  const code = error?.code ?? "unavailable";
  let text = ERROR_TEXT[code] ?? "The request was refused.";
  if (error?.retry_after_ms != null) text += ` Retry in ${(error.retry_after_ms / 1000).toFixed(1)} s.`;
  const detail = error?.message && error.message !== code ? `: ${error.message}` : "";
  return `${text} (${code}${detail})`;
}

/** An HTTP or socket refusal, carrying the protocol's error object. */
export class ProtocolError extends Error {
  constructor(error, status = null) {
    super(describeError(error));
    this.error = error;
    this.code = error.code;
    this.status = status;
  }
}

// ---------------------------------------------------------------- HTTP (same origin)

async function request(method, path, body) {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw new ProtocolError({ code: "connect_error", message: String(err.message || err) });
  }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    throw new ProtocolError(data.error ?? { code: "unavailable", message: `HTTP ${resp.status}` }, resp.status);
  }
  return data;
}

/**
 * POST /api/v1/sessions → {token, player, expires_in}, plus `guest_key` when this session created
 * the player. `guild` may be empty (no guild). `guest_key`: the key this player was created with,
 * which a returning guest must send (keep it with GuestKeys).
 */
export function createSession({ player_id, name, region, guild, guest_key }) {
  const body = { player_id, name, region };
  if (guild) body.guild = guild;
  if (guest_key) body.guest_key = guest_key;
  return request("POST", "/api/v1/sessions", body);
}

/**
 * The guest keys of the players created in this browser, one per player id, in a Storage
 * (localStorage). A player's key is the only way back to it as a guest: it is never sent anywhere
 * but to this server's POST /api/v1/sessions. Storage that is disabled or full keeps nothing.
 */
export class GuestKeys {
  static PREFIX = "scoreboard.guest_key.";

  constructor(storage) {
    this.storage = storage;
  }

  get(playerId) {
    try {
      return this.storage?.getItem(GuestKeys.PREFIX + playerId) ?? null;
    } catch {
      return null;
    }
  }

  /** Keeps the key of a session's reply, when it has one (only the creating session does). */
  remember(playerId, session) {
    if (!session?.guest_key) return;
    try {
      this.storage?.setItem(GuestKeys.PREFIX + playerId, session.guest_key);
    } catch {
      // storage disabled or full: this browser will not get back to the player as a guest
    }
  }
}

/** GET /api/v1/actions → [{action, points, min_ms, ttl_s, difficulty, per_minute}]. */
export async function getActions() {
  return (await request("GET", "/api/v1/actions")).actions;
}

/** GET /api/v1/players/<id> → {player, score, ranks, achievements}. */
export function getPlayer(playerId) {
  return request("GET", `/api/v1/players/${encodeURIComponent(playerId)}`);
}

// ---------------------------------------------------------------- Socket.IO

/**
 * Opens the one socket of the page, on this page's origin.
 * transport "polling" forces long-polling (old browsers, strict proxies); anything else starts
 * on polling and upgrades to websocket, the Socket.IO default, which works behind most proxies.
 */
export function openSocket({ transport, token } = {}) {
  const transports = transport === "polling" ? ["polling"] : ["polling", "websocket"];
  return globalThis.io({ transports, auth: token ? { token } : {}, timeout: ACK_TIMEOUT_MS });
}

/** Calls `onChange(name)` with the engine transport now in use, and again after each upgrade. */
export function trackTransport(socket, onChange) {
  const follow = () => {
    const engine = socket.io.engine;
    if (!engine) return;
    onChange(engine.transport.name);
    engine.on("upgrade", (transport) => onChange(transport.name));
  };
  socket.io.on("open", follow); // a new engine on every (re)connection
  if (socket.io.engine && socket.io.engine.readyState === "open") follow();
}

/** Emits with an ack; resolves to the ack, or to a `timeout` error ack when none came. */
export async function call(socket, event, payload, timeoutMs = ACK_TIMEOUT_MS) {
  try {
    return await socket.timeout(timeoutMs).emitWithAck(event, payload);
  } catch {
    return { ok: false, error: { code: "timeout", message: `no ack for ${event} in ${timeoutMs} ms` } };
  }
}

// ---------------------------------------------------------------- Actions

/** Leading zero bits of a byte array. */
export function leadingZeroBits(bytes) {
  let n = 0;
  for (const byte of bytes) {
    if (byte === 0) {
      n += 8;
      continue;
    }
    return n + Math.clz32(byte) - 24;
  }
  return n;
}

/**
 * Finds a proof in a Web Worker: a decimal counter p such that SHA-256(UTF-8 of token + ":" + p)
 * starts with `difficulty` zero bits. Returns {promise, cancel}; the promise resolves to
 * {proof, attempts, zeroBits, ms}. onProgress(attempts) is called a few times a second.
 */
export function solveProof(token, difficulty, onProgress = () => {}) {
  const worker = new Worker(new URL("./pow-worker.js", import.meta.url));
  let cancel;
  const promise = new Promise((resolve, reject) => {
    cancel = () => {
      worker.terminate();
      reject(new Error("cancelled"));
    };
    worker.onmessage = ({ data }) => {
      if (data.type === "progress") onProgress(data.attempts);
      if (data.type === "found") {
        worker.terminate();
        resolve(data);
      }
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(event.message || "the proof-of-work worker failed"));
    };
    worker.postMessage({ token, difficulty });
  });
  return { promise, cancel };
}

/**
 * action:complete, retried with the same token and proof while no ack comes (a lost ack is
 * answered again with "duplicate": true, never credited twice), and once after `too_fast`.
 */
export async function complete(socket, token, proof, { attempts = 3 } = {}) {
  let ack;
  for (let i = 0; i < attempts; i++) {
    ack = await call(socket, "action:complete", { token, proof });
    if (ack.ok) return ack;
    const { code, retry_after_ms: wait } = ack.error;
    if (code === "too_fast" && wait != null) await sleep(wait + 20);
    else if (code !== "timeout") return ack;
  }
  return ack;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- Leaderboards

/**
 * One room's boards (all, daily, weekly), kept from a `watch` snapshot and `leaderboard:delta`s
 * exactly as PROTOCOL.md section 6 says. No I/O: feed it, read `boards`.
 */
export class LiveBoard {
  constructor(topN = 10) {
    this.topN = topN;
    this.room = null;
    this.seq = null;
    this.boards = { all: [], daily: [], weekly: [] };
  }

  /** The snapshot from a `watch` ack: {room, seq, boards: {all, daily, weekly}}. */
  load(snapshot) {
    this.room = snapshot.room;
    this.seq = snapshot.seq;
    for (const period of PERIODS) {
      this.boards[period] = [];
      for (const row of snapshot.boards[period] ?? []) this.#put(period, row);
    }
  }

  /**
   * Applies one delta. Returns {status}: "other-room", "stale" (seq ≤ ours: already included),
   * "gap" (seq > ours + 1: a delta was lost, watch again), or "applied" with
   * changes: {period: [{rank, row, from}]} where `from` is the row's previous rank, or null if new.
   */
  apply(delta) {
    if (delta.room !== this.room || this.seq === null) return { status: "other-room" };
    if (delta.seq <= this.seq) return { status: "stale" };
    if (delta.seq !== this.seq + 1) return { status: "gap" };
    for (const period of delta.reset ?? []) if (period in this.boards) this.boards[period] = [];
    const changes = {};
    for (const [period, rows] of Object.entries(delta.boards ?? {})) {
      if (!(period in this.boards)) continue;
      const before = new Map(this.boards[period].filter(Boolean).map((r) => [r.player_id, r.rank]));
      changes[period] = rows.map((row) => ({ rank: row.rank, row, from: before.get(row.player_id) ?? null }));
      for (const row of rows) this.#put(period, row);
    }
    this.seq = delta.seq;
    return { status: "applied", changes };
  }

  /** The rows of a period, best first (a rank with no row yet is skipped). */
  rows(period) {
    return this.boards[period].filter(Boolean);
  }

  #put(period, row) {
    if (row.rank < 1 || row.rank > this.topN) return; // rows past TOP_N drop
    this.boards[period][row.rank - 1] = row;
  }
}

/**
 * Watches one room on a socket and keeps a LiveBoard for it: buffers deltas while a `watch` is
 * in flight, watches again on a seq gap and after every (re)connect, and unwatches the room it
 * leaves. Callbacks: onSnapshot(board), onDelta(board, changes), onError(error), onRewatch(reason).
 */
export class RoomWatcher {
  constructor(socket, { topN = 10, onSnapshot, onDelta, onError, onRewatch } = {}) {
    this.socket = socket;
    this.board = new LiveBoard(topN);
    this.room = null;
    this.callbacks = { onSnapshot, onDelta, onError, onRewatch };
    this.pending = null; // deltas that arrived while a watch was in flight
    this.generation = 0;
    socket.on("leaderboard:delta", (delta) => this.#delta(delta));
    socket.on("connect", () => {
      if (this.room) this.#watch("reconnect");
    });
  }

  /** Starts watching `room` (for example "region:eu" or "guild:wolves") instead of the current one. */
  async watch(room) {
    const previous = this.room;
    this.room = room;
    if (previous && previous !== room && this.socket.connected) {
      await call(this.socket, "unwatch", { room: previous });
    }
    if (this.socket.connected) await this.#watch(null);
  }

  async #watch(reason) {
    const room = this.room;
    const generation = ++this.generation;
    this.pending = [];
    if (reason) this.callbacks.onRewatch?.(reason);
    const ack = await call(this.socket, "watch", { room });
    if (generation !== this.generation) return; // a newer watch superseded this one
    const buffered = this.pending;
    this.pending = null;
    if (!ack.ok) {
      this.board = new LiveBoard(this.board.topN);
      this.callbacks.onError?.(ack.error);
      return;
    }
    this.board.load(ack.snapshot);
    this.callbacks.onSnapshot?.(this.board);
    buffered.sort((a, b) => a.seq - b.seq).forEach((delta) => this.#delta(delta));
  }

  #delta(delta) {
    if (delta.room !== this.room) return; // a player's own rooms push deltas too
    if (this.pending) {
      this.pending.push(delta);
      return;
    }
    const result = this.board.apply(delta);
    if (result.status === "gap") this.#watch("gap");
    else if (result.status === "applied") this.callbacks.onDelta?.(this.board, result.changes, delta);
  }
}

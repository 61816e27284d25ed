// The reference client for PROTOCOL.md v1: everything a game front end needs to talk to
// Live Scoreboard, with no DOM code (static/app.js wires it to the page).
//
//   HTTP        createSession, GuestKeys, getActions, getPlayer   (sections 3, 5, 6)
//   Socket.IO   openSocket, call                              (sections 1, 4)
//   actions     solveProof (a Web Worker), complete()         (section 5)
//   watching    LiveBoard (snapshot + deltas), RoomWatcher    (section 6)
//   periods     countdown, dayKey/weekKey, previousKey/nextKey, readBoard (ended boards, v1.1)
//
// It uses the official Socket.IO client (the global `io` from /static/vendor/socket.io.min.js).

// The periods a server keeps by default; a snapshot names the ones it has (its `boards`' keys).
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
  conflict: "That tournament has started: it can no longer change.",
  tournament_closed: "That tournament is closed: it ended, or is not open to your region.",
  tournament_full: "That tournament has all the players it takes.",
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
 * One room's boards (all, daily, weekly, or whatever periods its snapshot holds), kept from a
 * `watch` snapshot and `leaderboard:delta`s exactly as PROTOCOL.md section 6 says, with when
 * each period starts over (`resetsAt`: period -> ISO time, null once that reset has passed and
 * the new time is not known yet). No I/O: feed it, read `boards`.
 */
export class LiveBoard {
  constructor(topN = 10) {
    this.topN = topN;
    this.room = null;
    this.seq = null;
    this.boards = Object.fromEntries(PERIODS.map((period) => [period, []]));
    this.resetsAt = {};
  }

  /** The snapshot from a `watch` ack: {room, seq, boards: {all, daily, weekly}, resets_at}. */
  load(snapshot) {
    this.room = snapshot.room;
    this.seq = snapshot.seq;
    const periods = snapshot.boards ? Object.keys(snapshot.boards) : PERIODS;
    this.boards = {};
    for (const period of periods.length ? periods : PERIODS) {
      this.boards[period] = [];
      for (const row of snapshot.boards?.[period] ?? []) this.#put(period, row);
    }
    this.resetsAt = { ...(snapshot.resets_at ?? {}) };
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
    for (const period of delta.reset ?? []) {
      if (period in this.boards) this.boards[period] = [];
      // Started over: the next reset is the server's to say (leaderboard:get, or a new snapshot).
      if (period in this.resetsAt) this.resetsAt[period] = null;
    }
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
 * in flight, watches again on a seq gap and after every (re)connect, unwatches the room it
 * leaves, and asks for a period's next `resets_at` when a delta has started it over. Callbacks: onSnapshot(board), onDelta(board, changes), onError(error), onRewatch(reason).
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

  /** Stops watching: unwatches the room (while connected) and forgets its board. */
  async leave() {
    const room = this.room;
    this.room = null;
    this.generation++; // a watch still in flight is dropped when it answers
    this.pending = null;
    this.board = new LiveBoard(this.board.topN);
    if (room && this.socket.connected) await call(this.socket, "unwatch", { room });
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
    else if (result.status === "applied") {
      this.callbacks.onDelta?.(this.board, result.changes, delta);
      for (const period of delta.reset ?? []) this.#askResetsAt(period);
    }
  }

  // A period started over: its next reset is in any leaderboard:get answer of that period.
  async #askResetsAt(period) {
    const { room, board } = this;
    if (board.resetsAt[period] !== null) return;
    const ack = await call(this.socket, "leaderboard:get", { board: room, period, limit: 1 });
    if (ack.ok && this.room === room && this.board === board && board.resetsAt[period] === null) {
      board.resetsAt[period] = ack.resets_at;
    }
  }
}

// ---------------------------------------------------------------- Periods: countdowns and ended boards (v1.1)

const DAY_MS = 86400000;
const WEEK_MS = 7 * DAY_MS;
const pad2 = (n) => String(n).padStart(2, "0");

/**
 * What a countdown shows for `msLeft`: "6 d 23:59:59", "01:02:03", "00:00:05"; "00:00:00" once
 * it has run out. Seconds round up, so it reaches 00:00:00 at the moment itself, not a second early.
 */
export function countdown(msLeft) {
  const total = Math.max(0, Math.ceil(msLeft / 1000));
  const days = Math.floor(total / 86400);
  const clock = `${pad2(Math.floor((total % 86400) / 3600))}:${pad2(Math.floor((total % 3600) / 60))}:${pad2(total % 60)}`;
  return days ? `${days} d ${clock}` : clock;
}

/** The UTC day of a time, as the server names it: "2026-11-30". */
export function dayKey(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The ISO week of a time, as the server names it: "2026-W48" (weeks start on Monday; week 1 holds a Thursday). */
export function weekKey(ms) {
  const day = Math.floor(ms / DAY_MS);
  const weekday = (new Date(day * DAY_MS).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date((day - weekday + 3) * DAY_MS); // the week belongs to its Thursday's year
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / WEEK_MS) + 1;
  return `${year}-W${pad2(week)}`;
}

/** When a period's board of `key` starts (UTC ms): its day's midnight, or its week's Monday. */
export function periodStart(period, key) {
  if (period === "daily") return Date.parse(`${key}T00:00:00Z`);
  const [year, week] = key.split("-W").map(Number);
  const jan4 = Date.UTC(year, 0, 4); // always in week 1
  const monday1 = jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * DAY_MS;
  return monday1 + (week - 1) * WEEK_MS;
}

/** The key of the `period` board a time falls in (daily: day, weekly: week). */
export function periodKey(period, ms) {
  return period === "daily" ? dayKey(ms) : weekKey(ms);
}

/** The key `steps` days or weeks from `key` (negative: back): stepKey("weekly", "2026-W01", -1) is "2025-W52". */
export function stepKey(period, key, steps) {
  const length = period === "daily" ? DAY_MS : WEEK_MS;
  return periodKey(period, periodStart(period, key) + steps * length);
}

/**
 * The key of the board live now, from the server's `resets_at` for that period (the instant it
 * ends): the server's clock decides what "today" is, not this browser's.
 */
export function liveKey(period, resetsAt) {
  return periodKey(period, Date.parse(resetsAt) - 1);
}

/**
 * Stepping through ended boards of one period: `shown` is null while the live board shows, else
 * the key of the ended board shown. previous/next return the key to read, or null for the live
 * board (next from the last ended one comes back to it). `live`: liveKey() of the period.
 */
export function previousKey(period, shown, live) {
  return stepKey(period, shown ?? live, -1);
}

export function nextKey(period, shown, live) {
  if (shown === null) return null;
  const next = stepKey(period, shown, 1);
  return next >= live ? null : next; // keys of one period sort as their times do
}

/**
 * leaderboard:get of one board; `key` (a day for daily, a week for weekly) reads that ended
 * board instead of the live one. Resolves to the ack: {ok, board, period, entries,
 * total_players, resets_at, day|week} or {ok: false, error}.
 */
export function readBoard(socket, { board, period, limit = 10, key = null }) {
  const payload = { board, period, limit };
  if (key && period === "daily") payload.day = key;
  if (key && period === "weekly") payload.week = key;
  return call(socket, "leaderboard:get", payload);
}

// static/client.js without a browser: the leaderboard rules of PROTOCOL.md section 6 (LiveBoard),
// re-watching on a seq gap and after a reconnect (RoomWatcher), error texts, and the proof of work's
// zero-bit count and fallback SHA-256 (static/pow-worker.js); for v1.1 the countdown, the day and
// ISO-week keys and stepping through them, reading ended boards, and tournaments' countdowns.
//
//   node --test tests/static/client.test.mjs

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import vm from "node:vm";

import {
  GuestKeys, LiveBoard, RoomWatcher, countdown, createSession, dayKey, describeError, leadingZeroBits, liveKey,
  nextKey, periodStart, previousKey, readBoard, stepKey, weekKey,
} from "../../static/client.js";
import { tournamentCountdown } from "../../static/tournaments.js";

const row = (rank, player_id, score) => ({ rank, player_id, name: player_id.toUpperCase(), score });
const snapshot = (seq, all = [], daily = [], weekly = []) => ({ room: "region:eu", seq, boards: { all, daily, weekly } });

test("a snapshot, then deltas replace the row at each rank", () => {
  const board = new LiveBoard(10);
  board.load(snapshot(5, [row(1, "a", 50), row(2, "b", 40)]));
  const result = board.apply({ room: "region:eu", seq: 6, at: "", boards: { all: [row(1, "c", 60), row(2, "a", 50), row(3, "b", 40)] } });
  assert.equal(result.status, "applied");
  assert.deepEqual(board.rows("all").map((r) => r.player_id), ["c", "a", "b"]);
  assert.deepEqual(result.changes.all.map((c) => [c.rank, c.from]), [[1, null], [2, 1], [3, 2]]);
  assert.equal(board.seq, 6);
  assert.deepEqual(board.rows("daily"), []);
});

test("deltas with seq at or below the snapshot's are ignored; a gap asks for a fresh watch", () => {
  const board = new LiveBoard(10);
  board.load(snapshot(10, [row(1, "a", 50)]));
  assert.equal(board.apply({ room: "region:eu", seq: 10, boards: { all: [row(1, "z", 1)] } }).status, "stale");
  assert.equal(board.apply({ room: "region:eu", seq: 3, boards: { all: [row(1, "z", 1)] } }).status, "stale");
  assert.equal(board.apply({ room: "region:eu", seq: 12, boards: { all: [row(1, "z", 1)] } }).status, "gap");
  assert.equal(board.apply({ room: "region:na", seq: 11, boards: { all: [row(1, "z", 1)] } }).status, "other-room");
  assert.deepEqual(board.rows("all"), [row(1, "a", 50)]);
  assert.equal(board.seq, 10);
});

test("reset clears that period's board before the delta is applied; rows past TOP_N drop", () => {
  const board = new LiveBoard(2);
  board.load(snapshot(1, [row(1, "a", 5), row(2, "b", 4), row(3, "c", 3)], [row(1, "a", 5), row(2, "b", 4)]));
  assert.deepEqual(board.rows("all").map((r) => r.player_id), ["a", "b"]);
  board.apply({ room: "region:eu", seq: 2, reset: ["daily"], boards: { daily: [row(1, "d", 1)], all: [row(3, "e", 9)] } });
  assert.deepEqual(board.rows("daily"), [row(1, "d", 1)]);
  assert.deepEqual(board.rows("all").map((r) => r.player_id), ["a", "b"]);
});

class FakeSocket {
  constructor(replies) {
    this.handlers = {};
    this.connected = true;
    this.calls = [];
    this.replies = replies;
  }
  on(event, handler) {
    (this.handlers[event] ??= []).push(handler);
  }
  fire(event, data) {
    for (const handler of this.handlers[event] ?? []) handler(data);
  }
  timeout() {
    return { emitWithAck: async (event, payload) => {
      this.calls.push([event, payload]);
      return this.replies.shift() ?? { ok: true };
    } };
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("RoomWatcher: watches, applies deltas, re-watches on a gap and after a reconnect", async () => {
  const socket = new FakeSocket([
    { ok: true, room: "region:eu", snapshot: snapshot(1, [row(1, "a", 5)]) },
    { ok: true, room: "region:eu", snapshot: snapshot(9, [row(1, "b", 9)]) },
    { ok: true, room: "region:eu", snapshot: snapshot(20, [row(1, "c", 20)]) },
  ]);
  const seen = [];
  const watcher = new RoomWatcher(socket, {
    onSnapshot: (board) => seen.push(["snapshot", board.seq]),
    onDelta: (board) => seen.push(["delta", board.seq]),
    onRewatch: (reason) => seen.push(["rewatch", reason]),
  });
  await watcher.watch("region:eu");
  socket.fire("leaderboard:delta", { room: "region:eu", seq: 2, boards: { all: [row(1, "a", 6)] } });
  socket.fire("leaderboard:delta", { room: "region:na", seq: 3, boards: { all: [row(1, "x", 6)] } });
  socket.fire("leaderboard:delta", { room: "region:eu", seq: 4, boards: { all: [row(1, "a", 7)] } }); // gap
  await tick();
  socket.fire("connect"); // a reconnect
  await tick();
  assert.deepEqual(seen, [["snapshot", 1], ["delta", 2], ["rewatch", "gap"], ["snapshot", 9], ["rewatch", "reconnect"], ["snapshot", 20]]);
  assert.deepEqual(socket.calls.map(([event]) => event), ["watch", "watch", "watch"]);
  assert.deepEqual(watcher.board.rows("all"), [row(1, "c", 20)]);
});

test("RoomWatcher: deltas that arrive while a watch is in flight are applied after its snapshot", async () => {
  let answer;
  const socket = new FakeSocket([]);
  socket.timeout = () => ({ emitWithAck: (event, payload) => {
    socket.calls.push([event, payload]);
    return new Promise((resolve) => { answer = resolve; });
  } });
  const watcher = new RoomWatcher(socket, {});
  const watching = watcher.watch("region:eu");
  socket.fire("leaderboard:delta", { room: "region:eu", seq: 6, boards: { all: [row(2, "b", 3)] } });
  socket.fire("leaderboard:delta", { room: "region:eu", seq: 5, boards: { all: [row(1, "z", 1)] } }); // in the snapshot
  answer({ ok: true, room: "region:eu", snapshot: snapshot(5, [row(1, "a", 5)]) });
  await watching;
  assert.deepEqual(watcher.board.rows("all"), [row(1, "a", 5), row(2, "b", 3)]);
  assert.equal(watcher.board.seq, 6);
});

test("RoomWatcher: switching rooms unwatches the previous one; a refusal is reported", async () => {
  const socket = new FakeSocket([
    { ok: true, room: "region:eu", snapshot: snapshot(1) },
    { ok: true },
    { ok: false, error: { code: "forbidden", message: "members only" } },
  ]);
  const errors = [];
  const watcher = new RoomWatcher(socket, { onError: (error) => errors.push(error.code) });
  await watcher.watch("region:eu");
  await watcher.watch("guild:wolves");
  assert.deepEqual(socket.calls, [["watch", { room: "region:eu" }], ["unwatch", { room: "region:eu" }], ["watch", { room: "guild:wolves" }]]);
  assert.deepEqual(errors, ["forbidden"]);
});

test("error texts name the protocol code, and the retry time when there is one", () => {
  assert.equal(
    describeError({ code: "rate_limited", message: "too many", retry_after_ms: 1500 }),
    "Too many attempts. Retry in 1.5 s. (rate_limited: too many)",
  );
  assert.match(describeError({ code: "token_expired" }), /expired.*\(token_expired\)$/);
  assert.match(describeError({ code: "something_new", message: "x" }), /refused.*\(something_new: x\)$/);
});

test("proof of work: zero bits, and the fallback SHA-256 matches node's", () => {
  assert.equal(leadingZeroBits(new Uint8Array([0, 0x0f, 0xff])), 12);
  assert.equal(leadingZeroBits(new Uint8Array([0x80])), 0);
  assert.equal(leadingZeroBits(new Uint8Array([0, 0])), 16);
  const context = { self: {}, TextEncoder, performance, Uint8Array, Uint32Array, DataView, ArrayBuffer, Math };
  vm.createContext(context);
  vm.runInContext(readFileSync(new URL("../../static/pow-worker.js", import.meta.url), "utf8"), context);
  for (const text of ["", "abc", "x".repeat(55), "x".repeat(56), "x".repeat(64), "tok.en:123", "é".repeat(300)]) {
    const bytes = new TextEncoder().encode(text);
    assert.equal(Buffer.from(context.sha256(bytes)).toString("hex"), createHash("sha256").update(bytes).digest("hex"));
  }
});

test("guest keys: kept per player id from the creating session, sent by later sessions", async () => {
  const items = new Map();
  const storage = { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, String(v)) };
  const keys = new GuestKeys(storage);
  keys.remember("ann", { token: "t", guest_key: "K".repeat(43) });
  keys.remember("ann", { token: "t2" }); // a returning session has no key: the kept one stays
  assert.equal(keys.get("ann"), "K".repeat(43));
  assert.equal(keys.get("bob"), null);
  const broken = new GuestKeys({ getItem: () => { throw new Error("denied"); }, setItem: () => { throw new Error("full"); } });
  broken.remember("ann", { guest_key: "k" });
  assert.equal(broken.get("ann"), null);
  assert.equal(new GuestKeys(null).get("ann"), null);

  const sent = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (path, init) => {
    sent.push([path, JSON.parse(init.body)]);
    return { ok: true, status: 201, json: async () => ({ token: "t" }) };
  };
  try {
    await createSession({ player_id: "ann", name: "Ann", region: "eu", guild: "", guest_key: keys.get("ann") });
    await createSession({ player_id: "bob", name: "Bob", region: "eu", guild: "owls", guest_key: keys.get("bob") });
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.deepEqual(sent, [
    ["/api/v1/sessions", { player_id: "ann", name: "Ann", region: "eu", guest_key: "K".repeat(43) }],
    ["/api/v1/sessions", { player_id: "bob", name: "Bob", region: "eu", guild: "owls" }],
  ]);
});

test("the periods are the snapshot's, with when each starts over; a reset forgets that time", () => {
  const board = new LiveBoard(10);
  board.load({
    room: "region:eu", seq: 1, boards: { all: [row(1, "a", 5)], daily: [row(1, "a", 5)], hourly: [row(1, "a", 5)] },
    resets_at: { daily: "2026-12-01T00:00:00.000Z", hourly: "2026-11-30T13:00:00.000Z" },
  });
  assert.deepEqual(Object.keys(board.boards), ["all", "daily", "hourly"]);
  assert.equal(board.resetsAt.hourly, "2026-11-30T13:00:00.000Z");
  const result = board.apply({ room: "region:eu", seq: 2, reset: ["hourly"], boards: { hourly: [row(1, "b", 1)] } });
  assert.equal(result.status, "applied");
  assert.deepEqual(board.rows("hourly"), [row(1, "b", 1)]);
  assert.equal(board.resetsAt.hourly, null);
  assert.equal(board.resetsAt.daily, "2026-12-01T00:00:00.000Z");
});

test("a countdown reads days, hours, minutes and seconds, rounding up to the moment itself", () => {
  assert.equal(countdown(5000), "00:00:05");
  assert.equal(countdown(4001), "00:00:05");
  assert.equal(countdown(1), "00:00:01");
  assert.equal(countdown(0), "00:00:00");
  assert.equal(countdown(-3000), "00:00:00");
  assert.equal(countdown((3600 + 2 * 60 + 3) * 1000), "01:02:03");
  assert.equal(countdown(86400000), "1 d 00:00:00");
  assert.equal(countdown(7 * 86400000 - 1), "7 d 00:00:00");
  assert.equal(countdown(7 * 86400000 - 1000), "6 d 23:59:59");
});

const utc = (y, m, d, h = 0, min = 0, s = 0) => Date.UTC(y, m - 1, d, h, min, s);

test("day and week keys are the server's: the UTC day and the ISO week", () => {
  assert.equal(dayKey(utc(2026, 11, 23)), "2026-11-23");
  assert.equal(dayKey(utc(2026, 11, 23) - 1), "2026-11-22");
  for (const [at, key] of [
    [utc(2026, 11, 23), "2026-W48"], [utc(2026, 11, 29, 23, 59, 59), "2026-W48"], [utc(2026, 11, 30), "2026-W49"],
    [utc(2026, 1, 1), "2026-W01"], [utc(2025, 12, 29), "2026-W01"], [utc(2025, 12, 28, 23, 59, 59), "2025-W52"],
    [utc(2026, 12, 31), "2026-W53"], [utc(2027, 1, 1), "2026-W53"], [utc(2027, 1, 3, 23, 59, 59), "2026-W53"],
    [utc(2027, 1, 4), "2027-W01"], [utc(2024, 12, 30), "2025-W01"], [utc(2021, 1, 3), "2020-W53"],
    [utc(2026, 3, 2), "2026-W10"],
  ]) assert.equal(weekKey(at), key, new Date(at).toISOString());
  assert.equal(periodStart("weekly", "2026-W48"), utc(2026, 11, 23));
  assert.equal(periodStart("weekly", "2026-W01"), utc(2025, 12, 29));
  assert.equal(periodStart("weekly", "2020-W53"), utc(2020, 12, 28));
  assert.equal(periodStart("daily", "2026-11-30"), utc(2026, 11, 30));
});

test("stepping a day or a week across months, years and 53-week years", () => {
  assert.equal(stepKey("daily", "2026-12-01", -1), "2026-11-30");
  assert.equal(stepKey("daily", "2027-01-01", -1), "2026-12-31");
  assert.equal(stepKey("daily", "2028-02-28", 1), "2028-02-29");
  assert.equal(stepKey("daily", "2028-02-29", 1), "2028-03-01");
  assert.equal(stepKey("weekly", "2026-W49", -1), "2026-W48");
  assert.equal(stepKey("weekly", "2027-W01", -1), "2026-W53");
  assert.equal(stepKey("weekly", "2026-W53", 1), "2027-W01");
  assert.equal(stepKey("weekly", "2026-W01", -1), "2025-W52");
  assert.equal(stepKey("weekly", "2026-W48", -5), "2026-W43");
});

test("the live board's key comes from the server's resets_at; previous and next walk back and return to live", () => {
  // The server says today ends at 2026-12-01 00:00 UTC: today is 2026-11-30 whatever this machine's clock says.
  const live = liveKey("daily", "2026-12-01T00:00:00.000Z");
  assert.equal(live, "2026-11-30");
  assert.equal(liveKey("weekly", "2026-11-30T00:00:00.000Z"), "2026-W48");
  let shown = previousKey("daily", null, live);
  assert.equal(shown, "2026-11-29");
  shown = previousKey("daily", shown, live);
  assert.equal(shown, "2026-11-28");
  assert.equal(nextKey("daily", shown, live), "2026-11-29");
  assert.equal(nextKey("daily", "2026-11-29", live), null); // back to the live board
  assert.equal(nextKey("daily", null, live), null);
  assert.equal(previousKey("weekly", null, "2027-W01"), "2026-W53");
  assert.equal(nextKey("weekly", "2026-W52", "2027-W01"), "2026-W53");
  assert.equal(nextKey("weekly", "2026-W53", "2027-W01"), null);
});

test("readBoard asks for an ended day or week with the parameter of its period", async () => {
  const sent = [];
  const socket = {
    timeout: () => ({ emitWithAck: async (event, payload) => (sent.push([event, payload]), { ok: true }) }),
  };
  await readBoard(socket, { board: "region:eu", period: "daily", limit: 10, key: "2026-11-29" });
  await readBoard(socket, { board: "global", period: "weekly", limit: 5, key: "2026-W47" });
  await readBoard(socket, { board: "tournament:cup", period: "all", limit: 10 });
  assert.deepEqual(sent, [
    ["leaderboard:get", { board: "region:eu", period: "daily", limit: 10, day: "2026-11-29" }],
    ["leaderboard:get", { board: "global", period: "weekly", limit: 5, week: "2026-W47" }],
    ["leaderboard:get", { board: "tournament:cup", period: "all", limit: 10 }],
  ]);
});

test("a tournament's countdown: to its start while upcoming, to its end while running, then ended", () => {
  const t = { start_at: "2026-11-30T12:00:00.000Z", end_at: "2026-11-30T14:00:00.000Z" };
  assert.equal(tournamentCountdown(t, utc(2026, 11, 29, 11, 59, 55)), "starts in 1 d 00:00:05");
  assert.equal(tournamentCountdown(t, utc(2026, 11, 30, 12)), "ends in 02:00:00");
  assert.equal(tournamentCountdown(t, utc(2026, 11, 30, 13, 59, 59)), "ends in 00:00:01");
  assert.ok(tournamentCountdown(t, utc(2026, 11, 30, 14)).startsWith("ended "));
});

test("RoomWatcher: leave unwatches the room, forgets its board, and does not come back on a reconnect", async () => {
  const socket = new FakeSocket([{ ok: true, room: "tournament:cup", snapshot: { room: "tournament:cup", seq: 3, boards: { all: [row(1, "a", 5)] } } }]);
  const watcher = new RoomWatcher(socket, {});
  await watcher.watch("tournament:cup");
  assert.deepEqual(Object.keys(watcher.board.boards), ["all"]); // a tournament's board has period all only
  await watcher.leave();
  assert.equal(watcher.room, null);
  assert.equal(watcher.board.seq, null);
  socket.fire("leaderboard:delta", { room: "tournament:cup", seq: 4, boards: { all: [row(1, "b", 9)] } });
  socket.fire("connect");
  await tick();
  assert.deepEqual(socket.calls, [["watch", { room: "tournament:cup" }], ["unwatch", { room: "tournament:cup" }]]);
  assert.deepEqual(watcher.board.rows("all"), []);
});

test("RoomWatcher: a delta that starts a period over clears it, and the next reset is asked of the server", async () => {
  const socket = new FakeSocket([
    { ok: true, room: "region:eu", snapshot: { ...snapshot(1, [], [row(1, "a", 5)], [row(1, "a", 5)]),
      resets_at: { daily: "2026-12-01T00:00:00.000Z", weekly: "2026-12-07T00:00:00.000Z" } } },
    { ok: true, board: "region:eu", period: "daily", entries: [], total_players: 0, resets_at: "2026-12-02T00:00:00.000Z" },
  ]);
  const seen = [];
  const watcher = new RoomWatcher(socket, { onDelta: (board) => seen.push(board.rows("daily")) });
  await watcher.watch("region:eu");
  socket.fire("leaderboard:delta", { room: "region:eu", seq: 2, reset: ["daily"], boards: { daily: [row(1, "b", 1)] } });
  assert.deepEqual(seen, [[row(1, "b", 1)]]);
  assert.equal(watcher.board.resetsAt.daily, null); // until the server says
  await tick();
  assert.deepEqual(socket.calls[1], ["leaderboard:get", { board: "region:eu", period: "daily", limit: 1 }]);
  assert.equal(watcher.board.resetsAt.daily, "2026-12-02T00:00:00.000Z");
  assert.equal(watcher.board.resetsAt.weekly, "2026-12-07T00:00:00.000Z");
});

// static/client.js without a browser: the leaderboard rules of PROTOCOL.md section 6 (LiveBoard),
// re-watching on a seq gap and after a reconnect (RoomWatcher), error texts, and the proof of work's
// zero-bit count and fallback SHA-256 (static/pow-worker.js).
//
//   node --test tests/static/client.test.mjs

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import vm from "node:vm";

import { GuestKeys, LiveBoard, RoomWatcher, createSession, describeError, leadingZeroBits } from "../../static/client.js";

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

// The page: wires static/client.js (the protocol) to static/index.html.
//
// Query parameters:
//   ?view=player|spectator|tournaments   which tab opens first
//   ?transport=polling       long-polling only (default: polling, then the upgrade to websocket)
//   ?room=region:eu          the room the Watch tab opens on
//   ?top_n=10                rows per board (the server's TOP_N; 10 by default)
//
// One socket serves both tabs: it connects as a spectator, and again with the session token once
// the player has a session (a guild's room can only be watched by its members).

import { boardRow, emptyRow, formatNumber as fmt } from "./board-table.js";
import {
  GuestKeys,
  PERIODS,
  RoomWatcher,
  call,
  complete,
  countdown,
  createSession,
  describeError,
  getActions,
  getPlayer,
  liveKey,
  nextKey,
  openSocket,
  previousKey,
  readBoard,
  solveProof,
  stepKey,
  trackTransport,
} from "./client.js";
import { mountTournaments } from "./tournaments.js";

// The server's default REGIONS; there is no endpoint listing them.
const REGIONS = ["na", "eu", "apac", "sa", "oce"];
const TOAST_MS = 8000;

const params = new URLSearchParams(location.search);
const transport = params.get("transport") === "polling" ? "polling" : "default";
const topN = Math.max(1, Math.min(100, Number(params.get("top_n")) || 10));

const $ = (id) => document.getElementById(id);

const state = {
  session: null, // {token, player, expires_in}
  actions: [],
  challenge: null,
  solver: null,
  countdown: null,
  proof: null,
  playReadyAt: 0,
  refreshRanks: null,
};

// The periods that start over, each with a countdown to its reset and its ended boards to step
// back through. Per period: `shown`, the key of the ended board on show (null: the live one);
// `live`, the live board's key; `oldest`, the oldest readable once the server said not_found;
// `asked`, a count of reads, so that the answer to one overtaken by another is dropped.
const STEPPED = ["daily", "weekly"];
const UNIT = { daily: "day", weekly: "week" };
const LIVE_TITLE = { daily: "Today", weekly: "This week" };
const pastBoards = Object.fromEntries(
  STEPPED.map((p) => [p, { shown: null, live: null, oldest: null, asking: false, asked: 0 }]),
);

// ---------------------------------------------------------------- small DOM helpers

function show(el, visible = true) {
  el.hidden = !visible;
}

function notice(el, text) {
  el.textContent = text ?? "";
  show(el, Boolean(text));
}

function toast(title, body, kind = "info") {
  const item = document.createElement("div");
  item.className = `toast toast-${kind}`;
  const strong = document.createElement("strong");
  strong.textContent = title;
  const text = document.createElement("span");
  text.textContent = body;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => item.remove());
  item.append(strong, text, close);
  $("toasts").append(item);
  setTimeout(() => item.remove(), TOAST_MS);
}

// ---------------------------------------------------------------- tabs

const tabs = [$("tab-player"), $("tab-spectator"), $("tab-tournaments")];

function selectView(view, { focus = false } = {}) {
  for (const tab of tabs) {
    const selected = tab.id === `tab-${view}`;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    show($(tab.getAttribute("aria-controls")), selected);
    if (selected && focus) tab.focus();
  }
  const url = new URL(location.href);
  url.searchParams.set("view", view);
  history.replaceState(null, "", url);
  if (view === "spectator" && !watcher.room) {
    // First visit to the Watch tab: a player watches its own region unless ?room= said otherwise.
    if (state.session && !params.has("room")) $("room-kind").value = `region:${state.session.player.region}`;
    watchSelectedRoom();
  }
}

tabs.forEach((tab, i) => {
  tab.addEventListener("click", () => selectView(tab.id.slice(4)));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    selectView(tabs[(i + step + tabs.length) % tabs.length].id.slice(4), { focus: true });
  });
});

// ---------------------------------------------------------------- the socket and its indicators

const socket = openSocket({ transport });
mountTournaments(socket, $("view-tournaments"), { topN });

function setConnection(stateName, text) {
  const el = $("connection");
  el.dataset.state = stateName;
  el.textContent = text;
}

trackTransport(socket, (name) => {
  const el = $("transport");
  el.dataset.transport = name;
  el.textContent = `Transport: ${name}`;
});

socket.on("connect", () => {
  setConnection("connected", "Connected");
  notice($("banner"), "");
});

socket.on("disconnect", () => {
  if (socket.active) setConnection("reconnecting", "Reconnecting…");
  else setConnection("disconnected", "Disconnected");
  if (watcher.room) $("watch-status").textContent = `Connection lost: ${watcher.room} resumes when it is back.`;
});

socket.io.on("reconnect_attempt", (attempt) => setConnection("reconnecting", `Reconnecting (attempt ${attempt})…`));

socket.on("connect_error", (err) => {
  if (socket.active) {
    // Transport-level failure: the client retries by itself.
    setConnection("reconnecting", "Server unreachable, retrying…");
    notice($("banner"), describeError({ code: "connect_error", message: err.message }));
    return;
  }
  // The server refused the connection: a bad or expired session token (PROTOCOL.md section 4).
  // Carry on as a spectator and say why, where it stays until the next session.
  setConnection("disconnected", "Refused");
  notice(
    $("player-error"),
    `${describeError({ code: err.message, message: "the session was refused" })} ` +
      "You are now a spectator: get a new session to play.",
  );
  if (state.challenge) finishChallenge();
  endSession();
});

// ---------------------------------------------------------------- player: session

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return `guest-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function storedPlayerId() {
  try {
    let id = localStorage.getItem("scoreboard.player_id");
    if (!id) {
      id = randomId();
      localStorage.setItem("scoreboard.player_id", id);
    }
    return id;
  } catch {
    return randomId(); // storage disabled
  }
}

// The guest key of each player this browser created, beside its id: the way back to it (PROTOCOL.md 3).
const guestKeys = new GuestKeys(storage());

function storage() {
  try {
    return globalThis.localStorage;
  } catch {
    return null; // storage disabled
  }
}

for (const region of REGIONS) $("region").add(new Option(region, region));
$("player-id").value = storedPlayerId();

$("session-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  notice($("player-error"), "");
  const form = event.currentTarget;
  if (!form.checkValidity()) {
    form.reportValidity();
    return;
  }
  const body = {
    player_id: $("player-id").value.trim(),
    name: $("name").value.trim(),
    region: $("region").value,
    guild: $("guild").value.trim(),
  };
  $("session-submit").disabled = true;
  try {
    state.session = await createSession({ ...body, guest_key: guestKeys.get(body.player_id) });
    guestKeys.remember(body.player_id, state.session);
  } catch (err) {
    notice($("player-error"), err.message);
    return;
  } finally {
    $("session-submit").disabled = false;
  }
  try {
    localStorage.setItem("scoreboard.player_id", body.player_id);
  } catch {
    // storage disabled: fine
  }
  const { player, expires_in } = state.session;
  const guild = player.guild ? `, guild ${player.guild}` : "";
  $("session-info").textContent =
    `Playing as ${player.name} (${player.player_id}) in region ${player.region}${guild}. ` +
    `The session lasts ${Math.round(expires_in / 60)} minutes.`;
  show($("session-box"));
  show($("session-form"), false);
  $("identity").textContent = `Player: ${player.name}`;
  updateStartButton();
  // Reconnect as the player: it joins its region, guild and player rooms.
  socket.auth = { token: state.session.token };
  socket.disconnect().connect();
  refreshProfile();
});

$("change-player").addEventListener("click", () => {
  show($("session-form"));
  $("name").focus();
});

function endSession() {
  state.session = null;
  socket.auth = {};
  $("identity").textContent = "Spectator";
  show($("session-box"), false);
  show($("session-form"));
  updateStartButton();
  if (!socket.connected) socket.connect(); // carry on as a spectator
}

// ---------------------------------------------------------------- player: the action catalogue

async function loadActions() {
  const fieldset = $("actions");
  try {
    state.actions = await getActions();
  } catch (err) {
    fieldset.querySelector(".hint").textContent = err.message;
    return;
  }
  fieldset.replaceChildren(fieldset.querySelector("legend"));
  state.actions.forEach((action, i) => {
    const label = document.createElement("label");
    label.className = "choice";
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "action";
    input.value = action.action;
    input.checked = i === 0;
    const title = document.createElement("strong");
    title.textContent = action.action;
    const rules = document.createElement("span");
    rules.className = "hint";
    rules.textContent =
      ` ${fmt(action.points)} points · play ≥ ${(action.min_ms / 1000).toFixed(1)} s · ` +
      `${action.difficulty}-bit proof · ${action.per_minute}/min`;
    label.append(input, title, rules);
    fieldset.append(label);
  });
  updateStartButton();
}

function updateStartButton() {
  const busy = state.challenge !== null;
  $("start").disabled = !state.session || busy || state.actions.length === 0;
  $("start-hint").textContent = !state.session
    ? "Get a session first."
    : busy
      ? "Finish the current action first."
      : "The server sends a signed challenge; your browser then proves its work.";
}

// ---------------------------------------------------------------- player: challenge, proof, completion

$("action-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const chosen = new FormData(event.currentTarget).get("action");
  if (!chosen || !state.session) return;
  notice($("player-error"), "");
  $("start").disabled = true;
  const ack = await call(socket, "action:start", { action: chosen });
  if (!ack.ok) {
    notice($("player-error"), describeError(ack.error));
    updateStartButton();
    return;
  }
  beginChallenge(chosen, ack.challenge);
});

function beginChallenge(action, challenge) {
  state.challenge = challenge;
  state.proof = null;
  state.playReadyAt = performance.now() + challenge.min_ms;
  updateStartButton();
  $("ch-action").textContent = action;
  $("ch-id").textContent = challenge.action_id;
  $("ch-difficulty").textContent = `${challenge.difficulty} zero bits`;
  $("ch-expires").textContent = new Date(challenge.expires_at).toLocaleTimeString();
  $("complete").disabled = true;
  $("pow-status").textContent = "Solving the proof of work…";
  show($("challenge"));

  // Play time: the server refuses a completion before min_ms (too_fast).
  const tick = () => {
    const left = Math.max(0, state.playReadyAt - performance.now());
    $("play-progress").value = challenge.min_ms ? 1 - left / challenge.min_ms : 1;
    $("play-status").textContent = left > 0 ? `Playing… ${(left / 1000).toFixed(1)} s left` : "Played long enough.";
    if (left === 0) {
      clearInterval(state.countdown);
      updateCompleteButton();
    }
  };
  clearInterval(state.countdown);
  state.countdown = setInterval(tick, 100);
  tick();

  state.solver = solveProof(challenge.token, challenge.difficulty, (attempts) => {
    $("pow-status").textContent = `Solving the proof of work… ${fmt(attempts)} hashes`;
  });
  state.solver.promise.then(
    (found) => {
      if (state.challenge !== challenge) return;
      state.proof = found.proof;
      $("pow-status").textContent =
        `Proof found: ${found.proof} (${found.zeroBits} zero bits, ${fmt(found.attempts)} hashes, ` +
        `${Math.round(found.ms)} ms).`;
      updateCompleteButton();
    },
    (err) => {
      if (err.message !== "cancelled") notice($("player-error"), `Proof of work failed: ${err.message}`);
    },
  );
}

function updateCompleteButton() {
  $("complete").disabled = !(state.proof && performance.now() >= state.playReadyAt);
}

$("complete").addEventListener("click", async () => {
  const challenge = state.challenge;
  if (!challenge || !state.proof) return;
  $("complete").disabled = true;
  const ack = await complete(socket, challenge.token, state.proof);
  if (!ack.ok) {
    notice($("player-error"), describeError(ack.error));
    const retryable = ["timeout", "unavailable", "too_fast"].includes(ack.error.code);
    if (retryable) $("complete").disabled = false; // same token and proof: safe to retry
    else finishChallenge();
    return;
  }
  notice($("player-error"), "");
  finishChallenge();
  showAck(ack);
});

function finishChallenge() {
  state.solver?.cancel();
  clearInterval(state.countdown);
  state.challenge = null;
  state.proof = null;
  show($("challenge"), false);
  updateStartButton();
}

function showAck(ack) {
  show($("result"));
  const dup = ack.duplicate ? " (a repeat of an action already credited: nothing more was added)" : "";
  $("ack-summary").textContent = `+${fmt(ack.points)} points${dup}. Total score ${fmt(ack.score.total)}.`;
  $("score-total").textContent = fmt(ack.score.total);
  $("score-daily").textContent = fmt(ack.score.daily);
  $("score-weekly").textContent = fmt(ack.score.weekly);
  $("achievements").textContent = ack.achievements.length ? ack.achievements.join(", ") : "none new";
  $("ack-json").textContent = JSON.stringify(ack, null, 2);
  // Ranks come from the leaderboards, which the server updates within a flush interval: read them
  // now, when a delta for the player's rooms arrives, and once more a little later.
  refreshProfile();
  setTimeout(refreshProfile, 2500);
}

async function refreshProfile() {
  const session = state.session;
  if (!session) return;
  let profile;
  try {
    profile = await getPlayer(session.player.player_id);
  } catch (err) {
    if (err.code !== "not_found") notice($("player-error"), err.message);
    return;
  }
  if (state.session !== session) return;
  const { ranks, score, achievements } = profile;
  $("rank-global").textContent = ranks.global ? `#${ranks.global}` : "–";
  $("rank-region").textContent = ranks.region ? `#${ranks.region}` : "–";
  $("rank-guild").textContent = ranks.guild ? `#${ranks.guild}` : "–";
  $("score-total").textContent = fmt(score.total);
  $("score-daily").textContent = fmt(score.daily);
  $("score-weekly").textContent = fmt(score.weekly);
  if (achievements.length) $("achievements").textContent = achievements.map((a) => a.name).join(", ");
}

let profileTimer = null;
socket.on("leaderboard:delta", (delta) => {
  const player = state.session?.player;
  if (!player || $("result").hidden) return;
  if (delta.room === `region:${player.region}` || delta.room === `guild:${player.guild}`) {
    clearTimeout(profileTimer);
    profileTimer = setTimeout(refreshProfile, 100);
  }
});

socket.on("achievement:unlocked", (achievement) => {
  toast(`Achievement unlocked: ${achievement.name}`, achievement.description, "achievement");
});

// ---------------------------------------------------------------- spectator

const watcher = new RoomWatcher(socket, {
  topN,
  onSnapshot: (board) => {
    notice($("spectator-error"), "");
    $("watch-status").textContent = `Watching ${board.room}: top ${board.topN}, live.`;
    renderBoards(board, null);
  },
  onDelta: (board, changes, delta) => renderBoards(board, changes, delta),
  onError: (error) => {
    notice($("spectator-error"), describeError(error));
    $("watch-status").textContent = "Not watching.";
    $("watch-seq").textContent = "";
    renderBoards(watcher.board, null);
  },
  onRewatch: (reason) => {
    $("watch-seq").textContent =
      reason === "gap" ? "A delta was missed: fetching a fresh snapshot…" : "Reconnected: fetching a fresh snapshot…";
  },
});

for (const region of REGIONS) $("room-kind").add(new Option(`Region ${region}`, `region:${region}`));
$("room-kind").add(new Option("A guild…", "guild"));

const initialRoom = params.get("room") ?? "";
if (initialRoom.startsWith("guild:")) {
  $("room-kind").value = "guild";
  $("guild-room").value = initialRoom.slice("guild:".length);
} else if (REGIONS.includes(initialRoom.slice("region:".length))) {
  $("room-kind").value = initialRoom;
}

function syncGuildField() {
  const guild = $("room-kind").value === "guild";
  show($("guild-room-field"), guild);
  $("guild-room").required = guild;
}
$("room-kind").addEventListener("change", syncGuildField);
syncGuildField();

function selectedRoom() {
  const kind = $("room-kind").value;
  if (kind !== "guild") return kind;
  const id = $("guild-room").value.trim().replace(/^guild:/, "");
  return id ? `guild:${id}` : null;
}

function watchSelectedRoom() {
  const room = selectedRoom();
  if (!room) {
    notice($("spectator-error"), "Type a guild id to watch its room.");
    return;
  }
  notice($("spectator-error"), "");
  $("watch-status").textContent = `Opening ${room}…`;
  for (const period of STEPPED) backToLive(period); // another room's past is another board
  watcher.watch(room);
}

$("watch-form").addEventListener("submit", (event) => {
  event.preventDefault();
  watchSelectedRoom();
});

function renderBoards(board, changes, delta) {
  for (const period of PERIODS) {
    if (pastBoards[period]?.shown) continue; // an ended board shows there: it no longer changes
    const moved = new Map((changes?.[period] ?? []).map((c) => [c.rank, c]));
    const rows = board.rows(period).map((row) => renderRow(row, moved.get(row.rank)));
    const body = $(`board-${period}`);
    if (rows.length === 0) rows.push(emptyRow(board.room ? "No scores yet." : "–"));
    body.replaceChildren(...rows);
  }
  if (board.seq !== null) {
    const at = delta ? ` · last delta ${new Date(delta.at).toLocaleTimeString()}` : "";
    $("watch-seq").textContent = `seq ${board.seq}${at}`;
  }
}

// A board row, the player's own marked, with how it changed in the last delta (`change`: the
// delta's {rank, from} for the row, or none).
function renderRow(row, change) {
  const tr = boardRow(row);
  if (state.session?.player.player_id === row.player_id) tr.classList.add("me");
  if (change) {
    let cls = "row-new";
    let label = "new";
    if (change.from !== null && change.from > row.rank) [cls, label] = ["row-up", `up from ${change.from}`];
    else if (change.from !== null && change.from < row.rank) [cls, label] = ["row-down", `down from ${change.from}`];
    else if (change.from === row.rank) [cls, label] = ["row-score", "score changed"];
    tr.classList.add(cls);
    const mark = document.createElement("span");
    mark.className = "change";
    mark.textContent = { "row-up": "▲", "row-down": "▼", "row-new": "★", "row-score": "•" }[cls];
    mark.title = label;
    mark.setAttribute("aria-label", label);
    tr.querySelector("td.player").append(" ", mark);
  }
  return tr;
}

renderBoards(watcher.board, null);

// ---------------------------------------------------------------- spectator: resets and ended boards (v1.1)

function livePeriodKey(period) {
  const resetsAt = watcher.board.resetsAt[period];
  if (resetsAt) pastBoards[period].live = liveKey(period, resetsAt);
  return pastBoards[period].live; // the last known while a reset's new time is being asked for
}

async function step(period, key) {
  const h = pastBoards[period];
  const room = watcher.room;
  if (key === null) {
    backToLive(period);
    return;
  }
  const asked = ++h.asked;
  setStepping(period, true);
  const ack = await readBoard(socket, { board: room, period, limit: topN, key });
  if (asked !== h.asked) return; // back to live, or another room, meanwhile
  setStepping(period, false);
  if (!ack.ok) {
    if (ack.error.code === "not_found") {
      h.oldest = stepKey(period, key, 1);
      say(period, `The board of ${key} is no longer kept (ended boards stay readable for the server's ` +
        `BOARD_HISTORY_DAYS): ${h.oldest} is as far back as it goes.`);
    } else {
      say(period, describeError(ack.error));
    }
    renderSteps(period);
    return;
  }
  h.shown = key;
  say(period, `${key} has ended: its board is final, ${fmt(ack.total_players)} player` +
    `${ack.total_players === 1 ? "" : "s"}. Live deltas do not change it.`);
  $(`title-${period}`).textContent = `${key} (ended)`;
  const tbody = $(`board-${period}`);
  tbody.dataset.ended = key;
  const rows = ack.entries.map((row) => renderRow(row, null));
  if (rows.length === 0) rows.push(emptyRow(`No scores that ${UNIT[period]}.`));
  tbody.replaceChildren(...rows);
  renderSteps(period);
  tickResets();
}

function backToLive(period) {
  const h = pastBoards[period];
  Object.assign(h, { shown: null, oldest: null, asking: false, asked: h.asked + 1 });
  $(`title-${period}`).textContent = LIVE_TITLE[period];
  delete $(`board-${period}`).dataset.ended;
  say(period, "");
  renderBoards(watcher.board, null);
  renderSteps(period);
  tickResets();
}

function say(period, text) {
  notice($(`history-${period}`), text);
}

function setStepping(period, busy) {
  pastBoards[period].asking = busy;
  renderSteps(period);
}

function renderSteps(period) {
  const h = pastBoards[period];
  const live = livePeriodKey(period);
  const idle = Boolean(watcher.room && live) && !h.asking;
  $(`prev-${period}`).disabled = !idle || (h.oldest !== null && (h.shown ?? live) <= h.oldest);
  $(`next-${period}`).disabled = !idle || h.shown === null;
  show($(`live-${period}`), h.shown !== null);
}

for (const period of STEPPED) {
  $(`prev-${period}`).addEventListener("click", () => {
    const live = livePeriodKey(period);
    if (live) step(period, previousKey(period, pastBoards[period].shown, live));
  });
  $(`next-${period}`).addEventListener("click", () => {
    const live = livePeriodKey(period);
    if (live) step(period, nextKey(period, pastBoards[period].shown, live));
  });
  $(`live-${period}`).addEventListener("click", () => backToLive(period));
}

function tickResets() {
  const now = Date.now();
  for (const period of STEPPED) {
    const h = pastBoards[period];
    const el = $(`clock-${period}`);
    const resetsAt = watcher.board.resetsAt[period];
    if (h.shown) {
      el.textContent = `Final: this ${UNIT[period]} has ended.`;
    } else if (!watcher.room || resetsAt === undefined) {
      el.textContent = "Resets in –";
    } else if (resetsAt === null) {
      el.textContent = "Started over."; // until RoomWatcher has the next reset time
    } else {
      const left = Date.parse(resetsAt) - now;
      // Past the moment the server's delta with `reset` clears the board; until then it is starting over.
      el.textContent = left > 0 ? `Resets in ${countdown(left)}` : "Starting over…";
      el.title = `at ${new Date(resetsAt).toLocaleString()}`;
    }
    el.dataset.state = h.shown ? "ended" : "live";
    renderSteps(period);
  }
}

setInterval(tickResets, 1000);
tickResets();

// ---------------------------------------------------------------- start

loadActions();
selectView(["spectator", "tournaments"].includes(params.get("view")) ? params.get("view") : "player");

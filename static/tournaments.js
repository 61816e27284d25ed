// The Tournaments tab (PROTOCOL.md 10): upcoming, running and ended tournaments with a countdown
// to their start or end, a Join button, and a tournament's board: watched live in its room
// `tournament:<id>` (snapshot + deltas, period all only) until it ends, then read as final. The
// protocol part (listTournaments, joinTournament, tournamentCountdown) has no DOM code;
// mountTournaments wires it to the tab's panel.

import { boardRow, emptyRow } from "./board-table.js";
import { RoomWatcher, call, countdown, describeError, readBoard } from "./client.js";

const LIST_REFRESH_MS = 10000;
// After the end, the last credits of its window may still be in the flush: the final board is
// read once this has passed (the live one keeps its deltas until then).
const FINAL_READ_MS = 2000;
const STATE_TEXT = { upcoming: "Upcoming", running: "Running", ended: "Ended" };

/** GET /api/v1/tournaments → [tournament] (upcoming, running, and ended within BOARD_HISTORY_DAYS). */
export async function listTournaments() {
  const resp = await fetch("/api/v1/tournaments");
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(describeError(data.error ?? { code: "unavailable", message: `HTTP ${resp.status}` }));
  return data.tournaments;
}

/** tournament:join → the ack: {ok: true, tournament} or {ok: false, error}. */
export function joinTournament(socket, tournamentId) {
  return call(socket, "tournament:join", { tournament: tournamentId });
}

/** What the countdown of a tournament says at `nowMs`: "starts in 1 d 02:00:00", "ends in 00:00:12", "ended …". */
export function tournamentCountdown(tournament, nowMs) {
  const start = Date.parse(tournament.start_at);
  const end = Date.parse(tournament.end_at);
  if (nowMs < start) return `starts in ${countdown(start - nowMs)}`;
  if (nowMs < end) return `ends in ${countdown(end - nowMs)}`;
  return `ended ${new Date(end).toLocaleString()}`;
}

/** The state at `nowMs` on this browser's clock (the server's word is `state`, as last listed). */
function stateAt(tournament, nowMs) {
  if (nowMs < Date.parse(tournament.start_at)) return "upcoming";
  return nowMs < Date.parse(tournament.end_at) ? "running" : "ended";
}

/**
 * Fill `panel` with the tournament list; refresh it every LIST_REFRESH_MS while the panel shows,
 * and tick the countdowns every second. `socket`: the page's socket (a player's, once it has a
 * session: only players join). `topN`: rows of a tournament's board (the server's TOP_N).
 */
export function mountTournaments(socket, panel, { topN = 10 } = {}) {
  const list = panel.querySelector("[data-tournaments]");
  const status = panel.querySelector("[data-tournaments-status]");
  const error = panel.querySelector("[data-tournaments-error]");
  const joined = new Set();
  let shown = [];
  const board = mountBoard(socket, panel.querySelector("[data-tournament-board]"), topN);

  function say(text) {
    error.textContent = text ?? "";
    error.hidden = !text;
  }

  function render() {
    const now = Date.now();
    list.replaceChildren(...shown.map((t) => row(t, now)));
    status.textContent = shown.length ? `${shown.length} tournament${shown.length === 1 ? "" : "s"}.`
      : "No tournaments yet.";
  }

  function row(t, now) {
    const item = document.createElement("li");
    item.className = "card tournament";
    item.dataset.tournament = t.tournament_id;
    const state = stateAt(t, now);
    item.dataset.state = state;
    const title = document.createElement("h3");
    title.textContent = t.title;
    const badge = document.createElement("span");
    badge.className = "pill";
    badge.textContent = STATE_TEXT[state];
    title.append(" ", badge);
    const facts = document.createElement("p");
    facts.className = "hint";
    const limits = [
      t.actions ? `actions: ${t.actions.join(", ")}` : "every action",
      t.regions ? `regions: ${t.regions.join(", ")}` : "every region",
      t.max_players ? `${t.players} / ${t.max_players} players` : `${t.players} player${t.players === 1 ? "" : "s"}`,
    ];
    facts.textContent = limits.join(" · ");
    const countdown = document.createElement("p");
    countdown.className = "tournament-countdown";
    countdown.dataset.countdown = "";
    countdown.textContent = tournamentCountdown(t, now);
    item.append(title, facts, countdown);
    const buttons = document.createElement("div");
    buttons.className = "tournament-actions";
    item.append(buttons);
    const watch = document.createElement("button");
    watch.type = "button";
    watch.className = "secondary";
    watch.dataset.watch = t.tournament_id;
    watch.textContent = state === "ended" ? "Final board" : "Watch board";
    watch.setAttribute("aria-pressed", String(board.showing() === t.tournament_id));
    watch.addEventListener("click", () => board.show(t));
    buttons.append(watch);
    if (state !== "ended") {
      const join = document.createElement("button");
      join.type = "button";
      join.dataset.join = t.tournament_id;
      join.disabled = joined.has(t.tournament_id);
      join.textContent = joined.has(t.tournament_id) ? "Joined" : "Join";
      join.addEventListener("click", () => onJoin(t.tournament_id));
      buttons.append(join);
    }
    return item;
  }

  async function onJoin(id) {
    say(null);
    const ack = await joinTournament(socket, id);
    if (!ack.ok) {
      say(describeError(ack.error));
      return;
    }
    joined.add(id);
    shown = shown.map((t) => (t.tournament_id === id ? ack.tournament : t));
    board.update(ack.tournament);
    render();
  }

  async function refresh() {
    try {
      shown = await listTournaments();
      shown.forEach((t) => board.update(t));
      say(null);
    } catch (err) {
      say(err.message);
    }
    render();
  }

  function tick() {
    const now = Date.now();
    board.tick(now);
    for (const t of shown) {
      const item = list.querySelector(`[data-tournament="${CSS.escape(t.tournament_id)}"]`);
      if (!item) continue;
      if (item.dataset.state !== stateAt(t, now)) {
        render(); // a start or an end passed: the badge and the Join button change
        return;
      }
      item.querySelector("[data-countdown]").textContent = tournamentCountdown(t, now);
    }
  }

  // A new session is a new player: what the last one joined says nothing of it.
  socket.on("connect", () => joined.clear());
  setInterval(() => !panel.hidden && tick(), 1000);
  setInterval(() => !panel.hidden && refresh(), LIST_REFRESH_MS);
  new MutationObserver(() => !panel.hidden && refresh()).observe(panel, { attributes: true,
    attributeFilter: ["hidden"] });
  refresh();
  return { refresh };
}

/**
 * The board of one tournament in `section`: show(t) watches a running or upcoming one live and
 * reads an ended one's final board; tick(now) moves its countdown and, past the end, turns the
 * live board into the final one.
 */
function mountBoard(socket, section, topN) {
  const title = section.querySelector("[data-board-title]");
  const clock = section.querySelector("[data-board-countdown]");
  const note = section.querySelector("[data-board-status]");
  const rows = section.querySelector("[data-board-rows]");
  let tournament = null;
  let phase = null; // "live" (watched) or "final" (read after the end)
  let finalTimer = null;

  const watcher = new RoomWatcher(socket, {
    topN,
    onSnapshot: (live) => draw(live.rows("all")),
    onDelta: (live) => draw(live.rows("all")),
    onError: (err) => {
      note.textContent = describeError(err);
      draw([]);
    },
  });

  function draw(entries) {
    const trs = entries.map(boardRow);
    if (!trs.length) trs.push(emptyRow("No scores yet."));
    rows.replaceChildren(...trs);
    if (phase === "live") {
      const state = stateAt(tournament, Date.now());
      note.textContent = state === "upcoming"
        ? "Upcoming: its board fills from the start, live."
        : `Live: top ${topN}, updated from the tournament's room.`;
    }
  }

  async function readFinal() {
    const id = tournament.tournament_id;
    const ack = await readBoard(socket, { board: `tournament:${id}`, period: "all", limit: topN });
    if (tournament?.tournament_id !== id) return; // another one shows now
    await watcher.leave();
    phase = "final";
    section.dataset.phase = phase;
    if (!ack.ok) {
      note.textContent = describeError(ack.error);
      return;
    }
    note.textContent = `Final board: the tournament has ended (${ack.total_players} ` +
      `player${ack.total_players === 1 ? "" : "s"}).`;
    draw(ack.entries);
  }

  function show(t) {
    clearTimeout(finalTimer);
    finalTimer = null;
    tournament = t;
    section.hidden = false;
    section.scrollIntoView({ block: "nearest" }); // below the list: bring it into sight
    section.dataset.tournament = t.tournament_id;
    title.textContent = t.title;
    clock.textContent = tournamentCountdown(t, Date.now());
    rows.replaceChildren();
    if (stateAt(t, Date.now()) === "ended") {
      phase = null;
      note.textContent = "Reading its final board…";
      readFinal();
    } else {
      phase = "live";
      section.dataset.phase = phase;
      note.textContent = "Opening its board…";
      watcher.watch(`tournament:${t.tournament_id}`);
    }
  }

  function tick(now) {
    if (!tournament) return;
    clock.textContent = tournamentCountdown(tournament, now);
    if (phase === "live" && stateAt(tournament, now) === "ended" && finalTimer === null) {
      note.textContent = "Ended: reading its final board…";
      finalTimer = setTimeout(() => {
        finalTimer = null;
        readFinal();
      }, FINAL_READ_MS);
    }
  }

  return {
    show,
    tick,
    showing: () => tournament?.tournament_id ?? null,
    /** A fresher copy of a tournament (its players, or a changed window) from a list or a join. */
    update(t) {
      if (tournament?.tournament_id === t.tournament_id) tournament = t;
    },
  };
}

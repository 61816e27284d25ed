// The operator console: wires static/admin-core.js (the API, paging, chart geometry, formatting)
// to static/admin.html. No DOM code lives in admin-core.js, and no logic worth testing lives here.
//
// The API key is asked for once and kept only for this tab: in sessionStorage (or in memory when
// storage is off), never in localStorage or a cookie. A 401 from any call forgets it and asks again.

import {
  AdminApi,
  AuthError,
  CursorPager,
  RECENT_S,
  STATS_INTERVAL_MS,
  clock,
  completionSeries,
  connectionRows,
  describeSignals,
  exportFileName,
  fmtAgo,
  fmtDuration,
  fmtNumber,
  fmtPercent,
  fmtTime,
  isoOrDash,
  pushSample,
  sparkline,
  stackedArea,
  suspensionBody,
  suspensionFromExport,
  suspicionLevel,
} from "./admin-core.js";

const KEY_SLOT = "scoreboard.admin_key";
const QUEUE_SAMPLES = 150; // 5 minutes at one sample per 2 s
const CHART = { width: 760, height: 310, pad: { top: 12, right: 12, bottom: 28, left: 44 } };
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- the key, for this tab only

let memoryKey = null;

function readKey() {
  try {
    return sessionStorage.getItem(KEY_SLOT) ?? memoryKey;
  } catch {
    return memoryKey; // storage disabled
  }
}

function keepKey(key) {
  memoryKey = key;
  try {
    sessionStorage.setItem(KEY_SLOT, key);
  } catch {
    // storage disabled: memory only, gone on reload
  }
}

function forgetKey() {
  memoryKey = null;
  try {
    sessionStorage.removeItem(KEY_SLOT);
  } catch {
    // storage disabled
  }
}

const api = new AdminApi(readKey);

// ---------------------------------------------------------------- small DOM helpers

function show(el, visible = true) {
  el.hidden = !visible;
}

function notice(el, text) {
  el.textContent = text ?? "";
  show(el, Boolean(text));
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "title") node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function setLive(state, text) {
  const pill = $("live");
  pill.dataset.state = state;
  pill.textContent = text;
}

/** Run `fn`; a 401 asks for the key again, any other error goes to `errorEl` (or the banner). */
async function guard(fn, errorEl = $("banner")) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AuthError) {
      askForKey("The server refused the key (401 unauthorized): enter it again.");
      return undefined;
    }
    notice(errorEl, err.message);
    return undefined;
  }
}

// ---------------------------------------------------------------- sign in and out

let running = false;
let statsTimer = null;

function askForKey(message = "") {
  running = false;
  clearTimeout(statsTimer);
  forgetKey();
  show($("console"), false);
  show($("login"));
  show($("sign-out"), false);
  show($("instance-pill"), false);
  setLive("idle", "Not signed in");
  notice($("key-error"), message);
  $("api-key").value = "";
  $("api-key").focus();
}

function openConsole() {
  show($("login"), false);
  show($("console"));
  show($("sign-out"));
  notice($("key-error"), "");
  if (running) return;
  running = true;
  setLive("connecting", "Loading…");
  pollStats();
  loadSuspects(true);
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) {
    notice($("key-error"), "Enter the API key.");
    return;
  }
  $("key-submit").disabled = true;
  keepKey(key);
  try {
    await api.stats(); // checks the key before the console opens
    $("api-key").value = "";
    openConsole();
  } catch (err) {
    if (err instanceof AuthError) askForKey("The server refused that key (401 unauthorized).");
    else {
      openConsole(); // the key may be right; the stats route is what failed
      notice($("banner"), err.message);
    }
  } finally {
    $("key-submit").disabled = false;
  }
});

$("sign-out").addEventListener("click", () => askForKey("The key is forgotten in this tab."));

// ---------------------------------------------------------------- live figures

const queueHistory = [];
let chartGeometry = null;
let chartData = null;

async function pollStats() {
  if (!running) return;
  try {
    const stats = await api.stats();
    if (!running) return;
    renderStats(stats);
    notice($("banner"), "");
    setLive("live", `Live · updated ${clock(Date.now())}`);
  } catch (err) {
    if (err instanceof AuthError) {
      askForKey("The server refused the key (401 unauthorized): enter it again.");
      return;
    }
    setLive("stale", "Stats unavailable, retrying…");
    notice($("banner"), `Live figures: ${err.message}`);
  }
  if (running) statsTimer = setTimeout(pollStats, STATS_INTERVAL_MS);
}

function renderStats(stats) {
  renderCompletions(stats);
  renderConnections(stats.connections);
  const depth = Number.isFinite(stats.queue_depth) ? stats.queue_depth : 0;
  pushSample(queueHistory, depth, QUEUE_SAMPLES);
  $("queue-depth").textContent = fmtNumber(depth);
  renderSpark();
  $("lease-holder").textContent = stats.lease_holder ?? "none: no instance holds the flush lease";
  const instances = Array.isArray(stats.instances) ? stats.instances : [];
  $("instances").textContent = instances.length
    ? instances.map((i) => (i === stats.instance ? `${i} (this one)` : i)).join(", ")
    : "–";
  const pill = $("instance-pill");
  pill.textContent = `Instance: ${stats.instance ?? "?"}`;
  show(pill, Boolean(stats.instance));
}

function renderCompletions(stats) {
  const data = completionSeries(stats);
  const geo = stackedArea(data, CHART);
  chartData = data;
  chartGeometry = geo;
  const windowText = fmtDuration(data.seconds.length * 1000);
  $("completions-window").textContent =
    `Last ${windowText}, summed over all instances; "lately" is the last ${RECENT_S} s`;

  const chart = $("completions-chart");
  const nodes = [];
  const { plot } = geo;
  for (const tick of geo.yTicks) {
    nodes.push(svg("line", { class: "grid", x1: plot.left, x2: plot.left + plot.width, y1: tick.y, y2: tick.y }));
    nodes.push(svg("text", { class: "axis", x: plot.left - 6, y: tick.y + 4, "text-anchor": "end" }, fmtNumber(tick.value)));
  }
  for (const tick of geo.xTicks) {
    nodes.push(svg("line", { class: "grid", x1: tick.x, x2: tick.x, y1: plot.top, y2: plot.top + plot.height }));
    nodes.push(svg("text", { class: "axis", x: tick.x, y: CHART.height - 8, "text-anchor": "middle" }, tick.label));
  }
  for (const path of geo.paths) {
    nodes.push(svg("path", { d: path.d, fill: path.color, "fill-opacity": 0.85, stroke: path.color, "stroke-width": 0.6, "data-series": path.key }));
  }
  nodes.push(svg("text", { class: "axis", x: 4, y: plot.top + 4, "dominant-baseline": "hanging" }, "/s"));
  const cursor = svg("line", { id: "chart-cursor", class: "cursor", x1: 0, x2: 0, y1: plot.top, y2: plot.top + plot.height, visibility: "hidden" });
  nodes.push(cursor);
  chart.replaceChildren(...nodes);

  // The legend, with each series' figures over the window: also the chart's text alternative.
  const items = data.series.map((s) =>
    el(
      "li",
      { "data-series": s.key },
      el("span", { class: "swatch", "aria-hidden": "true" }),
      el("span", { class: "legend-label", text: s.label }),
      el("span", { class: "legend-figures hint", text: `${fmtNumber(s.total)} in ${windowText} · ${fmtNumber(s.recent)}/s lately` }),
    ),
  );
  items.forEach((item, i) => (item.firstChild.style.background = data.series[i].color));
  $("legend").replaceChildren(...items);

  const refused = data.series.slice(1);
  const refusedTotal = refused.reduce((a, s) => a + s.total, 0);
  const byCode = refused.filter((s) => s.total).map((s) => `${s.label.replace("Refused: ", "")} ${s.total}`);
  $("completions-summary").textContent =
    `Stacked areas, one value per second: ${fmtNumber(data.series[0].total)} credited and ${fmtNumber(refusedTotal)} refused` +
    `${byCode.length ? ` (${byCode.join(", ")})` : ""} in the last ${windowText}.`;
}

function showReadout(event) {
  if (!chartGeometry || !chartData) return;
  const chart = $("completions-chart");
  const matrix = chart.getScreenCTM();
  if (!matrix) return;
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
  const i = chartGeometry.indexAt(point.x);
  const cursor = $("chart-cursor");
  if (i === null) {
    hideReadout();
    return;
  }
  const x = chartGeometry.x(i);
  cursor.setAttribute("x1", x);
  cursor.setAttribute("x2", x);
  cursor.setAttribute("visibility", "visible");
  const parts = chartData.series.map((s) => `${s.label.replace("Refused: ", "")} ${fmtNumber(s.values[i])}`);
  $("chart-readout").textContent = `${clock(chartData.seconds[i])}: ${parts.join(" · ")}`;
}

function hideReadout() {
  $("chart-cursor")?.setAttribute("visibility", "hidden");
  $("chart-readout").textContent = "Point at the chart for one second's figures.";
}

$("completions-chart").addEventListener("pointermove", showReadout);
$("completions-chart").addEventListener("pointerleave", hideReadout);

function renderConnections(connections) {
  const rows = connectionRows(connections).map((row) => {
    const bar = el("div", {
      class: "bar",
      role: "img",
      "aria-label": `${row.label}: ${row.websocket} over websocket, ${row.polling} over polling`,
    });
    const ws = el("span", { class: "ws" });
    const poll = el("span", { class: "poll" });
    ws.style.width = `${row.total ? (row.share * 100 * row.websocket) / row.total : 0}%`;
    poll.style.width = `${row.total ? (row.share * 100 * row.polling) / row.total : 0}%`;
    bar.append(ws, poll);
    return el(
      "div",
      { class: "bar-row", "data-role": row.role },
      el("div", { class: "bar-label" },
        el("strong", { text: row.label }),
        el("span", { class: "hint", text: ` ${fmtNumber(row.total)} · ${fmtNumber(row.websocket)} websocket, ${fmtNumber(row.polling)} polling` }),
      ),
      bar,
    );
  });
  $("connections").replaceChildren(...rows);
}

function renderSpark() {
  const spark = $("queue-spark");
  const points = sparkline(queueHistory, 240, 44);
  const area = points ? `0,48 ${points} 240,48` : "";
  spark.replaceChildren(
    svg("polygon", { class: "spark-area", points: area }),
    svg("polyline", { class: "spark-line", points, fill: "none" }),
  );
}

// ---------------------------------------------------------------- suspects

const suspects = new CursorPager((cursor) => api.suspects(cursor));

async function loadSuspects(reset) {
  notice($("suspects-error"), "");
  if (reset) {
    suspects.reset();
    $("suspects").replaceChildren();
  }
  $("suspects-status").textContent = "Loading…";
  $("suspects-more").disabled = true;
  const page = await guard(() => suspects.more(), $("suspects-error"));
  $("suspects-more").disabled = false;
  if (page === undefined) {
    $("suspects-status").textContent = "";
    return;
  }
  $("suspects").append(...page.map(renderSuspect));
  const n = suspects.entries.length;
  $("suspects-status").textContent =
    n === 0 ? "No suspects: nobody's play looks automated right now." : `${n} shown${suspects.hasMore ? "" : ", all of them"}.`;
  show($("suspects-more"), suspects.hasMore && n > 0);
}

function renderSuspect(entry) {
  const level = suspicionLevel(entry.suspicion);
  const meter = el("meter", { min: 0, max: 1, low: 0.5, high: 0.8, optimum: 0, value: entry.suspicion ?? 0 });
  meter.setAttribute("aria-label", `Suspicion ${fmtPercent(entry.suspicion)}`);
  const signals = describeSignals(entry.signals);
  const list = el("dl", { class: "signals" });
  const quiet = signals.filter((s) => !s.seen);
  for (const signal of signals.filter((s) => s.seen)) {
    const dt = el("dt", { text: signal.label });
    if (signal.score !== null) dt.append(" ", el("span", { class: "chip", text: fmtPercent(signal.score) }));
    const dd = el("dd");
    if (signal.figures.length) {
      dd.append(
        el("ul", { class: "figures" }, ...signal.figures.map((f) => el("li", {}, el("span", { class: "figure-label", text: `${f.label}: ` }), el("span", { class: "figure", text: f.text })))),
      );
    } else dd.textContent = "seen";
    list.append(el("div", { class: "signal", "data-signal": signal.key }, dt, dd));
  }
  if (!signals.length) list.append(el("div", { class: "signal" }, el("dt", { text: "No signals listed" }), el("dd", { text: "–" })));
  const checked = quiet.length
    ? el("p", { class: "quiet hint", text: `Checked, nothing seen: ${quiet.map((s) => s.label.toLowerCase()).join(", ")}.` })
    : "";

  const lookUp = el("button", { type: "button", class: "secondary small", text: "Look up" });
  lookUp.setAttribute("aria-label", `Look up ${entry.name ?? entry.player_id}`);
  lookUp.addEventListener("click", () => {
    $("lookup-id").value = entry.player_id;
    lookupPlayer(entry.player_id);
    $("lookup-card").scrollIntoView({ behavior: "smooth", block: "start" });
  });

  const since = entry.since == null ? "–" : `${fmtTime(entry.since, Date.now(), { ms: false })} (${fmtAgo(entry.since)})`;
  return el(
    "li",
    { class: `suspect level-${level}`, "data-player-id": entry.player_id },
    el(
      "div",
      { class: "suspect-head" },
      el("div", {},
        el("strong", { class: "suspect-name", text: entry.name ?? "(no name)" }),
        el("span", { class: "mono hint", text: ` ${entry.player_id}` }),
        // Beside the protocol's fields the server says what an operator did already.
        entry.suspended ? el("span", { class: "pill state-bad", text: "Suspended" }) : "",
        entry.hidden ? el("span", { class: "pill state-warn", text: "Hidden" }) : "",
      ),
      el("div", { class: "suspicion" }, el("span", { class: `level level-${level}`, text: `${fmtPercent(entry.suspicion)} suspicious` }), meter),
      lookUp,
    ),
    el(
      "p",
      { class: "suspect-facts hint" },
      el("span", { text: `Difficulty +${fmtNumber(entry.difficulty_bonus ?? 0)} bits` }),
      el("span", { text: ` · suspect since ${since}`, title: isoOrDash(entry.since) }),
    ),
    list,
    checked,
  );
}

$("suspects-more").addEventListener("click", () => loadSuspects(false));
$("suspects-refresh").addEventListener("click", () => loadSuspects(true));

// ---------------------------------------------------------------- player lookup

const current = {
  id: null,
  suspended: null,
  hidden: null,
  erased: false,
  audit: null, // CursorPager
};

$("lookup-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = $("lookup-id").value.trim();
  if (!id) {
    notice($("lookup-error"), "Type a player id.");
    return;
  }
  lookupPlayer(id);
});

async function lookupPlayer(id) {
  notice($("lookup-error"), "");
  Object.assign(current, { id, suspended: null, hidden: null, erased: false });
  current.audit = new CursorPager((cursor) => api.actions(id, cursor));
  show($("player"));
  $("player-title").textContent = id;
  $("player-sub").textContent = "Loading…";
  $("action-status").textContent = "";
  $("audit-rows").replaceChildren();
  renderState();
  await Promise.all([loadProfile(id), loadAudit(id), loadSuspension(id)]);
}

async function loadProfile(id) {
  const facts = ["p-total", "p-daily", "p-weekly", "p-rank-global", "p-rank-region", "p-achievements"];
  let profile;
  try {
    profile = await api.profile(id);
  } catch (err) {
    if (current.id !== id) return;
    if (err instanceof AuthError) return askForKey("The server refused the key (401 unauthorized): enter it again.");
    facts.forEach((f) => ($(f).textContent = "–"));
    $("player-sub").textContent =
      err.code === "not_found"
        ? "No profile: no such player, or it was erased (its audit trail, if any, is below without name or address)."
        : `Profile: ${err.message}`;
    return;
  }
  if (current.id !== id) return;
  const { player, score, ranks, achievements } = profile;
  $("player-title").textContent = player.name ? `${player.name}` : id;
  $("player-sub").textContent =
    `${player.player_id} · region ${player.region}${player.guild ? ` · guild ${player.guild}` : ""}`;
  $("p-total").textContent = fmtNumber(score.total);
  $("p-daily").textContent = fmtNumber(score.daily);
  $("p-weekly").textContent = fmtNumber(score.weekly);
  $("p-rank-global").textContent = ranks.global ? `#${ranks.global}` : "–";
  $("p-rank-region").textContent = ranks.region ? `#${ranks.region}` : "–";
  $("p-achievements").textContent = achievements.length ? achievements.map((a) => a.name).join(", ") : "none";
}

async function loadSuspension(id) {
  // The public profile does not say whether a player is suspended or hidden; the export does.
  try {
    const state = suspensionFromExport(await api.exportPlayer(id));
    if (current.id !== id || current.erased) return;
    if (current.suspended === null) current.suspended = state.suspended;
    if (current.hidden === null) current.hidden = state.hidden;
  } catch (err) {
    if (err instanceof AuthError) return askForKey("The server refused the key (401 unauthorized): enter it again.");
    // Unknown: the buttons still work; the state shows once an action answers.
  }
  if (current.id === id) renderState();
}

function renderState() {
  const pills = [];
  if (current.erased) pills.push(el("span", { class: "pill state-bad", text: "Erased" }));
  else {
    if (current.suspended === true) pills.push(el("span", { class: "pill state-bad", text: "Suspended" }));
    else if (current.suspended === false) pills.push(el("span", { class: "pill state-ok", text: "Not suspended" }));
    if (current.hidden === true) pills.push(el("span", { class: "pill state-warn", text: "Hidden from boards" }));
    else if (current.hidden === false) pills.push(el("span", { class: "pill state-ok", text: "On the boards" }));
    if (current.suspended === null && current.hidden === null) pills.push(el("span", { class: "pill", text: "Suspension: unknown" }));
  }
  $("player-state").replaceChildren(...pills);
  $("suspend").textContent = current.suspended ? "Reinstate" : "Suspend";
  $("hide").textContent = current.hidden ? "Show on boards" : "Hide from boards";
  for (const id of ["suspend", "hide", "erase"]) $(id).disabled = current.erased;
}

async function loadAudit(id, reset = true) {
  const pager = current.audit;
  $("audit-status").textContent = "Loading…";
  $("audit-more").disabled = true;
  const page = await guard(() => pager.more(), $("lookup-error"));
  if (current.id !== id || current.audit !== pager) return;
  $("audit-more").disabled = false;
  if (page === undefined) {
    $("audit-status").textContent = "";
    return;
  }
  if (reset) $("audit-rows").replaceChildren();
  $("audit-rows").append(...page.map(renderAuditRow));
  const n = pager.entries.length;
  if (n === 0) {
    $("audit-rows").replaceChildren(el("tr", { class: "empty" }, el("td", { colSpan: 9, text: "No audit entries for this player." })));
  }
  $("audit-status").textContent = n ? `${n} entr${n === 1 ? "y" : "ies"} shown${pager.hasMore ? "" : ", all of them"}.` : "";
  show($("audit-more"), pager.hasMore && n > 0);
}

function renderAuditRow(entry) {
  const credited = entry.outcome === "credited";
  const outcome = el("span", { class: `outcome ${credited ? "ok" : "bad"}`, text: entry.outcome ?? "–" });
  const cells = [
    el("td", { text: fmtTime(entry.completed_at), title: `started ${isoOrDash(entry.started_at)}, completed ${isoOrDash(entry.completed_at)}` }),
    el("td", { text: entry.action ?? "–" }),
    el("td", {}, outcome, entry.duplicate ? el("span", { class: "hint", text: " (repeat)" }) : ""),
    el("td", { class: "num", text: fmtNumber(entry.points) }),
    el("td", { class: "num", text: fmtDuration(entry.play_ms) }),
    el("td", { class: "num", text: entry.difficulty == null ? "–" : `${entry.difficulty} bits` }),
    el("td", { class: "mono", text: entry.instance ?? "–" }),
    el("td", { class: "mono", text: entry.client ?? "–" }),
    el("td", { class: "mono action-id", text: entry.action_id ?? "–", title: entry.action_id ?? "" }),
  ];
  return el("tr", { "data-action-id": entry.action_id ?? "", "data-outcome": entry.outcome ?? "" }, ...cells);
}

$("audit-more").addEventListener("click", () => current.id && loadAudit(current.id, false));

// ---------------------------------------------------------------- operator actions

function busy(on) {
  for (const id of ["suspend", "hide", "export", "erase"]) $(id).disabled = on || (current.erased && id !== "export");
}

async function changeSuspension(change, done) {
  const id = current.id;
  if (!id) return;
  busy(true);
  const body = suspensionBody(current, change);
  const reply = await guard(() => api.setSuspension(id, body.suspended, body.hidden), $("lookup-error"));
  busy(false);
  if (!reply || current.id !== id) return;
  current.suspended = reply.suspended ?? current.suspended;
  current.hidden = reply.hidden ?? current.hidden;
  renderState();
  $("action-status").textContent = `${done(reply)} (${clock(Date.now())})`;
}

$("suspend").addEventListener("click", () =>
  changeSuspension({ suspended: !current.suspended }, (r) =>
    r.suspended ? "Suspended: its actions now answer `suspended` on every instance." : "Reinstated: it may play again.",
  ),
);

$("hide").addEventListener("click", () =>
  changeSuspension({ hidden: !current.hidden }, (r) =>
    r.hidden ? "Hidden: taken off every board." : "Shown: back on its boards.",
  ),
);

$("export").addEventListener("click", async () => {
  const id = current.id;
  if (!id) return;
  busy(true);
  const doc = await guard(() => api.exportPlayer(id), $("lookup-error"));
  busy(false);
  if (!doc) return;
  const text = JSON.stringify(doc, null, 2);
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const name = exportFileName(id);
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  $("action-status").textContent = `Exported ${name} (${fmtNumber(Math.ceil(text.length / 1024))} KB).`;
});

// Erase: a dialog where the operator types the player id; Cancel or Escape does nothing.
const dialog = $("erase-dialog");

$("erase").addEventListener("click", () => {
  if (!current.id) return;
  $("erase-id").textContent = current.id;
  $("erase-confirm").value = "";
  $("erase-ok").disabled = true;
  dialog.showModal();
  $("erase-confirm").focus();
});

$("erase-confirm").addEventListener("input", () => {
  $("erase-ok").disabled = $("erase-confirm").value.trim() !== current.id;
});

$("erase-cancel").addEventListener("click", () => {
  dialog.close("cancel");
  $("action-status").textContent = "Erase cancelled: nothing was changed.";
});

dialog.addEventListener("cancel", () => {
  $("action-status").textContent = "Erase cancelled: nothing was changed.";
});

$("erase-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = current.id;
  if (!id || $("erase-confirm").value.trim() !== id) return;
  dialog.close("erase");
  busy(true);
  const reply = await guard(() => api.erase(id), $("lookup-error"));
  busy(false);
  if (!reply || current.id !== id) return;
  current.erased = true;
  renderState();
  $("action-status").textContent =
    `Erased ${id} at ${clock(Date.now())}: this is final. Its audit entries remain without name or address.`;
  current.audit = new CursorPager((cursor) => api.actions(id, cursor));
  await Promise.all([loadProfile(id), loadAudit(id)]);
  loadSuspects(true);
});

// ---------------------------------------------------------------- start

if (readKey()) openConsole();
else askForKey("");

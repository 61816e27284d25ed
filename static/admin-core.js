// The operator console's logic with no DOM code (static/admin.js wires it to static/admin.html):
// the API_KEY client, paging by cursor, the figures of the stats route turned into chart geometry,
// and the formatting of signals, times and durations. Tested under node: tests/static/admin.test.mjs.
//
//   AdminApi            every operator call, with Authorization: Bearer <key>; 401 -> AuthError
//   CursorPager         "more" paging of {entries, next_cursor} lists (PROTOCOL.md 9)
//   completionSeries    GET /api/v1/admin/stats -> one value per second for each series
//   stackedArea         series -> SVG paths, axis ticks and the value under the pointer
//   describeSignals     a suspect's signals -> readable figures

export const STATS_INTERVAL_MS = 2000;
export const PAGE_LIMIT = 25;
export const SUSPECTS_LIMIT = 10;
export const MAX_REFUSED_SERIES = 6;
export const RECENT_S = 10; // "lately", in the legend: the mean of the last seconds // more refusal codes than this are summed as "other"

// Colours for the chart: credited first, then the refusal codes in a stable order.
export const CREDITED_COLOR = "#1f9d5c";
const REFUSED_COLORS = ["#e0761a", "#c62828", "#8e44ad", "#0e7c91", "#c2185b", "#6d4c41", "#5c6bc0"];
const OTHER_COLOR = "#808891";
// The codes a completion is usually refused with (PROTOCOL.md 5), in the order they get colours;
// any other code comes after them, by name.
const KNOWN_CODES = ["too_fast", "proof_invalid", "token_invalid", "token_expired", "rate_limited", "suspended", "unavailable"];

// ---------------------------------------------------------------- the API

/** The key was missing or refused (401): the page asks for it again. */
export class AuthError extends Error {
  constructor(message = "The API key was refused.") {
    super(message);
    this.name = "AuthError";
  }
}

/** Any other refusal, with the protocol's error object {code, message, retry_after_ms?}. */
export class ApiError extends Error {
  constructor(error, status) {
    super(`${error.message || error.code} (${error.code}${status ? `, HTTP ${status}` : ""})`);
    this.name = "ApiError";
    this.code = error.code;
    this.status = status;
  }
}

const enc = encodeURIComponent;

/**
 * The operator routes of PROTOCOL.md 9 on this origin. `getKey()` answers the key kept for the tab
 * (or null); every call sends it as `Authorization: Bearer <key>`, and a 401, or no key at all,
 * throws AuthError. `fetchFn` is the platform's fetch (injected for the tests).
 */
export class AdminApi {
  constructor(getKey, fetchFn = globalThis.fetch.bind(globalThis)) {
    this.getKey = getKey;
    this.fetch = fetchFn;
  }

  async request(method, path, body) {
    const key = this.getKey();
    if (!key) throw new AuthError("No API key yet.");
    const headers = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let resp;
    try {
      resp = await this.fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new ApiError({ code: "connect_error", message: `cannot reach the server: ${err.message || err}` });
    }
    if (resp.status === 401) throw new AuthError();
    const data = await resp.json().catch(() => null);
    if (!resp.ok) throw new ApiError(data?.error ?? { code: "unavailable", message: `HTTP ${resp.status}` }, resp.status);
    return data;
  }

  stats() {
    return this.request("GET", "/api/v1/admin/stats");
  }

  suspects(cursor, limit = SUSPECTS_LIMIT) {
    return this.request("GET", `/api/v1/admin/suspects${pageQuery(cursor, limit)}`);
  }

  profile(playerId) {
    return this.request("GET", `/api/v1/players/${enc(playerId)}`);
  }

  actions(playerId, cursor, limit = PAGE_LIMIT) {
    return this.request("GET", `/api/v1/admin/players/${enc(playerId)}/actions${pageQuery(cursor, limit)}`);
  }

  setSuspension(playerId, suspended, hidden) {
    return this.request("PUT", `/api/v1/players/${enc(playerId)}/suspension`, { suspended, hidden });
  }

  exportPlayer(playerId) {
    return this.request("GET", `/api/v1/admin/players/${enc(playerId)}/export`);
  }

  erase(playerId) {
    return this.request("DELETE", `/api/v1/admin/players/${enc(playerId)}`);
  }
}

export function pageQuery(cursor, limit) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (cursor) q.set("cursor", cursor);
  return `?${q}`;
}

/**
 * A list read page by page: `more()` fetches the page after the last one (`fetchPage(cursor)` ->
 * {entries, next_cursor}) and appends it; `reset()` starts over. A page that arrives after a reset
 * is dropped, and a second `more()` while one is loading does nothing, so no page is shown twice.
 */
export class CursorPager {
  constructor(fetchPage) {
    this.fetchPage = fetchPage;
    this.reset();
  }

  reset() {
    this.entries = [];
    this.cursor = null;
    this.started = false;
    this.loading = false;
    this.generation = (this.generation ?? 0) + 1;
  }

  get hasMore() {
    return !this.started || this.cursor !== null;
  }

  /** The entries of the new page ([] when there was nothing to fetch or the pager was reset meanwhile). */
  async more() {
    if (this.loading || !this.hasMore) return [];
    const generation = this.generation;
    this.loading = true;
    try {
      const page = await this.fetchPage(this.cursor);
      if (generation !== this.generation) return [];
      const entries = Array.isArray(page?.entries) ? page.entries : [];
      this.entries.push(...entries);
      this.cursor = page?.next_cursor ?? null;
      this.started = true;
      return entries;
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }
}

/** What the export route answered about the player's suspension: {suspended, hidden}, null where unknown. */
export function suspensionFromExport(doc) {
  const candidates = [doc?.moderation, doc?.suspension, doc?.profile, doc?.player, doc];
  const pick = (field) => {
    for (const c of candidates) if (c && typeof c[field] === "boolean") return c[field];
    return null;
  };
  return { suspended: pick("suspended"), hidden: pick("hidden") };
}

/** The body for PUT .../suspension that changes one field and keeps the other as it is. */
export function suspensionBody(current, change) {
  return {
    suspended: change.suspended ?? current.suspended ?? false,
    hidden: change.hidden ?? current.hidden ?? false,
  };
}

export function exportFileName(playerId, now = new Date()) {
  const stamp = now.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  return `player-${playerId.replace(/[^A-Za-z0-9_-]/g, "_")}-${stamp}.json`;
}

// ---------------------------------------------------------------- stats -> chart series

function toMs(value) {
  if (value == null || value === "") return null;
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

function colorFor(code, index) {
  return code === "other" ? OTHER_COLOR : REFUSED_COLORS[index % REFUSED_COLORS.length];
}

function codeOrder(a, b) {
  const ia = KNOWN_CODES.indexOf(a);
  const ib = KNOWN_CODES.indexOf(b);
  if (ia !== ib) return (ia === -1 ? KNOWN_CODES.length : ia) - (ib === -1 ? KNOWN_CODES.length : ib);
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The completions of a stats answer as one value per second over its window, oldest first, seconds
 * with nothing filled with 0, up to the last whole second before `at`: {start, end (ms of the last
 * second), seconds: [ms], series: [{key, label, color, values, total, last, recent (per second over
 * the last RECENT_S)}]}. "credited" is always first; then one series per refusal code (the
 * codes with the most refusals, at most MAX_REFUSED_SERIES, the rest summed as "other").
 */
export function completionSeries(stats) {
  const windowS = Math.max(1, Math.min(3600, Math.round(stats?.window_s ?? 300)));
  const rows = Array.isArray(stats?.completions) ? stats.completions : [];
  // The chart ends at the last whole second before `at`: the current one is still being counted.
  const rowTimes = rows.map((row) => toMs(row?.t));
  const at = toMs(stats?.at);
  let end = at === null ? Math.max(0, ...rowTimes.filter((t) => t !== null)) : Math.floor(at / 1000) * 1000 - 1000;
  end = Math.floor(end / 1000) * 1000;
  const start = end - (windowS - 1) * 1000;
  const seconds = Array.from({ length: windowS }, (_, i) => start + i * 1000);

  const credited = new Array(windowS).fill(0);
  const refused = new Map();
  rows.forEach((row, r) => {
    const t = rowTimes[r];
    if (t === null) return;
    const i = Math.floor((t - start) / 1000);
    if (i < 0 || i >= windowS) return;
    credited[i] += count(row.credited);
    for (const [code, n] of Object.entries(row.refused ?? {})) {
      if (!refused.has(code)) refused.set(code, new Array(windowS).fill(0));
      refused.get(code)[i] += count(n);
    }
  });

  const sum = (values) => values.reduce((a, b) => a + b, 0);
  let codes = [...refused.keys()].sort(codeOrder);
  if (codes.length > MAX_REFUSED_SERIES) {
    const byTotal = [...codes].sort((a, b) => sum(refused.get(b)) - sum(refused.get(a)) || codeOrder(a, b));
    const kept = new Set(byTotal.slice(0, MAX_REFUSED_SERIES - 1));
    const other = new Array(windowS).fill(0);
    for (const code of codes.filter((c) => !kept.has(c))) refused.get(code).forEach((n, i) => (other[i] += n));
    codes = codes.filter((c) => kept.has(c));
    refused.set("other", other);
    codes.push("other");
  }
  const series = [
    { key: "credited", label: "Credited", color: CREDITED_COLOR, values: credited },
    ...codes.map((code, i) => ({
      key: `refused:${code}`,
      label: code === "other" ? "Refused: other codes" : `Refused: ${code}`,
      color: colorFor(code, i),
      values: refused.get(code),
    })),
  ];
  const recentN = Math.min(RECENT_S, windowS);
  for (const s of series) {
    s.total = sum(s.values);
    s.last = s.values[windowS - 1];
    s.recent = sum(s.values.slice(windowS - recentN)) / recentN; // per second, lately
  }
  return { start, end, seconds, series };
}

function count(n) {
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** The smallest of 1, 2, 5 x 10^k at or above `value` (at least 1): a round top for an axis. */
export function niceCeil(value) {
  if (!(value > 1)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= value - 1e-9) return step * magnitude;
  }
  return 10 * magnitude;
}

const round2 = (n) => Math.round(n * 100) / 100;

/**
 * The geometry of a stacked area chart of `series` (from completionSeries) in a box of `width` x
 * `height` with `pad` {top, right, bottom, left}: one closed SVG path per series (the first at the
 * bottom), the y ticks (4 steps from 0 to a round top), the x ticks (whole minutes, at most 6), and
 * `indexAt(x)` -> the second under an x of the box (null outside the plot).
 */
export function stackedArea(chart, { width, height, pad }) {
  const { seconds, series } = chart;
  const n = seconds.length;
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const totals = seconds.map((_, i) => series.reduce((a, s) => a + s.values[i], 0));
  const top = niceCeil(Math.max(0, ...totals));
  const x = (i) => round2(pad.left + (n <= 1 ? plotW : (i / (n - 1)) * plotW));
  const y = (v) => round2(pad.top + plotH - (v / top) * plotH);

  const below = new Array(n).fill(0);
  const paths = series.map((s) => {
    const lower = below.slice();
    const upper = lower.map((v, i) => v + s.values[i]);
    upper.forEach((v, i) => (below[i] = v));
    const points = upper.map((v, i) => `${x(i)},${y(v)}`);
    const back = lower.map((v, i) => `${x(i)},${y(v)}`).reverse();
    return { key: s.key, color: s.color, label: s.label, d: `M${points.join("L")}L${back.join("L")}Z` };
  });

  const yTicks = [0, 1, 2, 3, 4].map((k) => ({ value: round2((top * k) / 4), y: y((top * k) / 4) }));
  const span = n > 1 ? seconds[n - 1] - seconds[0] : 0;
  const stepMin = Math.max(1, Math.ceil(span / 60000 / 5));
  const xTicks = [];
  seconds.forEach((t, i) => {
    if (t % (stepMin * 60000) === 0) xTicks.push({ t, x: x(i), label: clock(t, { seconds: false }) });
  });

  const indexAt = (px) => {
    if (n === 0 || px < pad.left - 1 || px > width - pad.right + 1) return null;
    const i = n <= 1 ? 0 : Math.round(((px - pad.left) / plotW) * (n - 1));
    return Math.max(0, Math.min(n - 1, i));
  };
  return { paths, yTicks, xTicks, top, x, y, indexAt, plot: { left: pad.left, top: pad.top, width: plotW, height: plotH } };
}

/** A polyline through `values` (a sparkline) in a `width` x `height` box; [] gives "". */
export function sparkline(values, width, height, top = null) {
  if (!values.length) return "";
  const max = top ?? niceCeil(Math.max(0, ...values));
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values
    .map((v, i) => `${round2(values.length > 1 ? i * step : width)},${round2(height - (Math.max(0, v) / max) * height)}`)
    .join(" ");
}

/** Keep the last `max` samples: push `value` onto `history` (mutated) and return it. */
export function pushSample(history, value, max) {
  history.push(value);
  if (history.length > max) history.splice(0, history.length - max);
  return history;
}

/**
 * Connections of a stats answer as bars: [{role, label, websocket, polling, total, share}] with
 * `share` the fraction of the largest role (for the bar's length), player first.
 */
export function connectionRows(connections) {
  const roles = ["player", "spectator", ...Object.keys(connections ?? {}).filter((r) => r !== "player" && r !== "spectator")];
  const rows = roles.map((role) => {
    const c = connections?.[role] ?? {};
    const websocket = count(c.websocket);
    const polling = count(c.polling);
    return { role, label: humanize(role) + "s", websocket, polling, total: websocket + polling };
  });
  const max = Math.max(1, ...rows.map((r) => r.total));
  for (const r of rows) r.share = r.total / max;
  return rows;
}

// ---------------------------------------------------------------- formatting

const numberFormat = new Intl.NumberFormat("en");

export function fmtNumber(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "–";
  if (Number.isInteger(n)) return numberFormat.format(n);
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return new Intl.NumberFormat("en", { maximumFractionDigits: digits }).format(n);
}

/** 0.834 -> "83%"; outside 0-1 it is clamped. */
export function fmtPercent(fraction) {
  if (typeof fraction !== "number" || !Number.isFinite(fraction)) return "–";
  return `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
}

/** A duration in ms for a person: "850 ms", "2.05 s", "3 min 20 s", "5 h 10 min", "2 d 3 h". */
export function fmtDuration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "–";
  const sign = ms < 0 ? "−" : "";
  const abs = Math.abs(ms);
  if (abs < 1000) return `${sign}${fmtNumber(Math.round(abs * 10) / 10)} ms`;
  if (abs < 60000) return `${sign}${fmtNumber(Math.round(abs / 10) / 100)} s`;
  const s = Math.round(abs / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  const m = Math.round(s / 60);
  if (m < 1440) return `${sign}${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ""}`;
  const h = Math.round(m / 60);
  return `${sign}${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ""}`;
}

const pad2 = (n) => String(n).padStart(2, "0");

/** "14:03:07" (local time) for an ISO string or ms; with {ms: true} "14:03:07.250". */
export function clock(value, { seconds = true, ms = false } = {}) {
  const t = toMs(value);
  if (t === null) return "–";
  const d = new Date(t);
  let text = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  if (seconds) text += `:${pad2(d.getSeconds())}`;
  if (ms) text += `.${String(d.getMilliseconds()).padStart(3, "0")}`;
  return text;
}

/** A moment for a table: the clock alone (with ms unless {ms: false}) when it is today (local), else
 * "2026-11-30 14:03:07". */
export function fmtTime(value, now = Date.now(), { ms = true } = {}) {
  const t = toMs(value);
  if (t === null) return "–";
  const d = new Date(t);
  const today = new Date(now);
  const sameDay = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate();
  const date = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  return sameDay ? clock(t, { ms }) : `${date} ${clock(t)}`;
}

/** "5 min ago", "just now", "in 2 h". */
export function fmtAgo(value, now = Date.now()) {
  const t = toMs(value);
  if (t === null) return "–";
  const diff = now - t;
  if (Math.abs(diff) < 5000) return "just now";
  const text = fmtDuration(Math.abs(diff)).replace(/ \d+ (s|min|h)$/, "");
  return diff > 0 ? `${text} ago` : `in ${text}`;
}

export function isoOrDash(value) {
  const t = toMs(value);
  return t === null ? "" : new Date(t).toISOString();
}

/** "too_regular" / "atMinMs" -> "Too regular" / "At min ms". */
export function humanize(key) {
  const words = String(key)
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/[_\-.]+/g, " ")
    .trim()
    .toLowerCase();
  return words ? words[0].toUpperCase() + words.slice(1) : "";
}

// The unit a figure's key names, as its last word: play_ms, gap_s, share_pct... A key naming a
// moment (since_ms, through_ms, at_ms) holds an epoch time, not a duration.
const MOMENT_KEY = /(^|_)(since|through|until|at|from|first|last|started|completed|updated)_ms$/i;
const EPOCH_MS = 1e11; // 1973: no duration a signal reports is that long
const UNIT_SUFFIXES = [
  [MOMENT_KEY, (v) => (v > EPOCH_MS ? fmtTime(v, Date.now(), { ms: false }) : fmtDuration(v))],
  [/(^|_)ms$/i, (v) => (v > EPOCH_MS ? fmtTime(v, Date.now(), { ms: false }) : fmtDuration(v))],
  [/(^|_)(s|secs|seconds)$/i, (v) => fmtDuration(v * 1000)],
  [/(^|_)hours$/i, (v) => fmtDuration(v * 3_600_000)],
  [/(^|_)(pct|percent)$/i, (v) => `${fmtNumber(v)}%`],
  [/(^|_)(ratio|share|fraction|utilization|figure|confidence)$/i, (v) => (v >= 0 && v <= 1 ? fmtPercent(v) : fmtNumber(v))],
];
const LIST_MAX = 8;

/** One figure's value for a person; `key` tells the unit (_ms, _s, hours, _pct, fraction...). */
export function fmtFigure(key, value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") {
    for (const [pattern, format] of UNIT_SUFFIXES) if (pattern.test(key)) return format(value);
    return fmtNumber(value);
  }
  if (Array.isArray(value)) {
    const shown = value.slice(0, LIST_MAX).map((v) => fmtFigure(key, v));
    return value.length > LIST_MAX ? `${shown.join(", ")} … (${value.length} in all)` : shown.join(", ") || "none";
  }
  if (typeof value === "object") {
    return Object.entries(value).map(([k, v]) => `${humanize(k).toLowerCase()} ${fmtFigure(k, v)}`).join(", ") || "–";
  }
  return String(value);
}

// What the scorer (app/anticheat/scoring.py) names its signals and their evidence, in words;
// a name not listed here is shown humanized ("new_signal" -> "New signal").
const SIGNAL_LABELS = {
  at_min_ms: "Completions right at min_ms",
  regular_timing: "Play times too regular",
  sustained_play: "Play without a break",
  proof_invalid: "Refused proofs",
  token_invalid: "Other players' tokens",
  too_fast: "Too-fast bursts",
  addresses: "Many addresses",
};
const FIGURE_LABELS = {
  fraction: "Share",
  at_min: "At min_ms",
  margin_ms: "Within",
  cv: "CV (sd/mean)",
  sd_ms: "SD",
  mean_ms: "Mean",
  hours: "For",
  utilization: "Of the limit",
  since_ms: "Since",
  through_ms: "Through",
  most_in_a_minute: "Most in a minute",
  distinct: "Distinct addresses",
};
const SCORE_KEYS = ["figure", "score", "weight"];

/** A figure's label: its key without the unit suffix fmtFigure already shows ("mean_ms" -> "Mean"). */
function figureLabel(key) {
  if (FIGURE_LABELS[key]) return FIGURE_LABELS[key];
  const bare = String(key).replace(/_(ms|s|secs|seconds|pct|percent)$/i, "");
  return humanize(bare || key);
}

/**
 * A suspect's signals for a person: [{key, label, score, seen, figures: [{key, label, text}]}],
 * the strongest first. A signal is an object of evidence whose `figure` (or `score`, `weight`),
 * 0-1, is shown apart as `score`; evidence that is null (nothing measured) is left out. `seen` is
 * false for a signal whose score is 0: checked, nothing found. A bare number in 0-1 is a score;
 * any other value is shown as text.
 */
export function describeSignals(signals) {
  if (!signals || typeof signals !== "object") return [];
  const out = Object.entries(signals).map(([key, value]) => {
    let score = null;
    let figures = [];
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) {
        if (SCORE_KEYS.includes(k) && typeof v === "number" && score === null) score = v;
        else if (v !== null && v !== undefined) figures.push({ key: k, label: figureLabel(k), text: fmtFigure(k, v) });
      }
    } else if (typeof value === "number" && value >= 0 && value <= 1 && !/_(s|pct)$|count$|^n_/.test(key)) {
      score = value;
    } else {
      figures = [{ key, label: "Value", text: fmtFigure(key, value) }];
    }
    return { key, label: SIGNAL_LABELS[key] ?? humanize(key), score, seen: score === null || score > 0, figures };
  });
  return out.sort((a, b) => (b.score ?? -1) - (a.score ?? -1));
}

/** A suspicion in 0-1 as a level a person reads at a glance. */
export function suspicionLevel(score) {
  if (typeof score !== "number") return "unknown";
  if (score >= 0.8) return "high";
  if (score >= 0.5) return "medium";
  return "low";
}

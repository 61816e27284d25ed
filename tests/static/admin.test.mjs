// static/admin-core.js without a browser: the operator API client (the key on every call, 401 as
// AuthError), cursor paging, the stats route turned into per-second series and chart geometry,
// and the formatting of signals, durations and times.
//
//   node --test tests/static/admin.test.mjs

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AdminApi,
  ApiError,
  AuthError,
  CursorPager,
  MAX_REFUSED_SERIES,
  completionSeries,
  connectionRows,
  describeSignals,
  exportFileName,
  fmtAgo,
  fmtDuration,
  fmtFigure,
  fmtNumber,
  fmtPercent,
  humanize,
  niceCeil,
  pushSample,
  sparkline,
  stackedArea,
  suspensionBody,
  suspensionFromExport,
} from "../../static/admin-core.js";

function fakeFetch(answers) {
  const calls = [];
  const fn = async (path, init) => {
    calls.push({ path, ...init });
    const [status, body] = answers.shift() ?? [200, {}];
    return { status, ok: status >= 200 && status < 300, json: async () => body };
  };
  fn.calls = calls;
  return fn;
}

test("every call sends the key as a bearer token; a 401 is AuthError, other refusals ApiError", async () => {
  const fetch = fakeFetch([
    [200, { entries: [], next_cursor: null }],
    [200, { player_id: "p 1", suspended: true, hidden: false }],
    [401, { error: { code: "unauthorized", message: "send Authorization" } }],
    [404, { error: { code: "not_found", message: "no player" } }],
  ]);
  const api = new AdminApi(() => "k3y", fetch);
  await api.suspects("c1", 20);
  assert.equal(fetch.calls[0].path, "/api/v1/admin/suspects?limit=20&cursor=c1");
  assert.equal(fetch.calls[0].method, "GET");
  assert.equal(fetch.calls[0].headers.authorization, "Bearer k3y");
  assert.equal(fetch.calls[0].body, undefined);

  await api.setSuspension("p 1", true, false);
  assert.equal(fetch.calls[1].path, "/api/v1/players/p%201/suspension");
  assert.equal(fetch.calls[1].method, "PUT");
  assert.deepEqual(JSON.parse(fetch.calls[1].body), { suspended: true, hidden: false });
  assert.equal(fetch.calls[1].headers["content-type"], "application/json");

  await assert.rejects(api.stats(), AuthError);
  await assert.rejects(api.profile("x"), (err) => err instanceof ApiError && err.code === "not_found" && err.status === 404);
});

test("no key: AuthError before any request", async () => {
  const fetch = fakeFetch([]);
  await assert.rejects(new AdminApi(() => null, fetch).stats(), AuthError);
  assert.equal(fetch.calls.length, 0);
});

test("the routes of PROTOCOL.md 9", async () => {
  const fetch = fakeFetch([]);
  const api = new AdminApi(() => "k", fetch);
  await api.actions("a/b", null, 50);
  await api.exportPlayer("ann");
  await api.erase("ann");
  await api.stats();
  assert.deepEqual(
    fetch.calls.map((c) => `${c.method} ${c.path}`),
    [
      "GET /api/v1/admin/players/a%2Fb/actions?limit=50",
      "GET /api/v1/admin/players/ann/export",
      "DELETE /api/v1/admin/players/ann",
      "GET /api/v1/admin/stats",
    ],
  );
});

test("the pager appends pages until next_cursor is null, and drops a page that lands after a reset", async () => {
  const pages = { null: { entries: [1, 2], next_cursor: "b" }, b: { entries: [3], next_cursor: null } };
  const seen = [];
  const pager = new CursorPager(async (cursor) => {
    seen.push(cursor);
    return pages[cursor];
  });
  assert.equal(pager.hasMore, true);
  assert.deepEqual(await pager.more(), [1, 2]);
  assert.equal(pager.hasMore, true);
  assert.deepEqual(await pager.more(), [3]);
  assert.equal(pager.hasMore, false);
  assert.deepEqual(await pager.more(), []);
  assert.deepEqual(pager.entries, [1, 2, 3]);
  assert.deepEqual(seen, [null, "b"]);

  let release;
  const slow = new CursorPager(() => new Promise((resolve) => (release = resolve)));
  const pending = slow.more();
  assert.deepEqual(await slow.more(), [], "a second more() while loading does nothing");
  slow.reset();
  release({ entries: ["old"], next_cursor: "x" });
  assert.deepEqual(await pending, []);
  assert.deepEqual(slow.entries, []);
  assert.equal(slow.cursor, null);
});

test("a failed page leaves the pager where it was", async () => {
  let fail = true;
  const pager = new CursorPager(async () => {
    if (fail) throw new Error("down");
    return { entries: ["a"], next_cursor: null };
  });
  await assert.rejects(pager.more(), /down/);
  assert.equal(pager.loading, false);
  fail = false;
  assert.deepEqual(await pager.more(), ["a"]);
});

const T0 = Date.parse("2026-11-30T14:00:00Z");
const iso = (ms) => new Date(ms).toISOString();

test("completions become one value per second over the window, gaps filled with 0", () => {
  const stats = {
    at: iso(T0 + 10500), // the second at 10 s is still being counted: the chart ends at 9 s
    window_s: 10,
    completions: [
      { t: iso(T0 + 2000), credited: 3, refused: { too_fast: 1 } },
      { t: iso(T0 + 9000), credited: 1, refused: { proof_invalid: 2, too_fast: 4 } },
      { t: iso(T0 - 60000), credited: 99, refused: {} }, // before the window: ignored
      { t: iso(T0 + 10000), credited: 7, refused: {} }, // the current second: not yet
    ],
  };
  const chart = completionSeries(stats);
  assert.equal(chart.seconds.length, 10);
  assert.equal(chart.start, T0);
  assert.equal(chart.end, T0 + 9000);
  assert.deepEqual(chart.series.map((s) => s.key), ["credited", "refused:too_fast", "refused:proof_invalid"]);
  assert.deepEqual(chart.series[0].values, [0, 0, 3, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(chart.series[1].values, [0, 0, 1, 0, 0, 0, 0, 0, 0, 4]);
  assert.equal(chart.series[2].total, 2);
  assert.equal(chart.series[0].last, 1);
  assert.equal(chart.series[0].recent, 0.4, "4 credited in the last 10 s");
  assert.notEqual(chart.series[1].color, chart.series[2].color);
});

test("an empty or odd stats answer still gives a chart (credited only, all zero)", () => {
  const chart = completionSeries({ at: iso(T0), window_s: 300, completions: [{ t: "nonsense", credited: 5 }] });
  assert.equal(chart.series.length, 1);
  assert.equal(chart.series[0].total, 0);
  assert.equal(completionSeries({}).seconds.length, 300);
});

test("many refusal codes: the biggest keep their own series, the rest are summed as other", () => {
  const refused = {};
  for (let i = 0; i < 10; i++) refused[`code_${i}`] = i + 1;
  const chart = completionSeries({ at: iso(T0 + 1000), window_s: 5, completions: [{ t: iso(T0), credited: 0, refused }] });
  const keys = chart.series.map((s) => s.key);
  assert.equal(keys.length, 1 + MAX_REFUSED_SERIES);
  assert.equal(keys.at(-1), "refused:other");
  assert.ok(keys.includes("refused:code_9") && !keys.includes("refused:code_0"));
  const total = chart.series.slice(1).reduce((a, s) => a + s.total, 0);
  assert.equal(total, 55, "nothing lost in the summing");
});

test("stacked areas: each series sits on the one below; ticks are round; the pointer finds its second", () => {
  const chart = {
    seconds: [T0, T0 + 1000, T0 + 2000],
    series: [
      { key: "credited", color: "g", label: "Credited", values: [1, 2, 3] },
      { key: "refused:too_fast", color: "o", label: "x", values: [1, 0, 4] },
    ],
  };
  const box = { width: 120, height: 110, pad: { top: 0, right: 10, bottom: 10, left: 10 } };
  const geo = stackedArea(chart, box);
  assert.equal(geo.top, 10); // max stack 7 -> 10
  assert.deepEqual(geo.yTicks.map((t) => t.value), [0, 2.5, 5, 7.5, 10]);
  assert.equal(geo.y(0), 100);
  assert.equal(geo.y(10), 0);
  // The second series' top edge is the sum of both; its bottom edge is the first series' top.
  assert.ok(geo.paths[1].d.startsWith(`M10,${geo.y(2)}L60,${geo.y(2)}L110,${geo.y(7)}`), geo.paths[1].d);
  assert.ok(geo.paths[1].d.endsWith(`L10,${geo.y(1)}Z`), geo.paths[1].d);
  assert.equal(geo.indexAt(10), 0);
  assert.equal(geo.indexAt(62), 1);
  assert.equal(geo.indexAt(110), 2);
  assert.equal(geo.indexAt(0), null);
  assert.deepEqual(geo.xTicks.map((t) => t.t), [T0], "whole minutes only");
});

test("round axis tops", () => {
  assert.deepEqual([0, 0.4, 1, 3, 7, 10, 11, 26, 180, 1001].map(niceCeil), [1, 1, 1, 5, 10, 10, 20, 50, 200, 2000]);
});

test("sparkline and its bounded history", () => {
  const history = [];
  for (let i = 0; i < 5; i++) pushSample(history, i, 3);
  assert.deepEqual(history, [2, 3, 4]);
  assert.equal(sparkline([0, 5], 100, 10), "0,10 100,0", "the top is the round ceiling of the largest");
  assert.equal(sparkline([0, 5], 100, 10, 10), "0,10 100,5");
  assert.equal(sparkline([], 100, 10), "");
});

test("connections by role and transport, as bars relative to the largest role", () => {
  const rows = connectionRows({ player: { websocket: 6, polling: 2 }, spectator: { websocket: 1, polling: 3 } });
  assert.deepEqual(
    rows.map((r) => [r.role, r.label, r.total, r.share]),
    [["player", "Players", 8, 1], ["spectator", "Spectators", 4, 0.5]],
  );
  assert.deepEqual(connectionRows(undefined).map((r) => r.total), [0, 0]);
});

test("signals (the scorer's shape) read as figures with units, the strongest first", () => {
  const since = Date.parse("2026-11-30T09:00:00Z");
  const signals = describeSignals({
    at_min_ms: { figure: 0.95, fraction: 0.97, at_min: 145, completions: 150, margin_ms: 150 },
    regular_timing: { figure: 0.9, action: "complete_level", completions: 150, cv: 0.0123, sd_ms: 12, mean_ms: 2012.4 },
    sustained_play: { figure: 0.2, hours: 2.5, utilization: 0.93, since_ms: since, through_ms: since + 9_000_000 },
    addresses: { figure: 0.0, distinct: 1 },
    too_fast: { figure: 0.0, count: 0, most_in_a_minute: 0, extra: null },
    legacy: 0.5,
    notes: ["10.0.0.1", "10.0.0.2"],
  });
  assert.deepEqual(signals.map((s) => s.key), ["at_min_ms", "regular_timing", "legacy", "sustained_play", "addresses", "too_fast", "notes"]);
  const [atMin, regular, , sustained] = signals;
  assert.equal(atMin.label, "Completions right at min_ms");
  assert.equal(atMin.score, 0.95);
  assert.deepEqual(atMin.figures.map((f) => `${f.label}: ${f.text}`),
    ["Share: 97%", "At min_ms: 145", "Completions: 150", "Within: 150 ms"]);
  assert.deepEqual(regular.figures.map((f) => `${f.label}: ${f.text}`),
    ["Action: complete_level", "Completions: 150", "CV (sd/mean): 0.012", "SD: 12 ms", "Mean: 2.01 s"]);
  const sustainedText = sustained.figures.map((f) => `${f.label}: ${f.text}`);
  assert.deepEqual(sustainedText.slice(0, 2), ["For: 2 h 30 min", "Of the limit: 93%"]);
  assert.match(sustainedText[2], /^Since: 2026-11-30 \d\d:00:00$/, "a moment, not a duration");
  assert.deepEqual(signals.map((s) => s.seen), [true, true, true, true, false, false, true]);
  assert.deepEqual(signals[5].figures.map((f) => f.key), ["count", "most_in_a_minute"], "null evidence left out");
  assert.equal(signals.find((s) => s.key === "legacy").score, 0.5);
  assert.deepEqual(signals.at(-1).figures, [{ key: "notes", label: "Value", text: "10.0.0.1, 10.0.0.2" }]);
  assert.equal(describeSignals({ new_signal: { figure: 0.3 } })[0].label, "New signal");
  assert.deepEqual(describeSignals(null), []);
});

test("figures: units from the key, lists cut short, nested objects spelled out", () => {
  assert.equal(fmtFigure("gap_s", 5400), "1 h 30 min");
  assert.equal(fmtFigure("near_min_ratio", 0.42), "42%");
  assert.equal(fmtFigure("share_pct", 12.5), "12.5%");
  assert.equal(fmtFigure("flag", true), "yes");
  assert.equal(fmtFigure("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), "1, 2, 3, 4, 5, 6, 7, 8 … (10 in all)");
  assert.equal(fmtFigure("by_code", { proof_invalid: 3, token_invalid: 1 }), "proof invalid 3, token invalid 1");
  assert.equal(fmtFigure("x", null), "–");
});

test("numbers, percentages, durations, ages", () => {
  assert.equal(fmtNumber(12345), "12,345");
  assert.equal(fmtNumber(0.012345), "0.012");
  assert.equal(fmtNumber(12.345), "12.3");
  assert.equal(fmtNumber(undefined), "–");
  assert.equal(fmtPercent(0.834), "83%");
  assert.equal(fmtPercent(1.7), "100%");
  assert.deepEqual(
    [0, 850, 2050, 200000, 18600000, 183600000].map(fmtDuration),
    ["0 ms", "850 ms", "2.05 s", "3 min 20 s", "5 h 10 min", "2 d 3 h"],
  );
  assert.equal(fmtAgo(T0 - 200000, T0), "3 min ago");
  assert.equal(fmtAgo(T0, T0), "just now");
  assert.equal(fmtAgo("2026-11-30T13:00:00Z", T0), "1 h ago");
  assert.equal(humanize("too_regular"), "Too regular");
  assert.equal(humanize("atMinMs"), "At min ms");
});

test("suspension state from the export, and a body that changes one field only", () => {
  assert.deepEqual(suspensionFromExport({ moderation: { suspended: true, hidden: false } }), { suspended: true, hidden: false });
  assert.deepEqual(suspensionFromExport({ profile: { suspended: false } }), { suspended: false, hidden: null });
  assert.deepEqual(suspensionFromExport(null), { suspended: null, hidden: null });
  assert.deepEqual(suspensionBody({ suspended: true, hidden: false }, { hidden: true }), { suspended: true, hidden: true });
  assert.deepEqual(suspensionBody({ suspended: null, hidden: null }, { suspended: true }), { suspended: true, hidden: false });
});

test("the export's file name is safe and dated", () => {
  assert.equal(exportFileName("a/b c", new Date("2026-11-30T14:03:07.250Z")), "player-a_b_c-2026-11-30T14-03-07Z.json");
});

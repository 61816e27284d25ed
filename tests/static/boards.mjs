// The page's v1.1 boards in headless Chromium (playwright-core with the system browser):
//
//   node tests/static/boards.mjs '<json config>'
//
// config: {"url", "root", "chromium", "screenshots": "<folder>", "scenario": "history" | "tournament", ...}
//   history:    {"days": ["<yesterday>", "<the day before>", "<the day before that>"]}: a spectator
//               watches region:eu, sees the countdowns to the daily and weekly resets tick, steps back
//               day by day until the server says not_found, then forward to the live board; then
//               one week back.
//   tournament: {"tournament": "<id>", "upcoming": "<id>", "player_id", "name", "region", "action"}:
//               a player gets a session, opens the Tournaments tab, joins the running tournament,
//               watches its board, plays, sees its own row arrive live, then the final board after the end.
//
// Prints exactly one JSON object on stdout with everything observed and exits 0; on a failure it
// prints what it observed so far plus {"error": "..."} (and screenshots named failure-*.png).

import path from "node:path";

import { WAIT_MS, browserScript, text } from "./chromium.mjs";

const { config, result, newPage, step, run } = browserScript();
result.scenario = config.scenario;

const VIEWPORT = { viewport: { width: 1280, height: 1000 } };

async function tableRows(page, selector) {
  const rows = [];
  for (const row of await page.locator(`${selector} tr`).all()) rows.push(await row.locator("td").allInnerTexts());
  return rows;
}

// Two reads of a countdown: now, and once it has moved on (a page ticking once a second moves
// it within about a second; a loaded machine can delay a timer, so it is given a few).
async function ticking(page, selector) {
  const first = await text(page, selector);
  await page.waitForFunction(([sel, was]) => document.querySelector(sel)?.innerText !== was,
                             [selector, first], { timeout: 5000 }).catch(() => {});
  return [first, await text(page, selector)];
}

async function history() {
  const page = await newPage("spectator", VIEWPORT);
  await page.goto(`${config.url}/?view=spectator&room=region:eu`);
  await page.locator("#watch-status", { hasText: "Watching region:eu" }).waitFor({ timeout: WAIT_MS });
  await page.locator("#clock-daily", { hasText: /^Resets in \d/ }).waitFor({ timeout: WAIT_MS });
  result.daily_clock = await ticking(page, "#clock-daily");
  result.weekly_clock = await text(page, "#clock-weekly");
  result.live_daily = await tableRows(page, "#board-daily");
  step("countdowns");

  // Back day by day: each an ended, final board, until the server no longer keeps one.
  result.days = [];
  for (const day of config.days) {
    await page.getByRole("button", { name: "Previous day" }).click();
    const title = page.locator("#title-daily", { hasText: day });
    const gone = page.locator("#history-daily", { hasText: "no longer kept" });
    await title.or(gone).waitFor({ timeout: WAIT_MS });
    result.days.push({
      day,
      title: await text(page, "#title-daily"),
      note: await text(page, "#history-daily"),
      clock: await text(page, "#clock-daily"),
      ended: await page.locator("#board-daily").getAttribute("data-ended"),
      rows: await tableRows(page, "#board-daily"),
      previous_disabled: await page.locator("#prev-daily").isDisabled(),
    });
    await page.screenshot({ path: path.join(config.screenshots, `day-${result.days.length}.png`), fullPage: true });
  }
  step("stepped back");

  // Forward again, one day at a time, to the live board.
  result.forward = [];
  for (let i = 0; i < config.days.length - 1; i++) {
    const before = await text(page, "#title-daily");
    await page.getByRole("button", { name: "Next day" }).click();
    await page.waitForFunction((b) => document.getElementById("title-daily").textContent !== b, before,
      { timeout: WAIT_MS });
    result.forward.push({
      title: await text(page, "#title-daily"),
      rows: await tableRows(page, "#board-daily"),
      live_button: await page.locator("#live-daily").isVisible(),
    });
  }
  result.back_live_clock = await text(page, "#clock-daily");
  step("forward to live");

  // One week back: the last ISO week, or not kept any more (it ended more than BOARD_HISTORY_DAYS ago).
  await page.getByRole("button", { name: "Previous week" }).click();
  await page.locator("#title-weekly", { hasText: "(ended)" })
    .or(page.locator("#history-weekly", { hasText: "no longer kept" })).waitFor({ timeout: WAIT_MS });
  result.week = {
    title: await text(page, "#title-weekly"),
    note: await text(page, "#history-weekly"),
    rows: await tableRows(page, "#board-weekly"),
  };
  step("a week back");
}

async function tournament() {
  const page = await newPage("player", VIEWPORT);
  await page.goto(`${config.url}/`);
  await page.locator("#connection[data-state=connected]").waitFor({ timeout: WAIT_MS });
  await page.getByLabel("Name").fill(config.name);
  await page.getByLabel("Region").selectOption(config.region);
  await page.getByLabel("Player id").fill(config.player_id);
  await page.getByRole("button", { name: "Get a guest session" }).click();
  await page.locator("#identity", { hasText: `Player: ${config.name}` }).waitFor({ timeout: WAIT_MS });
  await page.locator("#connection[data-state=connected]").waitFor({ timeout: WAIT_MS });
  step("session");

  await page.getByRole("tab", { name: "Tournaments" }).click();
  const item = page.locator(`li[data-tournament="${config.tournament}"]`);
  await item.waitFor({ timeout: WAIT_MS });
  const upcoming = page.locator(`li[data-tournament="${config.upcoming}"]`);
  result.listed = {
    running: { text: await item.innerText(), state: await item.getAttribute("data-state") },
    upcoming: { countdown: await upcoming.locator("[data-countdown]").innerText(),
                state: await upcoming.getAttribute("data-state") },
  };
  await item.getByRole("button", { name: "Join" }).click();
  await item.getByRole("button", { name: "Joined" }).waitFor({ timeout: WAIT_MS });
  result.joined = await item.innerText();
  step("joined");

  await item.getByRole("button", { name: "Watch board" }).click();
  const board = page.locator("[data-tournament-board]");
  await board.locator("[data-board-status]", { hasText: "Live:" }).waitFor({ timeout: WAIT_MS });
  result.board_before = {
    title: await text(page, "[data-board-title]"),
    rows: await tableRows(page, "[data-board-rows]"),
    countdown: await ticking(page, "[data-board-countdown]"),
  };
  step("watching");

  // Play one action on the Play tab; the tournament's board, still watched, gets the credit live.
  await page.getByRole("tab", { name: "Play" }).click();
  await page.locator(`input[name=action][value="${config.action}"]`).check();
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await page.locator("#complete:enabled").waitFor({ timeout: WAIT_MS });
  await page.getByRole("button", { name: "Complete" }).click();
  await page.locator("#result:not([hidden])").waitFor({ timeout: WAIT_MS });
  result.ack = JSON.parse(await page.locator("#ack-json").textContent());
  await page.getByRole("tab", { name: "Tournaments" }).click();
  await board.locator(`tr[data-player-id="${config.player_id}"] td.score`, { hasText: /^10$/ })
    .waitFor({ timeout: WAIT_MS });
  result.board_live = {
    rows: await tableRows(page, "[data-board-rows]"),
    note: await text(page, "[data-board-status]"),
    phase: await board.getAttribute("data-phase"),
    countdown: await text(page, "[data-board-countdown]"),
  };
  await page.screenshot({ path: path.join(config.screenshots, "tournament-live.png"), fullPage: true });
  step("credit on the board");

  // The end: the board turns final, read again from the server.
  await page.locator("[data-tournament-board][data-phase=final]").waitFor({ timeout: config.end_wait_ms });
  result.board_final = {
    rows: await tableRows(page, "[data-board-rows]"),
    note: await text(page, "[data-board-status]"),
    countdown: await text(page, "[data-board-countdown]"),
    item_state: await item.getAttribute("data-state"),
    buttons: await item.getByRole("button").allInnerTexts(),
  };
  await page.screenshot({ path: path.join(config.screenshots, "tournament-final.png"), fullPage: true });
  step("final board");
}

await run(() => ({ history, tournament })[config.scenario]());

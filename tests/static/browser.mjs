// The browser client (static/) in headless Chromium, driven by playwright-core with the system
// browser: one page watches a region as a spectator, a second plays one action as a player.
//
//   node tests/static/browser.mjs '<json config>'
//
// config: {"url": "http://127.0.0.1:1234", "root": "<repo root>", "chromium": "/usr/bin/chromium",
//          "transport": "default" | "polling", "screenshots": "<folder>",
//          "player_id": "...", "name": "...", "region": "eu", "action": "quick"}
//
// The test seeds two players with 5 points in the region first, so the player's 10 points move them down.
//
// Prints exactly one JSON object on stdout with everything observed and exits 0; on a failure it
// prints what it observed so far plus {"error": "..."} (and screenshots named failure-*.png).

import path from "node:path";

import { WAIT_MS, browserScript, text } from "./chromium.mjs";

const { config, result, pages, newPage, step, run } = browserScript({ requests: [], websockets: [], http_errors: [] });
result.transport = config.transport;

function query() {
  return config.transport === "polling" ? "transport=polling" : "";
}

function pageUrl(extra) {
  const q = [extra, query()].filter(Boolean).join("&");
  return `${config.url}/${q ? `?${q}` : ""}`;
}

// A page with, beside its errors, every request of the page and its workers, every HTTP error
// status and every websocket it opens.
async function observedPage(label, viewport) {
  const page = await newPage(label, { viewport });
  page.context().on("request", (req) => result.requests.push(req.url()));
  page.context().on("response", (resp) => {
    if (resp.status() >= 400) result.http_errors.push({ page: label, url: resp.url(), status: resp.status() });
  });
  page.on("websocket", (ws) => result.websockets.push(ws.url()));
  return page;
}

async function playAndWatch() {
  // Page 1: the spectator, watching the player's region.
  const room = `region:${config.region}`;
  const spectator = await observedPage("spectator", { width: 1280, height: 860 });
  await spectator.goto(pageUrl("view=spectator"));
  await spectator.locator("#connection[data-state=connected]").waitFor({ timeout: WAIT_MS });
  await spectator.getByLabel("Room").selectOption(room);
  await spectator.getByRole("button", { name: "Watch", exact: true }).click();
  await spectator.locator("#watch-status", { hasText: `Watching ${room}` }).waitFor({ timeout: WAIT_MS });
  step("spectator watching");

  // Page 2: the player.
  const player = await observedPage("player", { width: 1280, height: 1100 });
  await player.goto(pageUrl(""));
  await player.locator("#connection[data-state=connected]").waitFor({ timeout: WAIT_MS });
  await player.getByLabel("Name").fill(config.name);
  await player.getByLabel("Region").selectOption(config.region);
  await player.getByLabel("Player id").fill(config.player_id);
  await player.getByRole("button", { name: "Get a guest session" }).click();
  await player.locator("#session-box:not([hidden])").waitFor({ timeout: WAIT_MS });
  result.session_info = await text(player, "#session-info");
  await player.locator("#identity", { hasText: `Player: ${config.name}` }).waitFor({ timeout: WAIT_MS });
  await player.locator("#connection[data-state=connected]").waitFor({ timeout: WAIT_MS });
  step("player session");

  await player.locator(`input[name=action][value="${config.action}"]`).check();
  await player.getByRole("button", { name: "Start", exact: true }).click();
  await player.locator("#challenge:not([hidden])").waitFor({ timeout: WAIT_MS });
  result.challenge = {
    action: await text(player, "#ch-action"),
    difficulty: await text(player, "#ch-difficulty"),
  };
  await player.locator("#complete:enabled").waitFor({ timeout: WAIT_MS });
  result.pow_status = await text(player, "#pow-status");
  step("proof found");
  await player.getByRole("button", { name: "Complete" }).click();
  await player.locator("#result:not([hidden])").waitFor({ timeout: WAIT_MS });
  result.ack_summary = await text(player, "#ack-summary");
  result.ack = JSON.parse(await player.locator("#ack-json").textContent());
  step("completed");

  // The achievement toast, and the ranks once the flusher has applied the score.
  const toast = player.locator(".toast-achievement", { hasText: "First steps" });
  await toast.waitFor({ timeout: WAIT_MS });
  result.toasts = await player.locator(".toast-achievement").allInnerTexts();
  await player.locator("#rank-region", { hasText: "#1" }).waitFor({ timeout: WAIT_MS });
  result.player_facts = {
    total: await text(player, "#score-total"),
    daily: await text(player, "#score-daily"),
    weekly: await text(player, "#score-weekly"),
    rank_global: await text(player, "#rank-global"),
    rank_region: await text(player, "#rank-region"),
    achievements: await text(player, "#achievements"),
  };
  step("player result");

  // The spectator's boards, updated live from the delta.
  const rows = {};
  for (const period of ["all", "daily", "weekly"]) {
    const row = spectator.locator(`#board-${period} tr[data-player-id="${config.player_id}"]`);
    await row.locator("td.score", { hasText: /^10$/ }).waitFor({ timeout: WAIT_MS });
    const cells = await row.locator("td").allInnerTexts();
    rows[period] = { cells, classes: await row.getAttribute("class") };
  }
  result.spectator_rows = rows;
  result.spectator_board_all = [];
  for (const row of await spectator.locator("#board-all tr").all()) {
    result.spectator_board_all.push({ cells: await row.locator("td").allInnerTexts(), classes: await row.getAttribute("class") });
  }
  result.watch_seq = await text(spectator, "#watch-seq");
  step("spectator updated");

  // The transport indicator: websocket after the upgrade by default, polling when forced.
  const expected = config.transport === "polling" ? "polling" : "websocket";
  for (const [label, page] of Object.entries(pages)) {
    await page.locator(`#transport[data-transport="${expected}"]`).waitFor({ timeout: WAIT_MS });
  }
  if (config.transport === "polling") await spectator.waitForTimeout(1000); // no late upgrade
  result.indicators = {};
  for (const [label, page] of Object.entries(pages)) {
    result.indicators[label] = {
      connection: await text(page, "#connection"),
      transport: await text(page, "#transport"),
      engine: await page.evaluate(() => document.getElementById("transport").dataset.transport),
    };
  }
  step("indicators");

  // Screenshots for a person to look at: desktop, then phone-sized.
  await spectator.waitForTimeout(700); // let the rank-change slide finish
  await player.screenshot({ path: path.join(config.screenshots, "player.png"), fullPage: true });
  await spectator.screenshot({ path: path.join(config.screenshots, "spectator.png"), fullPage: true });
  await player.setViewportSize({ width: 390, height: 844 });
  await spectator.setViewportSize({ width: 390, height: 844 });
  await player.screenshot({ path: path.join(config.screenshots, "player-mobile.png"), fullPage: true });
  await spectator.screenshot({ path: path.join(config.screenshots, "spectator-mobile.png"), fullPage: true });
  result.mobile_overflow = {};
  for (const [label, page] of Object.entries(pages)) {
    result.mobile_overflow[label] = await page.evaluate(
      () => document.documentElement.scrollWidth > document.documentElement.clientWidth,
    );
  }
  step("screenshots");

  // A returning guest in the same browser: its guest key, kept beside the player id, gets it back.
  result.guest_key_length = await player.evaluate(
    (id) => localStorage.getItem(`scoreboard.guest_key.${id}`)?.length ?? 0, config.player_id);
  await player.getByRole("button", { name: "Change player" }).click();
  await player.locator("#session-form:not([hidden])").waitFor({ timeout: WAIT_MS });
  await player.getByRole("button", { name: "Get a guest session" }).click();
  await player.locator("#session-form[hidden]").waitFor({ state: "attached", timeout: WAIT_MS });
  result.returning_session_info = await text(player, "#session-info");
  step("returning guest");
}

await run(playAndWatch);

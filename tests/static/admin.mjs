// The operator console (static/admin.html) in headless Chromium, driven by playwright-core with the
// system browser, against a real server whose test seeded a suspect and a player with audit entries.
//
//   node tests/static/admin.mjs '<json config>'
//
// config: {"url": "http://127.0.0.1:1234", "root": "<repo root>", "chromium": "/usr/bin/chromium",
//          "screenshots": "<folder>",
//          "api_key": "...", "wrong_key": "...", "suspect_id": "...", "player_id": "...",
//          "audit_entries": <how many audit rows the player has>}
//
// Prints exactly one JSON object on stdout with everything observed and exits 0; on a failure it
// prints what it observed so far plus {"error": "..."} (and a screenshot named failure-console.png).

import { readFileSync } from "node:fs";
import path from "node:path";

import { WAIT_MS, browserScript, text as textOn } from "./chromium.mjs";

// Beside what every script records: Chromium's "Failed to load resource: ... status of 401" lines,
// apart from console_errors (one per http_errors entry).
const { config, result, newPage, step, run } = browserScript({
  resource_errors: [],
  requests: [],
  api_requests: [], // {method, path, authorization, body} of every /api/ call
  http_errors: [],
});
let page;

const text = (selector) => textOn(page, selector);
const shot = (name, fullPage = true) => page.screenshot({ path: path.join(config.screenshots, name), fullPage });

/** The player's profile as the server answers it now, from node (not the page): its HTTP status. */
async function profileStatus(playerId) {
  const resp = await fetch(`${config.url}/api/v1/players/${encodeURIComponent(playerId)}`);
  return resp.status;
}

async function operate() {
  page = await newPage("console", { viewport: { width: 1280, height: 800 }, acceptDownloads: true },
                       { resourceErrors: true });
  const context = page.context();
  context.on("request", (req) => {
    result.requests.push(req.url());
    const url = new URL(req.url());
    if (url.pathname.startsWith("/api/")) {
      result.api_requests.push({
        method: req.method(),
        path: url.pathname + url.search,
        authorization: req.headers().authorization ?? null,
        body: req.postData() ?? null,
      });
    }
  });
  context.on("response", (resp) => {
    if (resp.status() >= 400) {
      const url = new URL(resp.url());
      result.http_errors.push({ method: resp.request().method(), path: url.pathname, status: resp.status() });
    }
  });

  // 1. The page asks for the key, and a wrong one is refused (401) and asked for again.
  const response = await page.goto(`${config.url}/admin`);
  result.page_headers = response.headers();
  await page.locator("#login:not([hidden])").waitFor({ timeout: WAIT_MS });
  result.console_hidden_before_key = await page.locator("#console").isHidden();
  result.api_calls_before_key = result.api_requests.length;
  await page.getByLabel("API key", { exact: true }).fill(config.wrong_key);
  await page.getByRole("button", { name: "Open the console" }).click();
  await page.locator("#key-error:not([hidden])").waitFor({ timeout: WAIT_MS });
  result.wrong_key_error = await text("#key-error");
  result.stored_after_wrong_key = await page.evaluate(() => sessionStorage.length);
  step("wrong key refused");

  await page.getByLabel("API key", { exact: true }).fill(config.api_key);
  await page.getByRole("button", { name: "Open the console" }).click();
  await page.locator("#console:not([hidden])").waitFor({ timeout: WAIT_MS });
  result.storage = await page.evaluate(() => ({
    session: Object.fromEntries(Object.keys(sessionStorage).map((k) => [k, sessionStorage.getItem(k)])),
    local_length: localStorage.length,
    cookie: document.cookie,
  }));
  result.key_field_after = await page.getByLabel("API key", { exact: true }).inputValue();
  step("signed in");

  // 2. The live figures: the chart with its legend, connections, queue, lease; refreshed every 2 s.
  await page.locator("#live[data-state=live]").waitFor({ timeout: WAIT_MS });
  await page.locator('#completions-chart path[data-series="credited"]').waitFor({ timeout: WAIT_MS });
  const statsCalls = () => result.api_requests.filter((r) => r.path === "/api/v1/admin/stats").length;
  const before = statsCalls();
  await page.waitForTimeout(4500);
  result.stats_calls_in_4500ms = statsCalls() - before;
  result.chart = {
    series: await page.locator("#completions-chart path[data-series]").evaluateAll((els) => els.map((e) => e.dataset.series)),
    paths_nonempty: await page.locator("#completions-chart path[data-series]").evaluateAll((els) => els.every((e) => e.getAttribute("d").length > 20)),
    legend: await page.locator("#legend li").allInnerTexts(),
    summary: await page.locator("#completions-summary").textContent(),
    label: await page.locator("#completions-chart").getAttribute("aria-labelledby"),
    y_ticks: await page.locator("#completions-chart text.axis").allTextContents(),
  };
  // The readout under the pointer: the last second of the plot.
  const box = await page.locator("#completions-chart").boundingBox();
  await page.mouse.move(box.x + box.width - 14, box.y + box.height / 2);
  result.chart.readout = await text("#chart-readout");
  await page.mouse.move(0, 0);
  result.connections = await page.locator("#connections .bar-row").allInnerTexts();
  result.connection_bar_labels = await page.locator("#connections .bar").evaluateAll((els) => els.map((e) => e.getAttribute("aria-label")));
  result.queue_depth = await text("#queue-depth");
  result.lease_holder = await text("#lease-holder");
  result.instances = await text("#instances");
  result.live = await text("#live");
  step("live figures");

  // 3. The suspects queue, with the suspect's signals.
  const suspect = page.locator(`#suspects li[data-player-id="${config.suspect_id}"]`);
  await suspect.waitFor({ timeout: WAIT_MS });
  result.suspect = {
    text: await suspect.innerText(),
    name: await suspect.locator(".suspect-name").innerText(),
    level: await suspect.locator(".level").innerText(),
    meter: await suspect.locator("meter").getAttribute("aria-label"),
    signals: await suspect.locator(".signal").evaluateAll((els) =>
      els.map((e) => ({ key: e.dataset.signal, title: e.querySelector("dt").innerText, figures: [...e.querySelectorAll(".figures li")].map((li) => li.innerText) })),
    ),
    quiet: (await suspect.locator(".quiet").count()) ? await suspect.locator(".quiet").innerText() : null,
  };
  result.suspects_ids = await page.locator("#suspects > li").evaluateAll((els) => els.map((e) => e.dataset.playerId));
  result.suspects_status = await text("#suspects-status");
  step("suspects");

  // 4. A suspect's "Look up" fills the lookup; then the player with the audit trail, by id.
  await suspect.getByRole("button", { name: /^Look up/ }).click();
  await page.locator("#player-title", { hasText: result.suspect.name }).waitFor({ timeout: WAIT_MS });
  result.suspect_lookup_title = await text("#player-title");

  await page.getByLabel("Player id", { exact: true }).fill(config.player_id);
  await page.getByRole("button", { name: "Look up", exact: true }).click();
  await page.locator("#player-sub", { hasText: config.player_id }).waitFor({ timeout: WAIT_MS });
  await page.locator("#audit-rows tr[data-action-id]").nth(Math.min(config.audit_entries, 20) - 1).waitFor({ timeout: WAIT_MS });
  result.player = {
    title: await text("#player-title"),
    sub: await text("#player-sub"),
    total: await text("#p-total"),
    achievements: await text("#p-achievements"),
    state: await text("#player-state"),
    suspend_label: await text("#suspend"),
    hide_label: await text("#hide"),
  };
  result.audit_rows = await page.locator("#audit-rows tr[data-action-id]").evaluateAll((rows) =>
    rows.map((r) => ({ outcome: r.dataset.outcome, action_id: r.dataset.actionId, cells: [...r.cells].map((c) => c.innerText), title: r.cells[0].title })),
  );
  result.audit_headers = await page.locator("#audit thead th").allInnerTexts();
  result.audit_status = await text("#audit-status");
  step("player looked up");

  // The screenshot for the README: the console with the suspect and the player's audit trail.
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot("admin-console.png");
  await shot("admin-console-viewport.png", false);
  // The same, cut after the first rows of the audit trail: the README's picture.
  const height = await page.evaluate(() => {
    const rows = document.querySelectorAll("#audit-rows tr");
    const last = rows[Math.min(rows.length, 8) - 1];
    return Math.ceil(last.getBoundingClientRect().bottom + window.scrollY + 1);
  });
  await page.screenshot({ path: path.join(config.screenshots, "admin-console-top.png"), fullPage: true, clip: { x: 0, y: 0, width: 1280, height } });
  await page.locator("#lookup-card").screenshot({ path: path.join(config.screenshots, "admin-player.png") });
  step("screenshot");

  // 5. Suspend and reinstate, hide and show: each answers with the state, shown on the page.
  result.moderation = [];
  for (const [button, expect] of [["#suspend", "Suspended"], ["#suspend", "Not suspended"], ["#hide", "Hidden from boards"], ["#hide", "On the boards"]]) {
    await page.locator(button).click();
    await page.locator("#player-state .pill", { hasText: new RegExp(`^${expect}$`) }).waitFor({ timeout: WAIT_MS });
    result.moderation.push({ state: await text("#player-state"), status: await text("#action-status") });
  }
  step("suspend, reinstate, hide, show");

  // 6. Export: offered as a JSON download.
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: WAIT_MS }), page.locator("#export").click()]);
  result.export = { file_name: download.suggestedFilename() };
  const saved = path.join(config.screenshots, download.suggestedFilename());
  await download.saveAs(saved);
  result.export.document = JSON.parse(readFileSync(saved, "utf8"));
  result.export.status = await text("#action-status");
  step("export");

  // 7. Erase asks first. Dismissed: nothing is deleted.
  const deletes = () => result.api_requests.filter((r) => r.method === "DELETE").length;
  await page.getByRole("button", { name: "Erase…" }).click();
  const dialog = page.locator("#erase-dialog[open]");
  await dialog.waitFor({ timeout: WAIT_MS });
  result.erase_dialog = {
    text: await dialog.innerText(),
    ok_disabled_empty: await page.locator("#erase-ok").isDisabled(),
  };
  await page.getByLabel(/Type the player id/).fill("not-the-id");
  result.erase_dialog.ok_disabled_wrong = await page.locator("#erase-ok").isDisabled();
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.locator("#erase-dialog").waitFor({ state: "hidden", timeout: WAIT_MS });
  result.after_cancel = { deletes: deletes(), profile_status: await profileStatus(config.player_id), status: await text("#action-status") };
  // Escape closes it too, and does nothing either.
  await page.getByRole("button", { name: "Erase…" }).click();
  await dialog.waitFor({ timeout: WAIT_MS });
  await page.keyboard.press("Escape");
  await page.locator("#erase-dialog").waitFor({ state: "hidden", timeout: WAIT_MS });
  result.after_escape = { deletes: deletes(), profile_status: await profileStatus(config.player_id) };
  step("erase dismissed");

  // Accepted (the player id typed): the player is gone.
  await page.getByRole("button", { name: "Erase…" }).click();
  await dialog.waitFor({ timeout: WAIT_MS });
  await page.getByLabel(/Type the player id/).fill(config.player_id);
  result.erase_dialog.ok_disabled_right = await page.locator("#erase-ok").isDisabled();
  await shot("admin-erase.png", false);
  await page.getByRole("button", { name: "Erase for ever" }).click();
  await page.locator("#action-status", { hasText: "Erased" }).waitFor({ timeout: WAIT_MS });
  await page.locator("#player-sub", { hasText: "No profile" }).waitFor({ timeout: WAIT_MS });
  result.after_erase = {
    deletes: deletes(),
    profile_status: await profileStatus(config.player_id),
    status: await text("#action-status"),
    sub: await text("#player-sub"),
    state: await text("#player-state"),
    erase_disabled: await page.locator("#erase").isDisabled(),
    audit_rows: await page.locator("#audit-rows tr[data-action-id]").count(),
  };
  step("erased");

  // 8. A key refused mid-session (here: changed under the page) asks for it again.
  await page.evaluate(() => sessionStorage.setItem("scoreboard.admin_key", "a-key-the-server-does-not-know"));
  await page.locator("#login:not([hidden])").waitFor({ timeout: WAIT_MS });
  result.reask = { error: await text("#key-error"), session_length: await page.evaluate(() => sessionStorage.length), console_hidden: await page.locator("#console").isHidden() };
  step("401 asks again");
}

await run(operate);

// The system Chromium through playwright-core, as every browser test starts it, and the frame every
// browser test script runs its scenario in (tests/static/*.mjs, driven by tests/support.py's
// run_node_json): its JSON config, the errors every page is watched for, a watchdog, and one JSON
// object on stdout.

import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  // Without these Chromium tries to reach the network on its own.
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// How long a script waits for what a page should show; the watchdog's limit for a whole scenario.
export const WAIT_MS = 15000;
const WATCHDOG_MS = 100000;

// Chromium's own console line for a response with an HTTP error status.
const RESOURCE_ERROR = "Failed to load resource: the server responded with a status of";

// config: the test script's {"root": "<repo root>", "chromium": "<the browser binary>"}.
async function launchChromium(config) {
  const requireFromRoot = createRequire(path.join(config.root, "package.json"));
  const { chromium } = requireFromRoot("playwright-core");
  return chromium.launch({ executablePath: config.chromium, args: CHROMIUM_ARGS, timeout: 30000 });
}

/** The first match of `selector` on `page`, as the user reads it. */
export const text = (page, selector) => page.locator(selector).first().innerText();

/**
 * A browser test script: `config`, parsed from its one argument; `result`, what it observed, with
 * `extra` (its own fields) beside console_errors, page_errors, failed_requests, steps and
 * browser_version; `pages`, its pages by label. Call run(scenario) once.
 */
export function browserScript(extra = {}) {
  const config = JSON.parse(process.argv[2] ?? "{}");
  const result = { console_errors: [], page_errors: [], failed_requests: [], steps: [], ...extra };
  const pages = {};
  let browser;

  /**
   * A page in a context of its own (`contextOptions`, as for browser.newContext), its errors
   * recorded under `label`. `resourceErrors`: the page is expected to meet HTTP error statuses (the
   * script checks them against its own record), so Chromium's console line for each goes to
   * result.resource_errors, not console_errors.
   */
  async function newPage(label, contextOptions, { resourceErrors = false } = {}) {
    const context = await browser.newContext(contextOptions);
    const page = await context.newPage();
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const entry = { page: label, text: msg.text(), location: msg.location() };
      if (resourceErrors && msg.text().startsWith(RESOURCE_ERROR)) result.resource_errors.push(entry);
      else result.console_errors.push(entry);
    });
    page.on("pageerror", (err) => result.page_errors.push({ page: label, error: String(err.stack || err) }));
    context.on("requestfailed", (req) => {
      // A long-poll cut short by the upgrade or a reconnect is aborted by the client on purpose.
      const aborted = req.failure()?.errorText === "net::ERR_ABORTED" && req.url().includes("/socket.io/");
      if (!aborted) result.failed_requests.push({ page: label, url: req.url(), error: req.failure()?.errorText });
    });
    pages[label] = page;
    return page;
  }

  const step = (name) => result.steps.push(name);

  // Prints `result` and exits with `code`; on a failure, a screenshot failure-<label>.png of each page first.
  async function finish(code) {
    if (code !== 0) {
      for (const [label, page] of Object.entries(pages)) {
        await page.screenshot({ path: path.join(config.screenshots, `failure-${label}.png`), fullPage: true })
          .catch(() => {});
      }
    }
    await browser?.close().catch(() => {});
    process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
  }

  /** Launches Chromium, runs `scenario()` and reports: exit 0, or 1 with result.error. */
  async function run(scenario) {
    const watchdog = setTimeout(() => {
      result.error = `browser watchdog: took longer than ${WATCHDOG_MS / 1000} s`;
      finish(1);
    }, WATCHDOG_MS);
    try {
      mkdirSync(config.screenshots, { recursive: true });
      browser = await launchChromium(config);
      result.browser_version = browser.version();
      await scenario();
      clearTimeout(watchdog);
      await finish(0);
    } catch (err) {
      clearTimeout(watchdog);
      result.error = String(err && err.stack ? err.stack : err);
      await finish(1);
    }
  }

  return { config, result, pages, newPage, step, run };
}

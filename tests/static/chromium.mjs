// The system Chromium through playwright-core, as every browser test starts it.

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

// config: the test script's {"root": "<repo root>", "chromium": "<the browser binary>"}.
export async function launchChromium(config) {
  const requireFromRoot = createRequire(path.join(config.root, "package.json"));
  const { chromium } = requireFromRoot("playwright-core");
  return chromium.launch({ executablePath: config.chromium, args: CHROMIUM_ARGS, timeout: 30000 });
}

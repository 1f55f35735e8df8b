/**
 * Headless Chromium for the tests that open HTML reports (playwright-core drives Debian's `chromium`, which
 * `.ci/run` installs). `CHROMIUM_PATH` names another binary. Outside CI a machine without it skips those tests; in
 * CI (`CI=true`) they run and a missing browser fails them, so they are never skipped silently there.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

/** The Chromium binary the report tests launch. */
export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** True when the report tests run: the binary exists, or this is CI. */
export const haveChromium = existsSync(CHROMIUM) || process.env['CI'] === 'true';

/** Launches headless Chromium without a sandbox, GPU, network services or first-run work. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

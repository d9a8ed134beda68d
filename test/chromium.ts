// Debian's chromium for the page's browser tests: launched headless on
// loopback only, or the whole file reported as skipped (never passed) when
// the machine has none.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import type { Browser } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
/** Screenshots a person can look at; git ignores the folder. */
export const OUT = fileURLToPath(new URL('output/', import.meta.url));

/** Runs `suite` if chromium is installed, else reports `what` as skipped. */
export function withChromium(what: string, suite: () => void): void {
  if (existsSync(CHROMIUM)) return suite();
  console.log(`chromium not installed (${CHROMIUM}): the browser test is skipped. Install it with: apt-get install -y chromium`);
  test.skip(what, () => undefined);
  test.run();
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  // Without the background-networking flags chromium keeps dialling out, which a closed network refuses.
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Debian's chromium for the page's browser tests: launched headless on
// loopback only, or the whole file reported as skipped (never passed) when
// the machine has none.
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { startStack, type Stack, type StackOptions } from './helpers.js';

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

/**
 * The chat page at `url`, connected. Page errors go to `problems`, and console
 * errors too unless `consoleErrors` is false (a page whose relay is down logs
 * its failed reconnects); `sent` collects the frames it sends.
 */
export async function openChat(browser: Browser, url: string, problems: string[], opts: { context?: BrowserContextOptions; sent?: string[]; consoleErrors?: boolean } = {}): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 }, ...opts.context });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  if (opts.consoleErrors !== false) page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  const sent = opts.sent;
  if (sent) page.on('websocket', (ws) => ws.on('framesent', (f) => typeof f.payload === 'string' && sent.push(f.payload)));
  await page.goto(url);
  await page.waitForSelector('#conn[data-state="open"]');
  return page;
}

/** Type `text` into the composer and send it. */
export async function sendMessage(page: Page, text: string): Promise<void> {
  await page.fill('#composer-input', text);
  await page.keyboard.press('Enter');
}

/** The newest reply on the page. */
export const lastReply = (page: Page) => page.locator('.msg[data-role="assistant"]').last();

/** Wait for the newest reply to end; returns its finish reason as the page shows it. */
export async function replyEnded(page: Page): Promise<string> {
  const handle = await page.waitForFunction(() => {
    const replies = document.querySelectorAll<HTMLElement>('.msg[data-role="assistant"]');
    const last = replies[replies.length - 1];
    return last?.dataset.state === 'done' ? (last.dataset.finish ?? '') : false;
  });
  return String(await handle.jsonValue());
}

/**
 * What the tests of one page suite share: a relay stack and a browser, made
 * before its first test and closed after its last, and the page errors seen,
 * which must be none after each test (a test that expects some takes them out).
 */
export class PageSuite {
  stack!: Stack;
  browser!: Browser;
  readonly problems: string[] = [];

  constructor(options: StackOptions = {}) {
    test.before(async () => {
      mkdirSync(OUT, { recursive: true });
      this.stack = await startStack(options);
      this.browser = await launchChromium();
    });
    test.after(async () => {
      await this.browser?.close();
      await this.stack?.close();
    });
    test.after.each(() => {
      assert.equal(this.problems.splice(0), [], 'no page errors');
    });
  }
}

// The chat page in a real browser (Debian's chromium through playwright-core)
// against a real relay: streaming into the DOM, Stop, a second tab, reload.
// Screenshots land in test/output/ (gitignored).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { startStack, type Stack } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const OUT = fileURLToPath(new URL('../output/', import.meta.url));
/** ~160 pieces at 10 ms: a reply of about 1.6 s over many frames. Plain words, so the DOM text equals the source. */
const LONG = Array.from({ length: 160 }, (_, i) => `word${i}`).join(' ');

if (!existsSync(CHROMIUM)) {
  console.log(`chromium not installed (${CHROMIUM}): the browser test is skipped. Install it with: apt-get install -y chromium`);
  test.skip('the chat page in a real browser', () => undefined);
  test.run();
} else {
  suite();
}

function suite(): void {
  let stack: Stack;
  let browser: Browser;
  const problems: string[] = [];

  test.before(async () => {
    mkdirSync(OUT, { recursive: true });
    stack = await startStack({ env: { PRESENCE_COALESCE_MS: '20' }, plan: () => ({ text: LONG, tokenDelayMs: 10 }) });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  test.after(async () => {
    await browser?.close();
    await stack?.close();
  });

  async function open(room: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    await page.goto(`http://127.0.0.1:${stack.relay.port}/#${room}`);
    await page.waitForSelector('#conn[data-state="open"]');
    return page;
  }

  async function send(page: Page, text: string): Promise<void> {
    await page.fill('#composer-input', text);
    await page.keyboard.press('Enter');
  }

  const reply = (page: Page) => page.locator('.msg[data-role="assistant"]').last();
  const replyText = async (page: Page) => (await reply(page).locator('.body').textContent()) ?? '';

  /** Wait until the newest reply shows more than `chars` characters; returns how many it shows. */
  async function grows(page: Page, chars: number): Promise<number> {
    const handle = await page.waitForFunction(
      (min) => {
        const bodies = document.querySelectorAll('.msg[data-role="assistant"] .body');
        const n = bodies[bodies.length - 1]?.textContent?.length ?? 0;
        return n > min ? n : false;
      },
      chars,
      { polling: 'raf' },
    );
    return Number(await handle.jsonValue());
  }

  /** Wait for the newest reply to end; returns its finish reason as the page shows it. */
  async function done(page: Page): Promise<string> {
    const handle = await page.waitForFunction(() => {
      const replies = document.querySelectorAll<HTMLElement>('.msg[data-role="assistant"]');
      const last = replies[replies.length - 1];
      return last?.dataset.state === 'done' ? (last.dataset.finish ?? '') : false;
    });
    return String(await handle.jsonValue());
  }

  test('the page is served with its bundle and stylesheet', async () => {
    const base = `http://127.0.0.1:${stack.relay.port}`;
    const index = await fetch(`${base}/`);
    assert.is(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(index.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const js = await fetch(`${base}/assets/app.js`);
    assert.is(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    const css = await fetch(`${base}/assets/style.css`);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    assert.is((await fetch(`${base}/assets/missing.js`)).status, 404);
    assert.is((await fetch(`${base}/nowhere`)).status, 404);
  });

  test('a reply grows in the DOM as it streams, then completes', async () => {
    const page = await open('stream');
    await send(page, 'Tell me something long');
    await page.waitForSelector('.msg[data-role="user"][data-state="done"]');
    // Several observations, each showing more text than the one before.
    const seen = [await grows(page, 0)];
    for (let i = 0; i < 3; i++) seen.push(await grows(page, seen[seen.length - 1]!));
    assert.ok(seen[3]! < LONG.length, `still streaming when observed (${seen.join(' < ')})`);
    await page.screenshot({ path: `${OUT}browser-streaming.png` });
    assert.is(await done(page), 'stop');
    assert.is(await replyText(page), LONG);
    assert.is(await page.locator('#stop-button').isHidden(), true, 'Stop goes away when the reply ends');
    await page.screenshot({ path: `${OUT}browser-done.png` });
    await page.close();
  });

  test('Stop cancels mid-reply: shown as stopped, and the text stops where the server stopped', async () => {
    const page = await open('stop');
    await send(page, 'Go on and on');
    await grows(page, 40);
    await page.click('#stop-button');
    assert.is(await done(page), 'cancelled');
    assert.ok(await reply(page).locator('.badge-cancelled').isVisible(), 'a Stopped badge');
    const shown = await replyText(page);
    assert.ok(shown.length < LONG.length && LONG.startsWith(shown), 'a strict prefix of the reply');
    // The upstream request was really aborted, and nothing arrives after reply.end.
    const request = stack.model.requests[stack.model.requests.length - 1]!;
    await request.closed;
    assert.ok(request.aborted, 'upstream aborted');
    const observer = await stack.connect();
    observer.send({ type: 'join', conversationId: 'stop' });
    const joined = await observer.next('joined');
    const stored = joined.history.find((m) => m.role === 'assistant');
    assert.is(stored?.finishReason, 'cancelled');
    assert.is(await replyText(page), stored?.text, 'the page shows exactly what the server kept');
    await page.screenshot({ path: `${OUT}browser-stopped.png` });
    await page.close();
  });

  test('a second page in the same room sees the same reply', async () => {
    const first = await open('shared');
    await send(first, 'Both of you, listen');
    await grows(first, 20);
    const second = await open('shared');
    await second.waitForSelector('.msg[data-role="user"]');
    assert.is(await done(first), 'stop');
    assert.is(await done(second), 'stop');
    assert.is(await replyText(first), LONG);
    assert.is(await replyText(second), LONG);
    assert.is(await second.locator('.msg[data-role="user"] .body').textContent(), 'Both of you, listen');
    await second.waitForFunction(() => document.querySelector('#members .count')?.textContent === '2 here');
    await second.screenshot({ path: `${OUT}browser-second-page.png` });
    await first.close();
    await second.close();
  });

  test('reloading mid-reply resumes and completes it', async () => {
    const page = await open('reload');
    await send(page, 'Keep going while I reload');
    await grows(page, 30);
    await page.reload();
    await page.waitForSelector('#conn[data-state="open"]');
    assert.is(await done(page), 'stop');
    assert.is(await replyText(page), LONG);
    assert.is(await page.locator('.msg[data-role="assistant"]').count(), 1, 'one reply, not two');
    assert.is(await page.locator('.msg[data-role="user"]').count(), 1);
    await page.screenshot({ path: `${OUT}browser-reloaded.png` });
    await page.close();
  });

  test('no errors in the pages', () => {
    assert.equal(problems, []);
  });

  test.run();
}

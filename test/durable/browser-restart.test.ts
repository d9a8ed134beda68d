// The chat page across a crash of the relay, in a real browser: a relay
// process (npm start's default, embedded store) is killed with SIGKILL while a
// reply streams, and started again on the same data directory and port. The
// page, never reloaded, reconnects by itself and shows the same conversations:
// what was answered, the interrupted reply marked failed with the text it had
// shown, the message sent behind it answered; the relay answers new messages;
// a reload shows the same history, now from the server alone.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import { LocalModel, splitTokens, type FaultPlan, type RecordedRequest } from '../../demo/localmodel.js';
import { launchChromium, openChat, OUT, sendMessage, withChromium } from '../chromium.js';
import { startRelayProcess, stop, type Node } from '../process.js';
import { freePort } from '../redis.js';

const LONG = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
const STALL_AFTER = 6;
/** What the stalled reply writes before it stops writing: all the page can ever show of it. */
const PARTIAL = splitTokens(LONG).slice(0, STALL_AFTER).join('');
const ANSWER = 'a complete answer';
const planOf = (req: RecordedRequest): FaultPlan =>
  req.messages.at(-1)?.content === 'stall' ? { text: LONG, tokenDelayMs: 15, stallAfterTokens: STALL_AFTER } : { text: ANSWER };

/** One row per message as the page shows it: role, state, how it ended, text. */
type Row = [role: string, state: string, finish: string, text: string];
const user = (text: string): Row => ['user', 'done', '', text];
const answer: Row = ['assistant', 'done', 'stop', ANSWER];

withChromium('the chat page across a kill -9 and restart of the relay', suite);

function suite(): void {
  let model: LocalModel;
  let browser: Browser;
  let dataDir: string;
  let port: number;
  const nodes: Node[] = [];
  const problems: string[] = [];

  test.before(async () => {
    mkdirSync(OUT, { recursive: true });
    model = new LocalModel({ tokenDelayMs: 2, plan: planOf });
    await model.start();
    dataDir = mkdtempSync(join(tmpdir(), 'relay-browser-restart-'));
    // A fixed port: the page's client reconnects to the address it knows.
    port = await freePort();
    browser = await launchChromium();
  });
  test.after(async () => {
    await browser?.close();
    await Promise.all(nodes.map(stop));
    await model?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function relay(): Promise<Node> {
    const n = await startRelayProcess(model, { DATA_DIR: dataDir, PORT: String(port) });
    nodes.push(n);
    return n;
  }

  /** Runs in the page: its rows, or (given the rows wanted, as JSON) whether it shows exactly those. */
  const readRows = (want: string | null): Row[] | boolean => {
    const rows = [...document.querySelectorAll<HTMLElement>('#message-list .msg')].map((el): Row => {
      const d = el.dataset;
      return [d.role ?? '', d.state ?? '', d.finish ?? '', el.querySelector('.body')?.textContent ?? ''];
    });
    return want === null ? rows : JSON.stringify(rows) === want;
  };

  /** Wait until the page shows exactly `rows`; on timeout, fail with what it shows instead. */
  async function shows(page: Page, rows: Row[]): Promise<void> {
    await page.waitForFunction(readRows, JSON.stringify(rows)).catch(() => undefined);
    assert.equal(await page.evaluate(readRows, null), rows);
  }

  async function enterRoom(page: Page, room: string): Promise<void> {
    await page.fill('#join-input', room);
    await page.press('#join-input', 'Enter');
    await page.waitForFunction((r) => document.getElementById('room-title')?.textContent === r, room);
  }

  const failed = (page: Page) => page.locator('.msg[data-role="assistant"][data-finish="error"]');

  test('kill -9 mid-reply and start again: the open page shows every conversation as it was, the interrupted reply failed', async () => {
    const first = await relay();
    // Console errors are not counted: the page logs its failed reconnects while the relay is down.
    const page = await openChat(browser, `http://127.0.0.1:${port}/#idle`, problems, { consoleErrors: false });
    // Reconnecting waits out a backoff of several seconds, and a restart is a process start.
    page.setDefaultTimeout(60_000);

    // A room that is idle when the relay dies.
    await sendMessage(page, 'hello');
    await shows(page, [user('hello'), answer]);

    // A room with a reply streaming, and a message sent behind it.
    await enterRoom(page, 'busy');
    await sendMessage(page, 'first question');
    await shows(page, [user('first question'), answer]);
    await sendMessage(page, 'stall');
    await shows(page, [user('first question'), answer, user('stall'), ['assistant', 'streaming', '', PARTIAL]]);
    await sendMessage(page, 'sent behind it');
    // Acknowledged (no longer "Sending…"): the relay has it, and everything before it, on disk.
    const beforeKill: Row[] = [user('first question'), answer, user('stall'), ['assistant', 'streaming', '', PARTIAL], user('sent behind it'), ['assistant', 'queued', '', '']];
    await shows(page, beforeKill);

    first.child.kill('SIGKILL');
    await first.exited;
    await page.waitForSelector('#conn:not([data-state="open"])');
    await relay();
    await page.waitForSelector('#conn[data-state="open"]');

    // The same page, not reloaded: the interrupted reply ended as failed with what it had shown; the queue ran.
    const afterRestart: Row[] = [user('first question'), answer, user('stall'), ['assistant', 'done', 'error', PARTIAL], user('sent behind it'), answer];
    await shows(page, afterRestart);
    assert.is(await failed(page).count(), 1);
    assert.ok(await failed(page).locator('.badge-error').isVisible(), 'a Failed badge');
    const reason = (await failed(page).locator('.reply-error').textContent()) ?? '';
    assert.is(reason, 'Failed: the relay stopped (or lost its node) before this reply finished', 'says why');
    await page.screenshot({ path: `${OUT}browser-restart.png` });

    // The idle room lost nothing either.
    await page.click('.room-link[href="#idle"]');
    await shows(page, [user('hello'), answer]);
    await page.click('.room-link[href="#busy"]');
    await shows(page, afterRestart);

    // The restarted relay answers.
    await sendMessage(page, 'still there?');
    const final: Row[] = [...afterRestart, user('still there?'), answer];
    await shows(page, final);

    // From the server alone: the same history after a reload.
    await page.reload();
    await page.waitForSelector('#conn[data-state="open"]');
    await shows(page, final);
    assert.is((await failed(page).locator('.reply-error').textContent()) ?? '', reason, 'the same reason after a reload');
    await page.close();
  });

  test('no errors in the page', () => {
    assert.equal(problems, []);
  });

  test.run();
}

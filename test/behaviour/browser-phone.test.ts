// The chat page as a user checks it on a phone (375 px, touch) and on a
// desktop, in a real browser (Debian's chromium through playwright-core)
// against a real relay: a long unbroken word wraps and the view keeps
// following (and stops when the reader scrolls up, with "Jump to latest"); the
// room list and the user's name are readable; Markdown tables, nested lists and
// highlighted code with a copy button, raw HTML kept as text, only the growing
// block redrawn while streaming; failed replies say why, history keeps each
// reply's model; presence counts the pages looking at a room; room names are
// taken as typed; no stale sign-in toast. Screenshots at 375 and 1280 px, light
// and dark, land in test/output/ (gitignored). test/behaviour/browser.test.ts
// covers streaming, Stop, reload and tool calls.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync } from 'node:fs';
import { SignJWT } from 'jose';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { lastReply, launchChromium, openChat, OUT, replyEnded, sendMessage, withChromium } from '../chromium.js';
import { startStack, type Stack } from '../helpers.js';

/** ~160 pieces at 10 ms: a reply of about 1.6 s, to fill a phone's screen. */
const LONG = Array.from({ length: 160 }, (_, i) => `word${i}`).join(' ');
/** Answered with RICH: a table, nested lists, code, raw HTML that must stay text. */
const MARKDOWN_PROMPT = 'Show me some Markdown';
const CODE = 'export function add(a: number, b: number): number {\n  return a + b; // adds\n}';
const RICH = [
  'A **summary** with a [link](https://example.com/docs) and `inline code`.',
  '',
  '| Language | Typing | Year |',
  '|:--|:--:|--:|',
  '| TypeScript | static | 2012 |',
  '| Python | dynamic | 1991 |',
  '',
  '1. First step',
  '   - nested a',
  '     - deeper',
  '2. Second step',
  '',
  '```ts',
  CODE,
  '```',
  '',
  '<img src=x onerror="document.title=1"> and <script>document.title=2</script> stay text.',
].join('\n');
/** Answered with WORDY: paragraphs, a 300-character word, and more after it. */
const LONG_WORD_PROMPT = 'Say a very long word';
const WORD = 'w'.repeat(300);
const WORDY = [...Array.from({ length: 12 }, (_, i) => `Line ${i} of the answer before the word.`), WORD, ...Array.from({ length: 12 }, (_, i) => `Line ${i} after the word.`)].join('\n\n');
/** Answered with an HTTP 401 from the model API. */
const FAIL_PROMPT = 'Please fail';
/** A phone: 375 px wide, touch, no hover. */
const PHONE: BrowserContextOptions = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true };

withChromium('the chat page on a phone in a real browser', suite);

function suite(): void {
  let stack: Stack;
  let browser: Browser;
  const problems: string[] = [];

  test.before(async () => {
    mkdirSync(OUT, { recursive: true });
    stack = await startStack({
      env: { PRESENCE_COALESCE_MS: '20' },
      plan: (req) => {
        const said = req.messages.at(-1)?.content ?? '';
        if (said.startsWith(MARKDOWN_PROMPT)) return { text: RICH, tokenDelayMs: 15 };
        if (said.startsWith(LONG_WORD_PROMPT)) return { text: WORDY, tokenDelayMs: 20 };
        if (said.startsWith(FAIL_PROMPT)) return { httpStatus: 401 };
        return { text: LONG, tokenDelayMs: 10 };
      },
    });
    browser = await launchChromium();
  });
  test.after(async () => {
    await browser?.close();
    await stack?.close();
  });

  /** A page in `room`, connected; `context` adds to the browser settings (viewport, colour scheme, permissions). */
  const open = (room: string, on: Stack = stack, opts: { context?: BrowserContextOptions } = {}) =>
    openChat(browser, `http://127.0.0.1:${on.relay.port}/#${room}`, problems, opts);


  /** Send `text` and wait for the reply to it to end; returns its finish reason as the page shows it. */
  async function answered(page: Page, text: string): Promise<string> {
    const before = await page.locator('.msg[data-role="assistant"]').count();
    await sendMessage(page, text);
    const handle = await page.waitForFunction((n) => {
      const replies = document.querySelectorAll<HTMLElement>('.msg[data-role="assistant"]');
      const last = replies[replies.length - 1];
      return replies.length > n && last?.dataset.state === 'done' ? (last.dataset.finish ?? '') : false;
    }, before);
    return String(await handle.jsonValue());
  }


  /** The message list's distance from the bottom, its overflow sideways, and the page's. */
  const layout = (page: Page) =>
    page.evaluate(() => {
      const list = document.getElementById('messages')!;
      return {
        gap: list.scrollHeight - list.scrollTop - list.clientHeight,
        listOverflow: list.scrollWidth - list.clientWidth,
        pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
      };
    });

  /** Is the newest message's last line inside the visible part of the list? */
  const inView = () => {
    const list = document.getElementById('messages')!.getBoundingClientRect();
    const msgs = document.querySelectorAll('.msg');
    const last = msgs[msgs.length - 1]?.getBoundingClientRect();
    return Boolean(last && last.bottom <= list.bottom + 1 && last.bottom > list.top);
  };
  const latestInView = (page: Page) => page.evaluate(inView);

  test('phone: a 300-character word wraps, and the view keeps following the reply to its end', async () => {
    const page = await open('phone-follow', stack, { context: PHONE });
    // A long word in the composer grows it and shrinks the list: the view stays at the bottom.
    assert.is(await answered(page, 'Hello'), 'stop');
    await page.fill('#composer-input', `${LONG_WORD_PROMPT} ${WORD}`);
    await page.waitForFunction(() => {
      const list = document.getElementById('messages')!;
      return list.scrollHeight - list.scrollTop - list.clientHeight <= 2;
    });
    await page.keyboard.press('Enter');
    // Mid-reply, once the word is on screen, the newest line is in view.
    await page.waitForFunction((word) => {
      const bodies = document.querySelectorAll('.msg[data-role="assistant"] .body');
      const text = bodies[bodies.length - 1]?.textContent ?? '';
      const list = document.getElementById('messages')!;
      return text.includes(word) && text.includes('Line 3 after') && list.scrollHeight - list.scrollTop - list.clientHeight <= 2;
    }, WORD);
    assert.is(await replyEnded(page), 'stop');
    const after = await layout(page);
    assert.ok(after.gap <= 2, `the list is at its bottom (${after.gap} px above it)`);
    assert.ok(await latestInView(page), 'the latest message is in view');
    assert.is(after.listOverflow, 0, 'no sideways scroll in the list');
    assert.is(after.pageOverflow, 0, 'no sideways scroll of the page');
    assert.is(await page.locator('#jump').isHidden(), true, 'still following: no "Jump to latest"');
    const wordBox = await page.locator('.msg[data-role="assistant"] .body p', { hasText: WORD.slice(0, 50) }).last().boundingBox();
    assert.ok(wordBox && wordBox.x + wordBox.width <= 375, 'the word wraps inside the screen');
    await page.screenshot({ path: `${OUT}phone-long-word.png` });
    await page.close();
  });

  test('phone: scrolling up stops following and offers "Jump to latest", which comes back', async () => {
    const page = await open('phone-jump', stack, { context: PHONE });
    await sendMessage(page, `${LONG_WORD_PROMPT}, please`);
    // Mid-reply, with more than a screen of it: the reader scrolls up to read.
    await page.waitForFunction(() => {
      const list = document.getElementById('messages')!;
      return list.scrollHeight - list.clientHeight > 400;
    });
    assert.is(await lastReply(page).getAttribute('data-state'), 'streaming');
    await page.evaluate(() => document.getElementById('messages')!.scrollBy(0, -300));
    await page.waitForSelector('#jump:not([hidden])');
    const top = await page.evaluate(() => document.getElementById('messages')!.scrollTop);
    assert.is(await replyEnded(page), 'stop');
    assert.is(await page.evaluate(() => document.getElementById('messages')!.scrollTop), top, 'the reader is left where they were');
    assert.ok((await layout(page)).gap > 100, 'the reply went on below');
    await page.screenshot({ path: `${OUT}phone-jump.png` });
    await page.click('#jump');
    await page.waitForSelector('#jump', { state: 'hidden' });
    assert.ok((await layout(page)).gap <= 2, 'back at the bottom');
    assert.ok(await latestInView(page));
    await page.close();
  });

  test('phone: the room list opens as a drawer, with whole room names and the user\'s name', async () => {
    const long = 'design-review-for-the-new-mobile-app-2024';
    const page = await open(long, stack, { context: PHONE });
    await page.evaluate(() => (location.hash = 'phone-rooms'));
    await page.waitForFunction(() => document.getElementById('room-title')?.textContent === 'phone-rooms');
    const title = await page.locator('#room-title').evaluate((el) => ({ cut: el.scrollWidth > el.clientWidth, right: el.getBoundingClientRect().right }));
    assert.is(title.cut, false, 'the room title is whole');
    assert.is(await page.locator('#me-name').isVisible(), false, 'the drawer is closed');
    await page.click('#rooms-button');
    await page.waitForFunction(() => document.getElementById('sidebar')!.getBoundingClientRect().left >= 0);
    assert.is(await page.locator('#rooms-button').getAttribute('aria-expanded'), 'true');
    const names = await page.locator('.room-name').evaluateAll((els) =>
      els.map((el) => ({ text: el.textContent, cut: el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight + 1, right: el.getBoundingClientRect().right })),
    );
    assert.equal(
      names.map((n) => n.text),
      [long, 'phone-rooms'],
    );
    for (const n of names) {
      assert.is(n.cut, false, `${n.text} is not cut`);
      assert.ok(n.right <= 375, `${n.text} fits the screen`);
    }
    assert.ok(await page.locator('#me-name .me-name').isVisible(), "the user's name shows");
    assert.match((await page.locator('#me-name .me-name').textContent()) ?? '', /^\w+ \w+$/);
    await page.screenshot({ path: `${OUT}phone-rooms-drawer.png` });
    await page.getByRole('link', { name: long }).click();
    await page.waitForFunction((room) => document.getElementById('room-title')?.textContent === room, long);
    await page.waitForFunction(() => document.getElementById('sidebar')!.getBoundingClientRect().right <= 0);
    assert.is((await layout(page)).pageOverflow, 0);
    await page.close();
  });

  test('Markdown: a table, nested lists, highlighted code with a working copy button; raw HTML stays text', async () => {
    const page = await open('markdown', stack, { context: { ...PHONE, permissions: ['clipboard-read', 'clipboard-write'] } });
    const title = await page.title();
    await sendMessage(page, MARKDOWN_PROMPT);
    // While it streams, a finished block stays the same element as later blocks arrive: only the tail is redrawn.
    const streamed = await page.waitForFunction(
      () => {
        const w = window as unknown as { firstBlock?: Element; sawLive?: boolean };
        const bodies = document.querySelectorAll('.msg[data-role="assistant"] .body');
        const body = bodies[bodies.length - 1];
        if (!body?.classList.contains('live')) return w.sawLive ? 'ended before the code block' : false;
        w.sawLive = true;
        // Once the list is there, the opening paragraph is long finished; by the code block, it must not have been redrawn.
        if (body.querySelector(':scope > ol')) w.firstBlock ??= body.querySelector(':scope > p') ?? undefined;
        if (!w.firstBlock || !body.querySelector(':scope > .code-block')) return false;
        return w.firstBlock.isConnected ? 'kept' : 'redrawn';
      },
      undefined,
      { polling: 'raf' },
    );
    assert.is(await streamed.jsonValue(), 'kept');
    assert.is(await replyEnded(page), 'stop');
    const body = lastReply(page).locator('.body');
    assert.is(await body.locator('table').count(), 1, 'the table is a <table>');
    assert.equal(await body.locator('th').allTextContents(), ['Language', 'Typing', 'Year']);
    assert.equal(await body.locator('tbody tr').first().locator('td').allTextContents(), ['TypeScript', 'static', '2012']);
    assert.is(await body.locator('ol > li > ul > li > ul > li').textContent(), 'deeper', 'lists nest');
    assert.ok((await body.locator('.code-block code .hljs-keyword').count()) > 0, 'the code is highlighted');
    assert.is(await body.locator('.code-block code').textContent(), CODE);
    assert.is(await body.locator('img, script').count(), 0, 'no markup from the reply');
    assert.match((await body.textContent()) ?? '', /<img src=x onerror="document.title=1"> and <script>document.title=2<\/script> stay text\./);
    assert.is(await page.title(), title);
    assert.is(await body.locator('a').first().getAttribute('href'), 'https://example.com/docs');
    assert.is((await layout(page)).pageOverflow, 0, 'the table does not widen the page');
    const copy = body.locator('.code-block .copy-code');
    assert.ok(await copy.isVisible(), 'a copy button');
    await copy.click();
    await page.waitForFunction(() => document.querySelector('.copy-code')?.textContent === 'Copied');
    assert.is(await page.evaluate(() => navigator.clipboard.readText()), CODE);
    await page.screenshot({ path: `${OUT}phone-markdown.png`, fullPage: false });
    await page.close();
  });

  test('a failed reply says why, live and after a reload; history shows each reply\'s model, and tokens where seen', async () => {
    const page = await open('failures');
    assert.is(await answered(page, 'Tell me something long'), 'stop');
    assert.is(await answered(page, FAIL_PROMPT), 'error');
    assert.is(await lastReply(page).locator('.reply-error').textContent(), 'Failed: the model API failed (HTTP 401)');
    assert.ok(await lastReply(page).locator('.badge-error').isVisible());
    const metas = () => page.locator('.msg[data-role="assistant"] .meta').allTextContents();
    const live = await metas();
    assert.match(live[0]!, /^test-model · \d+ tokens$/);
    assert.is(live[1], 'test-model');
    // Reloaded: from history, with what this browser saw.
    await page.reload();
    await page.waitForSelector('#conn[data-state="open"]');
    await page.waitForSelector('.msg[data-role="assistant"] .reply-error');
    assert.is(await lastReply(page).locator('.reply-error').textContent(), 'Failed: the model API failed (HTTP 401)');
    assert.equal(await metas(), live);
    // Another browser, which saw none of it: history keeps the reason and the tokens too.
    const other = await open('failures');
    await other.waitForSelector('.msg[data-role="assistant"] .reply-error');
    assert.is(await lastReply(other).locator('.reply-error').textContent(), 'Failed: the model API failed (HTTP 401)');
    assert.equal(await other.locator('.msg[data-role="assistant"] .meta').allTextContents(), live);
    await page.screenshot({ path: `${OUT}browser-failed.png` });
    await page.close();
    await other.close();
  });

  const hereCount = (page: Page, n: number) => page.waitForFunction((want) => document.querySelector('#members .count')?.textContent === `${want} here`, n);

  test('presence counts the pages looking at the room, not those that looked before', async () => {
    const a = await open('presence-a');
    const b = await open('presence-a');
    await hereCount(a, 2);
    await b.evaluate(() => (location.hash = 'presence-b'));
    await hereCount(b, 1);
    await hereCount(a, 1);
    await b.evaluate(() => (location.hash = 'presence-a'));
    await hereCount(a, 2);
    await hereCount(b, 2);
    await a.close();
    await b.close();
  });

  test('a room name with spaces and accents joins the room it maps to, shown before joining', async () => {
    const page = await open('names');
    await page.fill('#join-input', '  Café crème  ');
    assert.is(await page.locator('#join-preview').textContent(), 'Café crème → #cafe-creme');
    await page.press('#join-input', 'Enter');
    await page.waitForFunction(() => document.getElementById('room-title')?.textContent === 'cafe-creme');
    assert.is(new URL(page.url()).hash, '#cafe-creme');
    assert.equal(await page.locator('.room-name').allTextContents(), ['names', 'cafe-creme']);
    // A name that is already an id is used as typed; one with nothing to name a room by is refused, saying why.
    await page.fill('#join-input', 'Team:Alpha');
    assert.is(await page.locator('#join-preview').textContent(), '');
    await page.fill('#join-input', '!!!');
    await page.press('#join-input', 'Enter');
    assert.is(await page.locator('#join-preview').textContent(), 'A room name needs a letter or a digit');
    assert.is(await page.locator('#room-title').textContent(), 'cafe-creme');
    await page.close();
  });

  test('token mode: the page asks for a token, and after signing in no stale toast covers the composer', async () => {
    const secret = 'a-test-secret-that-is-long-enough-for-hs256';
    const jwt = await startStack({ env: { AUTH_JWT_SECRET: secret }, plan: () => ({ text: 'Signed in and answering.', tokenDelayMs: 1 }) });
    try {
      const page = await browser.newPage({ ...PHONE });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      await page.goto(`http://127.0.0.1:${jwt.relay.port}/#signed`);
      await page.waitForSelector('#auth-form:not([hidden])');
      const covering = () =>
        page.evaluate(() => {
          const send = document.getElementById('send-button')!.getBoundingClientRect();
          return [...document.querySelectorAll('.toast')].some((t) => {
            const r = t.getBoundingClientRect();
            return r.left < send.right && r.right > send.left && r.top < send.bottom && r.bottom > send.top;
          });
        });
      assert.is(await covering(), false, 'nothing over Send');
      const token = await new SignJWT({ name: 'Alice' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('alice')
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(secret));
      await page.fill('#auth-input', token);
      await page.press('#auth-input', 'Enter');
      await page.waitForSelector('#conn[data-state="open"]');
      assert.is(await page.locator('#auth-form').isHidden(), true);
      assert.equal(await page.locator('#toasts .toast').allTextContents(), [], 'no toast about the token once signed in');
      assert.is(await covering(), false);
      assert.is(await answered(page, 'Hello after signing in'), 'stop');
      await page.screenshot({ path: `${OUT}phone-signed-in.png` });
      await page.close();
    } finally {
      await jwt.close();
    }
  });

  test('screenshots at 375 and 1280 px, light and dark: nothing scrolls sideways', async () => {
    for (const colorScheme of ['light', 'dark'] as const) {
      for (const viewport of [PHONE.viewport!, { width: 1280, height: 800 }]) {
        const phone = viewport.width === 375;
        const page = await open(`look-${colorScheme}`, stack, { context: { ...(phone ? PHONE : {}), viewport, colorScheme } });
        if ((await page.locator('.msg').count()) === 0) {
          assert.is(await answered(page, MARKDOWN_PROMPT), 'stop');
          assert.is(await answered(page, FAIL_PROMPT), 'error');
        }
        await page.waitForSelector('.msg[data-role="assistant"] .reply-error');
        assert.is((await layout(page)).pageOverflow, 0, `${viewport.width} px ${colorScheme}`);
        // The view follows the last render; on a busy machine that may land a frame later.
        await page.waitForFunction(inView, undefined, { timeout: 10_000 }).catch(() => undefined);
        assert.ok(await latestInView(page), `${viewport.width} px ${colorScheme}: the latest message is in view`);
        const name = `${OUT}look-${viewport.width}-${colorScheme}`;
        await page.screenshot({ path: `${name}.png` });
        await page.evaluate(() => document.querySelector('.msg table')?.scrollIntoView({ block: 'start' }));
        await page.screenshot({ path: `${name}-table.png` });
        if (phone) {
          await page.click('#rooms-button');
          await page.waitForFunction(() => document.getElementById('sidebar')!.getBoundingClientRect().left >= 0);
          await page.screenshot({ path: `${name}-rooms.png` });
        }
        await page.close();
      }
    }
  });

  test('no errors in the pages', () => {
    assert.equal(problems, []);
  });

  test.run();
}

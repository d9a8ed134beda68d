// The chat page in a real browser (Debian's chromium through playwright-core)
// against a real relay: streaming into the DOM, Stop, a second tab, reload,
// tool calls as cards, the page's own tool answered along a tool loop.
// Screenshots land in test/output/ (gitignored).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { DEMO_TOOLS, type LocalModel } from '../../demo/localmodel.js';
import { ClientFrame } from '../../shared/protocol.js';
import { lastReply, launchChromium, openChat, OUT, replyEnded, sendMessage, withChromium } from '../chromium.js';
import { startStack, type Stack } from '../helpers.js';

/** ~160 pieces at 10 ms: a reply of about 1.6 s over many frames. Plain words, so the DOM text equals the source. */
const LONG = Array.from({ length: 160 }, (_, i) => `word${i}`).join(' ');
/** Messages starting with this are answered with a tool call, written in ~50 pieces at 50 ms. */
const TOOL_PROMPT = 'Use the weather tool';
/** …and at 150 ms when they end with this: a page opened meanwhile, on a busy machine too, still joins mid-call. */
const SLOWLY = ', slowly';
const WEATHER = {
  id: 'call_weather',
  name: 'get_weather',
  arguments: '{"city":"Paris","days":3,"units":"metric","include":["wind","rain","humidity","pressure"],"note":"<b>not bold</b> <img src=x>"}',
};
const PRETTY_ARGS = JSON.stringify(JSON.parse(WEATHER.arguments), null, 2);

withChromium('the chat page in a real browser', suite);

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
        if (!said.startsWith(TOOL_PROMPT)) return { text: LONG, tokenDelayMs: 10 };
        return { text: 'Checking the forecast.', toolCalls: [WEATHER], tokenDelayMs: said.endsWith(SLOWLY) ? 150 : 50 };
      },
    });
    browser = await launchChromium();
  });
  test.after(async () => {
    await browser?.close();
    await stack?.close();
  });

  /** `context` adds to the page's browser settings (time zone, locale); `sent` collects the frames it sends. */
  const open = (room: string, on: Stack = stack, opts: { context?: BrowserContextOptions; sent?: string[] } = {}) =>
    openChat(browser, `http://127.0.0.1:${on.relay.port}/#${room}`, problems, opts);

  const replyText = async (page: Page) => (await lastReply(page).locator('.body').textContent()) ?? '';

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
    await sendMessage(page, 'Tell me something long');
    await page.waitForSelector('.msg[data-role="user"][data-state="done"]');
    // Several observations, each showing more text than the one before.
    const seen = [await grows(page, 0)];
    for (let i = 0; i < 3; i++) seen.push(await grows(page, seen[seen.length - 1]!));
    assert.ok(seen[3]! < LONG.length, `still streaming when observed (${seen.join(' < ')})`);
    await page.screenshot({ path: `${OUT}browser-streaming.png` });
    assert.is(await replyEnded(page), 'stop');
    assert.is(await replyText(page), LONG);
    assert.is(await page.locator('#stop-button').isHidden(), true, 'Stop goes away when the reply ends');
    await page.screenshot({ path: `${OUT}browser-done.png` });
    await page.close();
  });

  test('Stop cancels mid-reply: shown as stopped, and the text stops where the server stopped', async () => {
    const page = await open('stop');
    await sendMessage(page, 'Go on and on');
    await grows(page, 40);
    await page.click('#stop-button');
    assert.is(await replyEnded(page), 'cancelled');
    assert.ok(await lastReply(page).locator('.badge-cancelled').isVisible(), 'a Stopped badge');
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
    await sendMessage(first, 'Both of you, listen');
    await grows(first, 20);
    const second = await open('shared');
    await second.waitForSelector('.msg[data-role="user"]');
    assert.is(await replyEnded(first), 'stop');
    assert.is(await replyEnded(second), 'stop');
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
    await sendMessage(page, 'Keep going while I reload');
    await grows(page, 30);
    await page.reload();
    await page.waitForSelector('#conn[data-state="open"]');
    assert.is(await replyEnded(page), 'stop');
    assert.is(await replyText(page), LONG);
    assert.is(await page.locator('.msg[data-role="assistant"]').count(), 1, 'one reply, not two');
    assert.is(await page.locator('.msg[data-role="user"]').count(), 1);
    await page.screenshot({ path: `${OUT}browser-reloaded.png` });
    await page.close();
  });

  const card = (page: Page) => lastReply(page).locator('.tool-call');
  const cardArgs = async (page: Page) => (await card(page).locator('.tool-call-args').textContent()) ?? '';

  /** Wait until the newest reply's card shows partly written arguments; returns them. */
  async function partlyWritten(page: Page): Promise<string> {
    const handle = await page.waitForFunction(
      (whole) => {
        const cards = document.querySelectorAll('.msg[data-role="assistant"] .tool-call-args');
        const shown = cards[cards.length - 1]?.textContent ?? '';
        return shown.length > 0 && shown.length < whole.length ? shown : false;
      },
      WEATHER.arguments,
      { polling: 'raf' },
    );
    return String(await handle.jsonValue());
  }

  test('a tool call shows as a card: its name, and its arguments pretty-printed once the reply ended', async () => {
    const page = await open('tool-card');
    await sendMessage(page, `${TOOL_PROMPT} for Paris`);
    assert.is(await replyEnded(page), 'tool_calls');
    assert.is(await card(page).count(), 1);
    assert.is(await card(page).locator('.tool-call-name').textContent(), 'get_weather');
    assert.is(await card(page).getAttribute('aria-label'), 'Tool call: get_weather');
    assert.is(await cardArgs(page), PRETTY_ARGS);
    assert.is(await card(page).locator('b, img').count(), 0, 'model output is text, never markup');
    assert.is(await replyText(page), 'Checking the forecast.');
    assert.ok(await lastReply(page).locator('.badge-tool_calls').isVisible(), 'an "Asked to call tools" badge');
    await page.screenshot({ path: `${OUT}browser-tool-card.png` });
    await page.setViewportSize({ width: 390, height: 760 });
    await page.screenshot({ path: `${OUT}browser-tool-card-phone.png` });
    // A page opened afterwards renders the card from history.
    const later = await open('tool-card');
    await later.waitForSelector('.tool-call');
    assert.is(await card(later).locator('.tool-call-name').textContent(), 'get_weather');
    assert.is(await cardArgs(later), PRETTY_ARGS);
    await page.close();
    await later.close();
  });

  test('a card fills in live, and a page opened mid-reply shows it too', async () => {
    const first = await open('tool-live');
    await sendMessage(first, `${TOOL_PROMPT}${SLOWLY}`);
    const early = await partlyWritten(first);
    assert.ok(WEATHER.arguments.startsWith(early), `arguments as written, so far: ${early}`);
    assert.is(await card(first).getAttribute('data-state'), 'streaming');
    // The reply has several seconds to go: the second page joins while the call is being written.
    const second = await open('tool-live');
    const joinedMidCall = await second.waitForFunction(() => {
      const el = document.querySelector('.msg[data-role="assistant"] .tool-call[data-state="streaming"] .tool-call-args');
      return el ? (el.textContent ?? '') : false;
    });
    const seen = String(await joinedMidCall.jsonValue());
    assert.ok(WEATHER.arguments.startsWith(seen), `the late page starts from the arguments so far: ${seen}`);
    await second.screenshot({ path: `${OUT}browser-tool-card-live.png` });
    assert.is(await replyEnded(first), 'tool_calls');
    assert.is(await replyEnded(second), 'tool_calls');
    assert.is(await cardArgs(first), PRETTY_ARGS);
    assert.is(await cardArgs(second), PRETTY_ARGS);
    assert.is(await card(second).locator('.tool-call-name').textContent(), 'get_weather');
    await first.close();
    await second.close();
  });

  test('with more than one model the composer offers a choice, and a send asks for the chosen one', async () => {
    const single = await open('one-model');
    assert.is(await single.locator('#model-picker').isHidden(), true, 'one model: nothing to choose');
    await single.close();
    const multi = await startStack({ env: { ALLOWED_MODELS: 'other-model' }, plan: () => ({ text: 'Hello from the other one.', tokenDelayMs: 1 }) });
    try {
      const page = await open('models', multi);
      const sent: string[] = [];
      page.on('websocket', (ws) => ws.on('framesent', (f) => typeof f.payload === 'string' && sent.push(f.payload)));
      await page.reload();
      await page.waitForSelector('#model-picker:not([hidden])');
      assert.equal(await page.locator('#model-select option').allTextContents(), ['test-model (default)', 'other-model']);
      assert.is(await page.getByLabel('Model', { exact: true }).inputValue(), 'test-model', 'the default is chosen at first');
      await page.getByLabel('Model', { exact: true }).selectOption('other-model');
      await sendMessage(page, 'Which model are you?');
      assert.is(await replyEnded(page), 'stop');
      const sends = sent.map((f) => ClientFrame.parse(JSON.parse(f))).flatMap((f) => (f.type === 'send' ? [f] : []));
      assert.equal(sends.map((f) => f.options?.model), ['other-model']);
      assert.match((await lastReply(page).locator('.meta').textContent()) ?? '', /^other-model/);
      await page.setViewportSize({ width: 390, height: 760 });
      await page.screenshot({ path: `${OUT}browser-model-picker-phone.png` });
      await page.close();
    } finally {
      await multi.close();
    }
  });

  /** A TOOLS_FILE offering the demo model's current_time, without arguments: named in a message, it is called with `{}` and answers the UTC time. */
  function currentTimeToolsFile(model: LocalModel): string {
    const demo = DEMO_TOOLS.find((t) => t.name === 'current_time')!;
    const tools = [{ name: demo.name, description: demo.description, parameters: { type: 'object', properties: {} }, url: model.toolURL(demo.name) }];
    const dir = mkdtempSync(join(tmpdir(), 'relay-page-tools-'));
    toolDirs.push(dir);
    const path = join(dir, 'tools.json');
    writeFileSync(path, JSON.stringify({ tools }));
    return path;
  }
  const toolDirs: string[] = [];

  /** Wait until the page shows a finished tool loop: a reply with tool-call cards, all answered, followed by a reply that ended with stop. */
  async function loopEnded(page: Page): Promise<void> {
    await page.waitForFunction(() => {
      const replies = [...document.querySelectorAll<HTMLElement>('.msg[data-role="assistant"]')];
      const calls = replies.find((r) => r.querySelector('.tool-call'));
      const cards = [...(calls?.querySelectorAll<HTMLElement>('.tool-call') ?? [])];
      const last = replies[replies.length - 1];
      return cards.length > 0 && cards.every((c) => c.dataset.result) && last !== calls && last?.dataset.state === 'done' && last.dataset.finish === 'stop';
    });
  }

  /** What the page shows of the loop: each card's name, result label, author and output; and the answer's text. */
  async function shownLoop(page: Page) {
    const cards = page.locator('.msg[data-role="assistant"] .tool-call');
    return {
      cards: await cards.evaluateAll((els) =>
        els.map((el) => ({
          name: el.querySelector('.tool-call-name')?.textContent,
          args: el.querySelector('.tool-call-args')?.textContent,
          result: (el as HTMLElement).dataset.result,
          label: el.querySelector('.tool-result-label')?.textContent,
          by: el.querySelector('.tool-result-by')?.textContent,
          output: el.querySelector('.tool-result-output')?.textContent ?? '',
        })),
      ),
      answer: await replyText(page),
      replies: await page.locator('.msg[data-role="assistant"]').count(),
      toasts: await page.locator('#toasts .toast').allTextContents(),
    };
  }

  const PARIS = { timezoneId: 'Europe/Paris', locale: 'fr-FR' };
  const PARIS_JSON = '{"timeZone":"Europe/Paris","locale":"fr-FR"}';
  const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

  test('the asking page answers user_timezone itself, the relay answers current_time, and every page shows the loop', async () => {
    const tools = await startStack({ env: (model) => ({ PRESENCE_COALESCE_MS: '20', TOOLS_FILE: currentTimeToolsFile(model) }) });
    try {
      const sentByA: string[] = [];
      const sentByB: string[] = [];
      const a = await open('page-tools', tools, { context: PARIS, sent: sentByA });
      // Another zone: had this page answered, its output would say so.
      const b = await open('page-tools', tools, { context: { timezoneId: 'Asia/Tokyo', locale: 'ja-JP' }, sent: sentByB });
      await b.waitForFunction(() => document.querySelector('#members .count')?.textContent === '2 here');
      await sendMessage(a, 'use user_timezone and current_time');
      await loopEnded(a);
      await loopEnded(b);

      const frames = (sent: string[]) => sent.map((f) => ClientFrame.parse(JSON.parse(f)));
      const sends = frames(sentByA).flatMap((f) => (f.type === 'send' ? [f] : []));
      assert.equal(
        sends.map((f) => f.tools),
        [[{ name: 'user_timezone', description: 'The IANA time zone and locale of the person asking, from their browser', parameters: { type: 'object', properties: {} } }]],
        'the page offers its tool with the send',
      );
      const results = frames(sentByA).flatMap((f) => (f.type === 'tool.result' ? [f] : []));
      assert.is(results.length, 1, 'the asker answers its one call once');
      assert.is(results[0]!.output, PARIS_JSON);
      assert.equal(
        frames(sentByB).filter((f) => f.type === 'tool.result' || f.type === 'send'),
        [],
        'the other page neither asks nor answers',
      );

      const nameA = (await a.locator('#me-name > span:not(.avatar)').textContent()) ?? '';
      const check = async (page: Page, who: string) => {
        const shown = await shownLoop(page);
        assert.is(shown.replies, 2, `${who}: the reply with the calls, then the answer`);
        assert.equal(shown.toasts, [], `${who}: no error`);
        assert.equal(
          shown.cards.map((c) => [c.name, c.args, c.result, c.label, c.by]),
          [
            ['user_timezone', '{}', 'ok', 'Result', `from ${nameA}`],
            ['current_time', '{}', 'ok', 'Result', 'from the relay'],
          ],
          `${who}: two answered cards`,
        );
        assert.is(shown.cards[0]!.output, JSON.stringify(JSON.parse(PARIS_JSON), null, 2), `${who}: the asker's zone, pretty-printed`);
        assert.match(shown.cards[1]!.output, ISO, `${who}: the relay's clock`);
        // The relay's own tool may answer before or after the page: the model reads the results in the order they came.
        assert.match(shown.answer, /^The tools answered: /, `${who}: ${shown.answer}`);
        assert.ok(shown.answer.includes(`user_timezone: ${PARIS_JSON}`), `${who}: ${shown.answer}`);
        assert.match(shown.answer, /current_time: \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z[;.]/, `${who}: ${shown.answer}`);
      };
      await check(a, 'the asker');
      await check(b, 'the other page');
      for (const [width, name] of [
        [1280, 'desktop'],
        [375, 'phone'],
      ] as const) {
        await a.setViewportSize({ width, height: 800 });
        const overflow = await a.locator('.tool-call').evaluateAll((els, w) => els.filter((el) => el.getBoundingClientRect().right > w).length, width);
        assert.is(overflow, 0, `the cards fit a ${width} px viewport`);
        await a.screenshot({ path: `${OUT}browser-page-tools-${name}.png` });
      }

      // Opened once the loop is over: the cards, their results and the answer come from history.
      const c = await open('page-tools', tools, { context: PARIS });
      await loopEnded(c);
      await check(c, 'a page opened afterwards');
      assert.is(await replyText(c), await replyText(a));
      await c.setViewportSize({ width: 375, height: 800 });
      await c.screenshot({ path: `${OUT}browser-page-tools-history-phone.png` });
      await a.close();
      await b.close();
      await c.close();
    } finally {
      await tools.close();
      for (const dir of toolDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no errors in the pages', () => {
    assert.equal(problems, []);
  });

  test.run();
}

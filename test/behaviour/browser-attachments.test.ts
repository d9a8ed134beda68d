// Attachments on the chat page in a real browser (Debian's chromium through
// playwright-core) against a real relay and the demo model: a file picked
// with the paperclip uploads at once and shows as a chip, goes with the next
// message, is described by the model and shown under the message (in history
// too, after a reload that keeps the same anonymous user); a file the server
// refuses shows its reason and leaves sending alone. Screenshots land in
// test/output/ (gitignored).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { ClientFrame } from '../../shared/protocol.js';
import { lastReply, openChat, OUT, PageSuite, replyEnded, sendMessage, withChromium } from '../chromium.js';

const PNG = fileURLToPath(new URL('../fixtures/attachments/pixels.png', import.meta.url));
/** A zip's bytes under an image's name and type: the server types files by their bytes. */
const ZIP = Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(64, 1)]);

withChromium('attachments on the chat page in a real browser', suite);

function suite(): void {
  const s = new PageSuite();
  const { problems } = s;

  const open = (room: string, sent?: string[]) => openChat(s.browser, `http://127.0.0.1:${s.stack.relay.port}/#${room}`, problems, sent ? { sent } : {});
  const myName = (page: Page) => page.locator('#me-name .me-name').textContent();

  /** The `send` frames the page sent, parsed. */
  const sends = (sent: string[]) =>
    sent.map((raw) => ClientFrame.parse(JSON.parse(raw))).filter((f): f is Extract<ClientFrame, { type: 'send' }> => f.type === 'send');

  /** Narrow the page to a phone's width, once the room list has slid away into its drawer. */
  async function phoneSized(page: Page): Promise<void> {
    await page.setViewportSize({ width: 375, height: 700 });
    await page.waitForFunction(() => getComputedStyle(document.getElementById('sidebar')!).visibility === 'hidden');
  }

  /** Wait until a user message shows an image that has loaded; returns its natural size and alt text. */
  async function shownImage(page: Page): Promise<{ width: number; height: number; alt: string }> {
    const handle = await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('.msg[data-role="user"][data-state="done"] .msg-attachments img');
      return img?.complete && img.naturalWidth > 0 ? { width: img.naturalWidth, height: img.naturalHeight, alt: img.alt } : false;
    });
    return (await handle.jsonValue()) as { width: number; height: number; alt: string };
  }

  test('a picked image uploads, goes with the message, is described by the model and shown, and stays after a reload', async () => {
    const sent: string[] = [];
    const page = await open('pictures', sent);
    const name = await myName(page);
    assert.ok(name, 'the page shows who I am');

    await page.setInputFiles('#attach-input', PNG);
    const chip = page.locator('.att-chip');
    await page.waitForSelector('.att-chip[data-state="done"]');
    assert.is(await chip.count(), 1);
    assert.is(await chip.locator('.att-name').textContent(), 'pixels.png');
    assert.is(await chip.locator('.att-remove').getAttribute('aria-label'), 'Remove pixels.png');
    // Files alone are no message: Send waits for words, and says so.
    assert.is(await page.locator('#send-button').isDisabled(), true);
    assert.match((await page.locator('.att-status').textContent()) ?? '', 'Write a message');
    await page.fill('#composer-input', 'What is in this picture?');
    await page.waitForSelector('.att-chip-thumb img');
    assert.is(await page.locator('#send-button').isEnabled(), true);
    await page.screenshot({ path: `${OUT}attachments-composer.png` });

    await page.keyboard.press('Enter');
    assert.is(await replyEnded(page), 'stop');
    const reply = (await lastReply(page).locator('.body').textContent()) ?? '';
    assert.match(reply, 'I received 1 attachment');
    assert.match(reply, 'a 3×2 PNG image');
    assert.equal(await shownImage(page), { width: 3, height: 2, alt: 'pixels.png' });
    assert.is(await page.locator('#attach-tray').isHidden(), true, 'the chips go once the message is sent');
    const [frame] = sends(sent);
    assert.is(frame?.attachments?.length, 1, 'the send carried the upload');
    await page.screenshot({ path: `${OUT}attachments-sent.png` });

    await page.reload();
    await page.waitForSelector('#conn[data-state="open"]');
    await page.waitForFunction((before) => document.querySelector('#me-name .me-name')?.textContent === before, name);
    assert.is(await myName(page), name, 'the same anonymous user after a reload');
    assert.equal(await shownImage(page), { width: 3, height: 2, alt: 'pixels.png' }, 'the image is shown from history');
    assert.is(await page.locator('.msg[data-role="user"]').count(), 1);
    assert.match((await page.locator('.msg[data-role="user"] .author').textContent()) ?? '', '(you)');
    await page.screenshot({ path: `${OUT}attachments-reloaded.png` });
    await phoneSized(page);
    await page.screenshot({ path: `${OUT}attachments-reloaded-phone.png` });
    await page.close();
  });

  test("a file the server refuses shows the server's reason, and text still sends", async () => {
    // What the server says of these bytes, asked directly with a session of its own.
    const probe = await s.stack.connect();
    const welcome = probe.frames.find((f) => f.type === 'welcome');
    const token = welcome?.type === 'welcome' ? welcome.sessionToken : undefined;
    assert.ok(token, 'an anonymous session token');
    const res = await fetch(`http://127.0.0.1:${s.stack.relay.port}/attachments?name=x.png`, {
      method: 'POST',
      body: new Uint8Array(ZIP),
      headers: { 'content-type': 'image/png', authorization: `Bearer ${token}` },
    });
    assert.is(res.status, 415);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    assert.is(error.code, 'unsupported_attachment');

    const sent: string[] = [];
    const page = await open('refused', sent);
    await page.setInputFiles('#attach-input', { name: 'x.png', mimeType: 'image/png', buffer: ZIP });
    const chip = page.locator('.att-chip[data-state="failed"]');
    await chip.waitFor();
    assert.is(await chip.locator('.att-detail').textContent(), error.message);
    assert.is(await chip.getAttribute('title'), error.message);
    assert.is(await page.locator('#send-button').isEnabled(), true, 'a refused file does not hold up sending');
    await page.screenshot({ path: `${OUT}attachments-refused.png` });
    await phoneSized(page);
    await page.screenshot({ path: `${OUT}attachments-refused-phone.png` });

    await sendMessage(page, 'Just words, then');
    assert.is(await replyEnded(page), 'stop');
    assert.is(await page.locator('.msg[data-role="user"] .msg-attachments').count(), 0);
    assert.is(sends(sent)[0]?.attachments, undefined, 'the refused file was not sent');
    assert.is(await page.locator('#attach-tray').isHidden(), true);

    // A chip can be removed by hand too.
    await page.setInputFiles('#attach-input', { name: 'y.png', mimeType: 'image/png', buffer: ZIP });
    await chip.waitFor();
    await page.click('.att-remove');
    assert.is(await page.locator('.att-chip').count(), 0);
    assert.is(await page.locator('#attach-tray').isHidden(), true);
    await page.close();
    // The browser logs each refused upload's 415; that one is expected.
    const refusals = problems.filter((p) => /Failed to load resource: .*status of 415/.test(p));
    assert.is(refusals.length, 2);
    problems.splice(0, problems.length, ...problems.filter((p) => !refusals.includes(p)));
  });

  test.run();
}

// The room list on the chat page comes from the server, in a real browser
// (Debian's chromium through playwright-core) against a real relay: a user
// makes two rooms and renames one from the list; another browser with the
// same session (another device) lists the same rooms, titled, newest first;
// a room someone else wrote in comes to the top, unread; the owner deletes
// rooms from the list, and whoever has a deleted room open is told and
// taken out of it. A long list comes a page at a time, with More.
// Screenshots land in test/output/ (gitignored).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'playwright-core';
import { openChat, OUT, PageSuite, replyEnded, sendMessage, withChromium } from '../chromium.js';
import { eventually } from '../helpers.js';

/** Where the page keeps its anonymous session (client/page/session.ts). */
const SESSION_KEY = 'relay.session';

withChromium('the room list from the server on the chat page in a real browser', suite);

function suite(): void {
  const s = new PageSuite();
  const { problems } = s;
  const base = () => `http://127.0.0.1:${s.stack.relay.port}`;
  const open = (room: string) => openChat(s.browser, `${base()}/#${room}`, problems);

  /** A page in a browser of its own that starts with `token` as its kept session: the same user on another device. */
  async function openAs(token: string, room: string): Promise<Page> {
    const context = await s.browser.newContext({
      viewport: { width: 1100, height: 760 },
      storageState: { cookies: [], origins: [{ origin: base(), localStorage: [{ name: SESSION_KEY, value: token }] }] },
    });
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    // Closing the page closes its browser too (already closed at the end of the suite: nothing to do then).
    page.on('close', () => void context.close().catch(() => undefined));
    await page.goto(`${base()}/#${room}`);
    await page.waitForSelector('#conn[data-state="open"]');
    return page;
  }

  /** The room list as the page shows it: each room's name (its title if it has one), "(unread)" where marked. */
  const listed = (page: Page) =>
    page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('#rooms li')].map((li) => `${li.querySelector('.room-name')?.textContent ?? ''}${li.dataset.unread !== undefined ? ' (unread)' : ''}`),
    );

  /** Wait until the list shows exactly these rows; on a timeout, say what it shows instead. */
  async function lists(page: Page, expected: string[], what: string): Promise<void> {
    const want = JSON.stringify(expected);
    await eventually(async () => JSON.stringify(await listed(page)) === want, what).catch(async () => assert.equal(await listed(page), expected, what));
  }

  const onScreen = (page: Page, room: string) => page.waitForFunction((r) => document.getElementById('room-title')?.textContent === r, room);
  const row = (page: Page, room: string) => page.locator(`#rooms li[data-room="${room}"]`);
  /** A room's own button (Rename, Delete): shown on hover. */
  async function rowAction(page: Page, room: string, action: 'rename' | 'delete'): Promise<void> {
    await row(page, room).hover();
    await row(page, room).locator(`[data-action="${action}"]`).click();
  }
  const membersShown = (page: Page) => page.locator('#members .count').textContent();
  const toastShown = (page: Page, text: string) => page.locator('.toast', { hasText: text }).waitFor();

  test('the list is the server\'s: another device sees the same rooms, titled, newest first, unread marked; deleting takes a room away from everyone', async () => {
    // Ann makes two rooms: the first by its address, the second by name in the join box.
    const ann = await open('rooms-first');
    await sendMessage(ann, 'the first room');
    assert.is(await replyEnded(ann), 'stop');
    await lists(ann, ['rooms-first'], 'the room she wrote in');
    await ann.fill('#join-input', 'rooms-second');
    await ann.keyboard.press('Enter');
    await onScreen(ann, 'rooms-second');
    await lists(ann, ['rooms-first', 'rooms-second'], 'a new room is listed at once, after those with messages');
    await sendMessage(ann, 'the second room');
    assert.is(await replyEnded(ann), 'stop');
    await lists(ann, ['rooms-second', 'rooms-first'], 'newest activity first');

    // She renames the second from the list while the first is on screen: the room is joined for the while, not shown.
    await ann.click('.room-link[href="#rooms-first"]');
    await onScreen(ann, 'rooms-first');
    await rowAction(ann, 'rooms-second', 'rename');
    await ann.fill('#rooms .room-edit-input', 'Groceries');
    await ann.keyboard.press('Enter');
    await lists(ann, ['Groceries', 'rooms-first'], 'the title in place of the name');
    await onScreen(ann, 'rooms-first');
    assert.is(await membersShown(ann), '1 here', 'the count is of the room on screen');
    await ann.screenshot({ path: `${OUT}rooms-renamed.png` });
    await ann.click('.room-link[href="#rooms-second"]');
    await onScreen(ann, 'rooms-second');
    assert.is(await ann.locator('#conv-title').textContent(), 'Groceries', 'the header has the title too');

    // Another device: a browser of its own, given Ann's session before the page loads.
    const token = (await ann.evaluate((key) => localStorage.getItem(key), SESSION_KEY)) ?? '';
    assert.ok(token, 'the page kept its session');
    const annElsewhere = await openAs(token, 'rooms-second');
    assert.is(await annElsewhere.locator('#me-name .me-name').textContent(), await ann.locator('#me-name .me-name').textContent(), 'the same user');
    await lists(annElsewhere, ['Groceries', 'rooms-first'], 'the same rooms, with the title, newest first');
    assert.is(await row(annElsewhere, 'rooms-second').locator('.room-link').getAttribute('aria-current'), 'page');

    // Carol writes in Ann's older room while no page of Ann's shows it.
    const carol = await open('rooms-first');
    await eventually(async () => (await membersShown(carol)) === '1 here', 'only carol looks at the first room');
    assert.is(await membersShown(ann), '1 here', "ann's count is of her own room, not carol's");
    await sendMessage(carol, 'news from carol');
    assert.is(await replyEnded(carol), 'stop');
    await annElsewhere.reload();
    await annElsewhere.waitForSelector('#conn[data-state="open"]');
    await lists(annElsewhere, ['rooms-first (unread)', 'Groceries'], "the room carol wrote in is on top, unread");
    await annElsewhere.screenshot({ path: `${OUT}rooms-unread.png` });
    assert.equal(await listed(carol), ['rooms-first'], "carol's list has only hers");
    assert.is(await row(carol, 'rooms-first').locator('[data-action]').count(), 0, 'no Rename or Delete in a room she does not own');

    // Ann deletes the first room from her list: gone from it, and carol is told and taken out.
    await rowAction(ann, 'rooms-first', 'delete');
    await ann.screenshot({ path: `${OUT}rooms-delete-asked.png` });
    await row(ann, 'rooms-first').getByRole('button', { name: 'Delete', exact: true }).click();
    await lists(ann, ['Groceries'], 'the deleted room is off her list');
    await toastShown(carol, 'This conversation was deleted');
    await carol.waitForFunction(() => document.getElementById('room-title')?.textContent !== 'rooms-first');
    await carol.locator('.empty-title', { hasText: 'No room open' }).waitFor();
    assert.equal(await listed(carol), [], 'nothing left on her list');
    assert.is(await carol.locator('#composer-input').isDisabled(), true, 'nowhere to write');
    assert.is(new URL(carol.url()).hash, '', 'a reload does not go back to it');
    await carol.screenshot({ path: `${OUT}rooms-deleted.png` });

    // The room on screen, deleted by its owner: on this page and on her other device alike.
    await rowAction(ann, 'rooms-second', 'delete');
    await row(ann, 'rooms-second').getByRole('button', { name: 'Delete', exact: true }).click();
    for (const page of [ann, annElsewhere]) {
      await toastShown(page, 'This conversation was deleted');
      await page.locator('.empty-title', { hasText: 'No room open' }).waitFor();
      await lists(page, [], 'no room left');
    }
    for (const page of [ann, annElsewhere, carol]) await page.close();
  });

  test('a long list comes a page at a time: More brings the older rooms', async () => {
    // A user with 22 rooms, each written in a moment after the one before.
    const probe = await s.stack.connect();
    const token = (await probe.waitFor('welcome')).sessionToken ?? '';
    assert.ok(token, 'an anonymous session token');
    const rooms = Array.from({ length: 22 }, (_, i) => `many-${String(i).padStart(2, '0')}`);
    for (const room of rooms) {
      probe.send({ type: 'send', conversationId: room, text: 'hello', reply: false });
      await probe.next('message', (f) => f.conversationId === room);
      const at = Date.now();
      await eventually(() => Date.now() > at, 'the clock moved on');
    }
    const newestFirst = [...rooms].reverse();

    const page = await openAs(token, 'elsewhere');
    await lists(page, [...newestFirst.slice(0, 20), 'elsewhere'], 'the newest 20, then the empty room on screen');
    await page.click('#more-rooms');
    await lists(page, [...newestFirst, 'elsewhere'], 'all of them after More');
    assert.is(await page.locator('#more-rooms').isHidden(), true, 'nothing more to load');
    await page.close();
  });

  test.run();
}

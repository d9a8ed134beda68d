// Branches and room settings on the chat page in a real browser (Debian's
// chromium through playwright-core) against a real relay whose model answers
// each request with its own number ("answer 3"): Regenerate puts a new answer
// beside the first (2/2), the arrows step between them, Edit writes a new
// version of a question, and a second user in the room follows every switch
// without being offered the controls; the settings panel gives the room a
// title in the header and a system prompt the model is sent. A refused action
// (a reply still running) is said in a toast, and a stopped reply offers Retry.
// A user the owner makes a viewer finds the composer off, with a note, and no
// Edit or Regenerate, until made a member again.
// Screenshots land in test/output/ (gitignored).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Page } from 'playwright-core';
import { lastReply, openChat, OUT, PageSuite, replyEnded, sendMessage, withChromium } from '../chromium.js';
import { eventually } from '../helpers.js';

/** Questions starting with this are answered slowly: long enough to act while the answer is written. */
const SLOW = 'Slowly';
const LONG = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');

withChromium('branches and settings on the chat page in a real browser', suite);

function suite(): void {
  const s = new PageSuite({
    plan: (req) => (req.messages.at(-1)?.content.startsWith(SLOW) ? { text: LONG, tokenDelayMs: 20 } : { text: `answer ${req.id}` }),
  });
  const { problems } = s;

  const open = (room: string) => openChat(s.browser, `http://127.0.0.1:${s.stack.relay.port}/#${room}`, problems);
  /** What the model will answer next: requests are numbered in arrival order. */
  const nextAnswer = () => `answer ${s.stack.model.requests.length + 1}`;

  /** The active path as the page shows it: who, what, and which version where there is more than one; a reply still being written says so. */
  const shown = (page: Page) =>
    page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('#message-list .msg')].map((el) => {
        const count = el.querySelector('.branch-count')?.textContent;
        const state = el.dataset.role === 'assistant' && el.dataset.state !== 'done' ? ` (${el.dataset.state})` : '';
        return `${el.dataset.role}: ${el.querySelector('.body')?.textContent ?? ''}${count ? ` [${count}]` : ''}${state}`;
      }),
    );

  /** Wait until the page shows exactly this path. */
  async function showsPath(page: Page, expected: string[], what: string): Promise<void> {
    const want = JSON.stringify(expected);
    // On a timeout, say what the page shows instead.
    await eventually(async () => JSON.stringify(await shown(page)) === want, what).catch(async () => assert.equal(await shown(page), expected, what));
  }

  const message = (page: Page, role: 'user' | 'assistant', nth: number) => page.locator(`#message-list .msg[data-role="${role}"]`).nth(nth);
  const action = (page: Page, role: 'user' | 'assistant', nth: number, name: string) => message(page, role, nth).getByRole('button', { name, exact: true });

  test('regenerate, step between answers, edit a question, and set the room up: a second user sees the same', async () => {
    const ann = await open('branches');
    const bob = await open('branches');
    const question = 'What is a branch?';

    const first = nextAnswer();
    await sendMessage(ann, question);
    assert.is(await replyEnded(ann), 'stop');
    await showsPath(ann, [`user: ${question}`, `assistant: ${first}`], 'the question and its answer');
    assert.is(await ann.locator('.branches').count(), 0, 'no arrows while there is one version');
    // Ann asked, so she owns the room: she may answer again and edit; Bob may do neither to her messages.
    assert.ok(await action(ann, 'user', 0, 'Edit').isVisible());
    await showsPath(bob, [`user: ${question}`, `assistant: ${first}`], "bob sees ann's question answered");
    assert.is(await bob.locator('.msg-action').count(), 0, 'no Edit or Regenerate for someone else in her room');

    const second = nextAnswer();
    await action(ann, 'assistant', 0, 'Regenerate').click();
    await showsPath(ann, [`user: ${question}`, `assistant: ${second} [2/2]`], 'the new answer, second of two');
    assert.is(await ann.locator('#message-list .msg').count(), 2, 'the first answer made way');
    await ann.screenshot({ path: `${OUT}branches-regenerated.png` });

    await message(ann, 'assistant', 0).getByRole('button', { name: 'Previous version' }).click();
    await showsPath(ann, [`user: ${question}`, `assistant: ${first} [1/2]`], 'back to the first answer');
    assert.ok(await message(ann, 'assistant', 0).getByRole('button', { name: 'Next version' }).isEnabled(), 'the way to the second answer is known');
    assert.ok(await message(ann, 'assistant', 0).getByRole('button', { name: 'Previous version' }).isDisabled(), 'there is none before the first');
    // The switch moved the room, not only Ann's page.
    await showsPath(bob, [`user: ${question}`, `assistant: ${first} [1/2]`], 'bob follows the switch');
    assert.ok(await message(bob, 'assistant', 0).getByRole('button', { name: 'Next version' }).isDisabled(), "only the owner moves the room's versions");

    const edited = 'What is a git branch?';
    const third = nextAnswer();
    await action(ann, 'user', 0, 'Edit').click();
    const editor = message(ann, 'user', 0).locator('.msg-editor-input');
    assert.is(await editor.inputValue(), question, 'the editor starts from the text');
    await editor.fill(edited);
    await ann.screenshot({ path: `${OUT}branches-editing.png` });
    await message(ann, 'user', 0).getByRole('button', { name: 'Save' }).click();
    await showsPath(ann, [`user: ${edited} [2/2]`, `assistant: ${third}`], 'the new version of the question, answered');
    await showsPath(bob, [`user: ${edited} [2/2]`, `assistant: ${third}`], 'bob sees the edit');
    await ann.screenshot({ path: `${OUT}branches-edited.png` });

    // The earlier question leads back to its branch, to the newest answer it had.
    await message(ann, 'user', 0).getByRole('button', { name: 'Previous version' }).click();
    await showsPath(ann, [`user: ${question} [1/2]`, `assistant: ${second} [2/2]`], 'the first question with its newest answer');
    await message(ann, 'user', 0).getByRole('button', { name: 'Next version' }).click();
    await showsPath(ann, [`user: ${edited} [2/2]`, `assistant: ${third}`], 'and forward to the edit');
    await showsPath(bob, [`user: ${edited} [2/2]`, `assistant: ${third}`], 'bob is on the same path');

    // Settings: the owner gives the room a title and a system prompt.
    await ann.click('#settings-button');
    await ann.fill('#settings-title', 'Git lessons');
    await ann.fill('#settings-prompt', 'Answer in one sentence.');
    await ann.screenshot({ path: `${OUT}branches-settings.png` });
    await ann.click('#settings-save');
    await ann.locator('#settings-panel').waitFor({ state: 'hidden' });
    await ann.waitForFunction(() => document.getElementById('conv-title')?.textContent === 'Git lessons');
    assert.ok(await ann.locator('#conv-title').isVisible(), 'the title shows in the header');
    assert.match(await ann.title(), 'Git lessons');
    await bob.waitForFunction(() => document.getElementById('conv-title')?.textContent === 'Git lessons');
    // Bob may look, not change.
    await bob.click('#settings-button');
    assert.is(await bob.locator('#settings-prompt').inputValue(), 'Answer in one sentence.');
    assert.ok(await bob.locator('#settings-prompt').isDisabled());
    assert.ok(await bob.locator('#settings-save').isHidden());
    assert.ok(await bob.locator('#settings-note').isVisible());
    await bob.click('#settings-cancel');

    const fourth = nextAnswer();
    await sendMessage(ann, 'And a tag?');
    await showsPath(ann, [`user: ${edited} [2/2]`, `assistant: ${third}`, 'user: And a tag?', `assistant: ${fourth}`], 'the next question answered');
    assert.equal(s.stack.model.requests.at(-1)?.messages[0], { role: 'system', content: 'Answer in one sentence.' }, "the room's system prompt goes to the model");
    await ann.screenshot({ path: `${OUT}branches-titled.png` });

    // A later question edited (Enter saves, as in the composer): what came before it stays.
    const fifth = nextAnswer();
    await action(ann, 'user', 1, 'Edit').click();
    await message(ann, 'user', 1).locator('.msg-editor-input').fill('And a git tag?');
    await ann.keyboard.press('Enter');
    const after = [`user: ${edited} [2/2]`, `assistant: ${third}`, 'user: And a git tag? [2/2]', `assistant: ${fifth}`];
    await showsPath(ann, after, 'the second question edited, the first pair kept');
    await showsPath(bob, after, 'bob sees it too');
    await ann.close();
    await bob.close();
  });

  test('an action refused while a reply runs is said in a toast; a stopped reply offers Retry', async () => {
    const page = await open('retry');
    const first = nextAnswer();
    await sendMessage(page, 'Hello');
    await showsPath(page, ['user: Hello', `assistant: ${first}`], 'answered');

    await sendMessage(page, `${SLOW}, please`);
    await page.waitForFunction(() => (document.querySelector('#message-list .msg[data-role="assistant"]:last-child .body')?.textContent?.length ?? 0) > 0);
    await action(page, 'assistant', 0, 'Regenerate').click();
    const toast = page.locator('#toasts .toast', { hasText: 'Regenerate failed' });
    await toast.waitFor();
    assert.match((await toast.textContent()) ?? '', /a reply is running/);
    assert.is(await page.locator('#message-list .msg').count(), 4, 'the refused regenerate changed nothing');

    await page.click('#stop-button');
    assert.is(await replyEnded(page), 'cancelled');
    const retry = action(page, 'assistant', 1, 'Retry');
    assert.ok(await retry.isVisible(), 'a stopped reply is retried, not regenerated');
    assert.is(await action(page, 'assistant', 0, 'Regenerate').count(), 1, 'an answer that finished is regenerated');
    await retry.click();
    // The retried answer is long and slow again: stop it too, then see where it stands.
    await page.waitForFunction(() => document.querySelector('#message-list .msg[data-role="assistant"]:last-child .branch-count')?.textContent === '2/2');
    assert.is(await message(page, 'assistant', 1).locator('.branch-count').textContent(), '2/2');
    await page.click('#stop-button');
    assert.is(await replyEnded(page), 'cancelled');
    assert.ok(await lastReply(page).getByRole('button', { name: 'Retry' }).isVisible());
    await page.close();
  });

  test('a viewer only watches: the composer is off with a note, and Edit and Regenerate go, until the owner makes them a member again', async () => {
    // The owner is a plain socket: its message creates the room, so the room is its own.
    const owner = await s.stack.connect();
    const ownerId = (await owner.waitFor('welcome')).user.id;
    owner.send({ type: 'send', conversationId: 'watching', text: 'My room', reply: false, ref: 'create' });
    await owner.next('message');
    const page = await open('watching');
    // The page's user is the one the owner sees come in.
    const presence = await owner.waitFor('presence', (p) => p.members.some((m) => m.id !== ownerId));
    const pageUser = presence.members.find((m) => m.id !== ownerId)!.id;
    const setRole = async (role: 'viewer' | 'member', ref: string) => {
      owner.send({ type: 'role', conversationId: 'watching', userId: pageUser, role, ref });
      assert.is((await owner.answerTo(ref)).type, 'role', `the owner made the page's user a ${role}`);
    };
    /** Wait until the text box, Send and the paperclip are all off (or all on). */
    const composerOff = (page: Page, off = true) =>
      page.waitForFunction((off) => ['composer-input', 'send-button', 'attach-button'].every((id) => (document.getElementById(id) as HTMLButtonElement).disabled === off), off);
    const note = (page: Page) => page.locator('#composer-note');

    const answer = nextAnswer();
    await sendMessage(page, 'May I write?');
    await showsPath(page, ['user: My room', 'user: May I write?', `assistant: ${answer}`], 'a member writes and is answered');
    assert.ok(await action(page, 'user', 1, 'Edit').isVisible(), 'a member edits their own question');
    assert.ok(await action(page, 'assistant', 0, 'Regenerate').isVisible(), 'and has it answered again');
    assert.ok(await note(page).isHidden());

    await setRole('viewer', 'demote');
    await composerOff(page);
    await note(page).waitFor();
    assert.is(await note(page).textContent(), 'You can only watch this room');
    await page.locator('.msg-action').first().waitFor({ state: 'detached' });
    await page.screenshot({ path: `${OUT}branches-viewer.png` });

    // A reload learns the role from the join, not from an event.
    await page.reload();
    await page.waitForSelector('#conn[data-state="open"]');
    await showsPath(page, ['user: My room', 'user: May I write?', `assistant: ${answer}`], 'a viewer still sees the room');
    await composerOff(page);
    assert.ok(await note(page).isVisible(), 'the note says why after a reload too');
    assert.is(await page.locator('.msg-action').count(), 0, 'no Edit or Regenerate for a viewer');

    await setRole('member', 'promote');
    await composerOff(page, false);
    await note(page).waitFor({ state: 'hidden' });
    await action(page, 'user', 1, 'Edit').waitFor();
    assert.ok(await action(page, 'assistant', 0, 'Regenerate').isVisible(), 'Regenerate is back');
    const again = nextAnswer();
    await sendMessage(page, 'And now?');
    await showsPath(page, ['user: My room', 'user: May I write?', `assistant: ${answer}`, 'user: And now?', `assistant: ${again}`], 'a member again writes');
    owner.ws.close();
    await page.close();
  });

  test.run();
}

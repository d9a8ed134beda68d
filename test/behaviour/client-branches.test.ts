// The client library's branches and settings against a real relay: edit,
// regenerate, switchTo and configure, with two users, and a client whose
// history after all of it equals what a fresh joiner is shown.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { RelayClient } from '../../client/index.js';
import type { HistoryMessage } from '../../shared/protocol.js';
import { eventually, startStack, type Stack } from '../helpers.js';

let stack: Stack;
const clients: RelayClient[] = [];
test.before.each(async () => {
  stack = await startStack({ plan: (req) => ({ text: `answer ${req.id}` }) });
});
test.after.each(async () => {
  for (const c of clients.splice(0)) c.close();
  await stack.close();
});

async function connected(): Promise<RelayClient> {
  const client = new RelayClient({ url: stack.url, WebSocket });
  clients.push(client);
  await client.connect();
  return client;
}

/** What matters of a history to a user: who said what, and which of how many versions it is. */
const shown = (history: readonly HistoryMessage[]) => history.map((m) => `${m.role}:${m.text}:${m.siblings ? `${m.siblings.index + 1}/${m.siblings.count}` : '-'}`);

async function freshView(conversationId: string): Promise<string[]> {
  const late = await connected();
  const room = late.conversation(conversationId);
  await new Promise((resolve) => room.once('joined', resolve));
  return shown(room.history);
}

test('edit, regenerate, switchTo and configure keep both users on the same path as a fresh joiner', async () => {
  const ann = await connected();
  const bob = await connected();
  const room = ann.conversation('lib');
  const bobRoom = bob.conversation('lib');
  await new Promise((resolve) => bobRoom.once('joined', resolve));

  const first = await room.ask('question one');
  await first.result;
  const again = await room.regenerate();
  assert.is((await again.result).text, 'answer 2');
  await eventually(() => bobRoom.history.at(-1)?.text === 'answer 2', 'bob sees the new answer');
  assert.equal(shown(room.history), ['user:question one:1/1', 'assistant:answer 2:2/2']);
  assert.equal(shown(bobRoom.history), shown(room.history));
  assert.equal(await freshView('lib'), shown(room.history));

  const edited = await room.edit(room.history[0]!.id, 'question one, again');
  assert.ok(edited.replyId);
  await room.reply(edited.replyId!).result;
  await eventually(() => bobRoom.history.at(-1)?.text === 'answer 3', 'bob sees the edit answered');
  assert.equal(shown(room.history), ['user:question one, again:2/2', 'assistant:answer 3:1/1']);
  assert.equal(shown(bobRoom.history), shown(room.history));

  await room.switchTo(first.id);
  assert.equal(shown(room.history), ['user:question one:1/2', 'assistant:answer 1:1/2']);
  await eventually(() => shown(bobRoom.history).join() === shown(room.history).join(), 'bob follows the switch');
  assert.equal(await freshView('lib'), shown(room.history));

  await room.configure({ title: 'Trivia', systemPrompt: 'Be brief.' });
  assert.equal(room.settings, { title: 'Trivia', systemPrompt: 'Be brief.' });
  await eventually(() => bobRoom.settings.title === 'Trivia', 'bob gets the settings');
  assert.is(room.owner, ann.user?.id);
  const refused = await bobRoom.configure({ title: 'Mine' }).catch((err: { code?: string }) => err.code);
  assert.is(refused, 'forbidden');
  assert.is((await bobRoom.regenerate(first.id).catch((err: { code?: string }) => err.code)), 'forbidden', "bob may not answer ann's question again");
});

test.run();

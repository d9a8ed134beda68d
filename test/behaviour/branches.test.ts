// Edit, regenerate and switch: every branch kept, one active path shared by
// every member (and by whoever resumes or joins late), and the model shown
// only the active path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { HistoryMessage, ServerFrameOf } from '../../shared/protocol.js';
import { startStack, type Stack, type TestClient } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  // Each answer names the request that wrote it and the last thing the model was asked.
  stack = await startStack({ tokenDelayMs: 1, plan: (req) => ({ text: `answer ${req.id} to ${req.messages.filter((m) => m.role === 'user').at(-1)?.content}` }) });
});
test.after.each(async () => {
  await stack.close();
});

/** Send and wait for the whole exchange on `c`; the user message and the reply's end. */
async function ask(c: TestClient, conversationId: string, text: string) {
  c.send({ type: 'send', conversationId, text });
  const message = await c.next('message', (m) => m.message.text === text);
  const end = await c.next('reply.end', (e) => e.replyId === message.replyId);
  return { message: message.message, end };
}

/** What a fresh member is shown: the active path, with each message's text and place among its siblings. */
async function joinedView(conversationId: string): Promise<Array<{ role: string; text: string; siblings: string }>> {
  const c = await stack.connect();
  c.send({ type: 'join', conversationId });
  return view((await c.next('joined')).history);
}

function view(history: readonly HistoryMessage[]) {
  return history.map((m) => ({ role: m.role, text: m.text, siblings: `${m.siblings!.index + 1}/${m.siblings!.count}` }));
}

/** The user and assistant turns the model was shown for request `id`. */
function shown(id: number): string[] {
  return stack.model.requests[id - 1]!.messages.filter((m) => m.role !== 'system').map((m) => `${m.role}: ${m.content}`);
}

test('regenerate answers again beside the first answer; both members see it, and a switch brings the first back for everyone', async () => {
  const ann = await stack.connect();
  const bob = await stack.connect();
  bob.send({ type: 'join', conversationId: 'regen' });
  await bob.next('joined');
  const { message: q, end: first } = await ask(ann, 'regen', 'what is up');
  ann.send({ type: 'send', conversationId: 'regen', text: 'and then?' });
  await ann.next('reply.end');

  ann.send({ type: 'regenerate', conversationId: 'regen', messageId: first.replyId, ref: 'again' });
  const start = await ann.next('reply.start', (s) => s.ref === 'again');
  assert.is(start.parentId, q.id, 'the new answer sits beside the first, under the question');
  assert.equal(start.siblings, { index: 1, count: 2 });
  const bobStart = await bob.next('reply.start', (s) => s.replyId === start.replyId);
  assert.is(bobStart.ref, undefined, "only the asker's copy carries its ref");
  assert.equal(bobStart.siblings, { index: 1, count: 2 });
  await ann.next('reply.end', (e) => e.replyId === start.replyId);
  await bob.next('reply.end', (e) => e.replyId === start.replyId);

  // The model saw the question alone: not the first answer, nor what followed it.
  assert.equal(shown(3), ['user: what is up']);
  // A fresh joiner is told every version's id, so it can switch to one it never saw.
  const fresh = await stack.connect();
  fresh.send({ type: 'join', conversationId: 'regen' });
  assert.equal((await fresh.next('joined')).history[1]!.siblings, { index: 1, count: 2, ids: [first.replyId, start.replyId] });
  assert.equal(await joinedView('regen'), [
    { role: 'user', text: 'what is up', siblings: '1/1' },
    { role: 'assistant', text: 'answer 3 to what is up', siblings: '2/2' },
  ]);

  ann.send({ type: 'switch', conversationId: 'regen', messageId: first.replyId, ref: 'back' });
  const switched = await ann.next('switch', (s) => s.ref === 'back');
  const bobSwitched = await bob.next('switch');
  assert.is(bobSwitched.seq, switched.seq);
  const firstPath = [
    { role: 'user', text: 'what is up', siblings: '1/1' },
    { role: 'assistant', text: 'answer 1 to what is up', siblings: '1/2' },
    { role: 'user', text: 'and then?', siblings: '1/1' },
    { role: 'assistant', text: 'answer 2 to and then?', siblings: '1/1' },
  ];
  assert.equal(view(switched.history), firstPath, 'the switch leads to the newest end of that branch');
  assert.equal(view(bobSwitched.history), firstPath);
  assert.equal(await joinedView('regen'), firstPath);

  // The next message continues the branch on screen, and the model sees that branch.
  await ask(bob, 'regen', 'one more');
  assert.equal(shown(4), ['user: what is up', 'assistant: answer 1 to what is up', 'user: and then?', 'assistant: answer 2 to and then?', 'user: one more']);
});

test('edit adds a sibling question and answers it; a member resuming through it sees each event once; the old branch stays reachable', async () => {
  const ann = await stack.connect();
  const { message: q1 } = await ask(ann, 'edit', 'first question');
  await ask(ann, 'edit', 'second question');

  const bob = await stack.connect();
  bob.send({ type: 'join', conversationId: 'edit' });
  const joined = await bob.next('joined');
  bob.kill();

  ann.send({ type: 'edit', conversationId: 'edit', messageId: q1.id, text: 'first question, better', clientMessageId: 'e1', ref: 'ed' });
  const edited = await ann.next('message', (m) => m.ref === 'ed');
  assert.is(edited.message.parentId, undefined, 'the first message has no parent, and neither has its new version');
  assert.equal(edited.siblings, { index: 1, count: 2 });
  const end = await ann.next('reply.end', (e) => e.replyId === edited.replyId);
  assert.is(end.finishReason, 'stop');
  assert.equal(shown(3), ['user: first question, better']);

  // A resend of the same edit (a client that lost the answer) is the same message, not a third version.
  ann.send({ type: 'edit', conversationId: 'edit', messageId: q1.id, text: 'first question, better', clientMessageId: 'e1', ref: 'again' });
  const repeat = await ann.next('message', (m) => m.ref === 'again');
  assert.is(repeat.message.id, edited.message.id);

  const back = await stack.connect();
  back.send({ type: 'join', conversationId: 'edit', since: joined.seq, epoch: joined.epoch });
  await back.next('joined');
  await back.next('reply.end', (e) => e.replyId === edited.replyId);
  const seqs = back.events('edit').map((e) => e.seq);
  assert.equal(seqs, [...new Set(seqs)].sort((a, b) => a - b), 'every event once, in order');
  const replayed = back.events('edit').find((e): e is ServerFrameOf<'message'> => e.type === 'message');
  assert.equal(replayed?.siblings, { index: 1, count: 2 });

  assert.equal(await joinedView('edit'), [
    { role: 'user', text: 'first question, better', siblings: '2/2' },
    { role: 'assistant', text: 'answer 3 to first question, better', siblings: '1/1' },
  ]);
  ann.send({ type: 'switch', conversationId: 'edit', messageId: q1.id });
  await ann.next('switch');
  assert.equal(
    (await joinedView('edit')).map((m) => m.text),
    ['first question', 'answer 1 to first question', 'second question', 'answer 2 to second question'],
  );
});

test('who may: only the asker or the owner edits and regenerates, only the owner switches; nothing while a reply runs', async () => {
  const owner = await stack.connect();
  const guest = await stack.connect();
  guest.send({ type: 'join', conversationId: 'rules' });
  await guest.next('joined');
  const { message: ownerQ, end: ownerA } = await ask(owner, 'rules', 'owner asks');
  const { message: guestQ, end: guestA } = await ask(guest, 'rules', 'guest asks');
  const before = await joinedView('rules');

  const refused = async (frame: Parameters<TestClient['send']>[0] & { ref: string }) => {
    guest.send(frame);
    const answer = await guest.answerTo(frame.ref);
    assert.is(answer.type, 'error', `${frame.type} is refused`);
    return answer.type === 'error' ? answer.code : undefined;
  };
  assert.is(await refused({ type: 'edit', conversationId: 'rules', messageId: ownerQ.id, text: 'mine now', ref: 'x1' }), 'forbidden');
  assert.is(await refused({ type: 'regenerate', conversationId: 'rules', messageId: ownerA.replyId, ref: 'x2' }), 'forbidden');
  assert.is(await refused({ type: 'switch', conversationId: 'rules', messageId: ownerA.replyId, ref: 'x3' }), 'forbidden');
  assert.is(await refused({ type: 'edit', conversationId: 'rules', messageId: 'no-such-message', text: 'x', ref: 'x4' }), 'not_found');
  assert.equal(await joinedView('rules'), before, 'a refused change changes nothing');

  // The guest may answer their own question again; the owner may too, and may edit it.
  guest.send({ type: 'regenerate', conversationId: 'rules', ref: 'mine' });
  const again = await guest.next('reply.start', (s) => s.ref === 'mine');
  assert.is(again.inReplyTo, guestQ.id, 'by default the last question is answered again');
  // While that reply runs, no branch may change, whoever asks.
  owner.send({ type: 'edit', conversationId: 'rules', messageId: guestQ.id, text: 'edited by the owner', ref: 'early' });
  const early = await owner.answerTo('early');
  assert.ok(early.type === 'error' && early.code === 'busy', 'busy while a reply runs');
  await guest.next('reply.end', (e) => e.replyId === again.replyId);
  owner.send({ type: 'edit', conversationId: 'rules', messageId: guestQ.id, text: 'edited by the owner', ref: 'late' });
  const edit = await owner.answerTo('late');
  assert.is(edit.type, 'message');
  assert.ok(guestA.replyId !== again.replyId);
});

test('a message sent while a reply streams hangs from that reply: a joiner meanwhile sees the whole path', async () => {
  await stack.close();
  stack = await startStack({ plan: (req) => ({ text: req.messages.at(-1)?.content === 'slow' ? 'word '.repeat(300) : 'quick', tokenDelayMs: 3 }) });
  const ann = await stack.connect();
  await ask(ann, 'mid', 'first');
  ann.send({ type: 'send', conversationId: 'mid', text: 'slow' });
  const start = await ann.next('reply.start');
  await ann.next('reply.delta');
  ann.send({ type: 'send', conversationId: 'mid', text: 'meanwhile', reply: false });
  const meanwhile = await ann.next('message', (m) => m.message.text === 'meanwhile');
  assert.is(meanwhile.message.parentId, start.replyId, 'its parent is the reply in flight');
  const late = await stack.connect();
  late.send({ type: 'join', conversationId: 'mid' });
  const joined = await late.next('joined');
  assert.equal(joined.history.map((m) => m.text), ['first', 'quick', 'slow', 'meanwhile'], 'nothing before the reply in flight is lost');
  assert.is(joined.streaming?.replyId, start.replyId);
  await ann.next('reply.end', (e) => e.replyId === start.replyId);
  assert.equal((await joinedView('mid')).map((m) => m.text), ['first', 'quick', 'slow', 'word '.repeat(300), 'meanwhile']);
});

test('history stays within HISTORY_LIMIT by dropping the oldest branches nobody is on first', async () => {
  await stack.close();
  stack = await startStack({ env: { HISTORY_LIMIT: '6' }, plan: (req) => ({ text: `answer ${req.id}` }) });
  const ann = await stack.connect();
  const { message: q } = await ask(ann, 'bound', 'q1');
  for (let i = 0; i < 3; i++) {
    ann.send({ type: 'regenerate', conversationId: 'bound', messageId: q.id, ref: `r${i}` });
    const s = await ann.next('reply.start', (f) => f.ref === `r${i}`);
    await ann.next('reply.end', (e) => e.replyId === s.replyId);
  }
  // q1 with 4 answers (5 entries); two more exchanges make 9, over the bound of 6.
  await ask(ann, 'bound', 'q2');
  await ask(ann, 'bound', 'q3');
  const path = await joinedView('bound');
  assert.equal(path.map((m) => m.text), ['q1', 'answer 4', 'q2', 'answer 5', 'q3', 'answer 6'], 'the active path is whole');
  assert.is(path[1]!.siblings, '1/1', 'the inactive answers went first');
});

test.run();

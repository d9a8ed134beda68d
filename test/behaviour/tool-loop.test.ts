// Tool round trips over real sockets and the built-in model, which calls the
// tools a message names and then answers from their results: a loop of steps
// every member watches, joiners and resumers that see each step, who may
// answer, what happens when nobody does, the step bound, and cancel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FaultPlan, RecordedRequest } from '../../demo/localmodel.js';
import type { ToolSpec } from '../../shared/protocol.js';
import { DIALECTS } from '../../server/upstream/dialect.js';
import { eventually, replyText, startStack, type Stack, type TestClient } from '../helpers.js';

const WEATHER: ToolSpec = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const CLOCK: ToolSpec = { name: 'get_time', parameters: { type: 'object', properties: {} } };

/** Tool turns of a request: how many results the model has seen so far. */
const resultsSeen = (req: RecordedRequest) => req.messages.filter((m) => m.role === 'tool').length;

let plan: (req: RecordedRequest) => FaultPlan | undefined = () => undefined;
let stack: Stack;
test.before(async () => {
  stack = await startStack({ env: { MAX_TOOL_STEPS: '3', TOOL_RESULT_TIMEOUT_MS: '1000' }, plan: (req) => plan(req) });
});
test.after(async () => {
  await stack.close();
});

let room = 0;
async function ask(c: TestClient, text: string, tools: ToolSpec[] = [WEATHER, CLOCK]) {
  const conversationId = `loop-${room++}`;
  c.send({ type: 'send', conversationId, text, tools });
  const end = await c.next('reply.end', (f) => f.conversationId === conversationId);
  return { conversationId, end };
}

test('a loop of two steps: the calls, the results, the continuations; two members see every step in order', async () => {
  // Step 1 calls both tools; step 2 (after two results) calls the weather again; step 3 answers.
  plan = (req) => (resultsSeen(req) === 2 ? { text: '', toolCalls: [{ id: 'call_w2', name: 'get_weather', arguments: '{"city":"Lyon"}' }] } : undefined);
  const asker = await stack.connect();
  const watcher = await stack.connect();
  const conversationId = `loop-${room++}`;
  watcher.send({ type: 'join', conversationId });
  await watcher.next('joined');
  asker.send({ type: 'send', conversationId, text: 'use get_weather and get_time for Paris', tools: [WEATHER, CLOCK] });
  const first = await asker.next('reply.end', (f) => f.conversationId === conversationId);
  assert.is(first.finishReason, 'tool_calls');
  assert.equal(first.toolCalls!.map((c) => c.name), ['get_weather', 'get_time']);

  for (const [i, call] of first.toolCalls!.entries()) {
    asker.send({ type: 'tool.result', ref: `r${i}`, conversationId, replyId: first.replyId, toolCallId: call.id, output: i === 0 ? 'sunny, 21 °C' : '14:05' });
    const echo = await asker.next('tool.result', (f) => f.toolCallId === call.id);
    assert.is(echo.ref, `r${i}`, 'the sender gets its own result back, with its ref');
  }
  const secondStart = await asker.next('reply.start', (f) => f.conversationId === conversationId);
  assert.is(secondStart.inReplyTo, first.replyId, 'the continuation answers the reply whose calls were answered');
  const second = await asker.next('reply.end', (f) => f.replyId === secondStart.replyId);
  assert.is(second.finishReason, 'tool_calls');
  asker.send({ type: 'tool.result', conversationId, replyId: second.replyId, toolCallId: 'call_w2', output: 'rain' });
  const thirdStart = await asker.next('reply.start', (f) => f.inReplyTo === second.replyId);
  const third = await asker.next('reply.end', (f) => f.replyId === thirdStart.replyId);
  assert.is(third.finishReason, 'stop');
  assert.is(replyText(asker.frames, third.replyId), 'The tools answered: get_weather: rain.');

  // The watcher saw the same events, in the same order, without a ref.
  await watcher.waitFor('reply.end', (f) => f.replyId === third.replyId);
  const kinds = (c: TestClient) => c.events(conversationId).filter((f) => f.type !== 'reply.delta').map((f) => `${f.type}@${f.seq}`);
  assert.equal(kinds(watcher), kinds(asker));
  assert.ok(watcher.events(conversationId).every((f) => !('ref' in f) || f.ref === undefined), 'other members get no ref');

  // What the model saw for step 2: the assistant turn with both calls, then both results.
  const step2 = stack.model.requests.find((r) => resultsSeen(r) === 2)!;
  assert.equal(
    step2.messages.slice(1).map((m) => [m.role, m.toolCalls?.map((c) => c.name).join('+') ?? m.content]),
    [
      ['user', 'use get_weather and get_time for Paris'],
      ['assistant', 'get_weather+get_time'],
      ['tool', 'sunny, 21 °C'],
      ['tool', '14:05'],
    ],
  );
  assert.equal(step2.tools.map((t) => t.name), ['get_weather', 'get_time'], 'each step offers the tools again');
});

test('a member who joins while the loop waits sees the calls and the results so far in history, then the rest live', async () => {
  plan = () => undefined;
  const asker = await stack.connect();
  const { conversationId, end } = await ask(asker, 'get_weather in Rome and get_time');
  const [weather, clock] = end.toolCalls!;
  asker.send({ type: 'tool.result', conversationId, replyId: end.replyId, toolCallId: weather!.id, output: 'warm' });
  await asker.next('tool.result');
  const late = await stack.connect();
  late.send({ type: 'join', conversationId });
  const joined = await late.next('joined');
  const reply = joined.history.find((m) => m.id === end.replyId);
  assert.equal(reply?.toolCalls?.map((c) => c.id), [weather!.id, clock!.id]);
  const results = joined.history.filter((m) => m.role === 'tool');
  assert.equal(results.map((m) => [m.replyId, m.toolCallId, m.text, m.isError]), [[end.replyId, weather!.id, 'warm', false]]);
  asker.send({ type: 'tool.result', conversationId, replyId: end.replyId, toolCallId: clock!.id, output: 'noon' });
  const start = await late.next('reply.start');
  assert.is(start.inReplyTo, end.replyId);
  const final = await late.next('reply.end');
  assert.is(replyText(late.frames, final.replyId), 'The tools answered: get_weather: warm; get_time: noon.');
});

test('a member resuming across the loop gets every result and the continuation, none twice', async () => {
  plan = () => undefined;
  const asker = await stack.connect();
  const { conversationId, end } = await ask(asker, 'get_time please');
  const away = await stack.connect();
  away.send({ type: 'join', conversationId });
  const joined = await away.next('joined');
  away.kill();
  asker.send({ type: 'tool.result', conversationId, replyId: end.replyId, toolCallId: end.toolCalls![0]!.id, output: '09:30' });
  const next = await asker.next('reply.end', (f) => f.replyId !== end.replyId);
  const back = await stack.connect();
  back.send({ type: 'join', conversationId, since: joined.seq, ...(joined.epoch ? { epoch: joined.epoch } : {}) });
  await back.waitFor('reply.end', (f) => f.replyId === next.replyId);
  const types = back.events(conversationId).map((f) => f.type);
  assert.equal(types.filter((t) => t !== 'reply.delta'), ['tool.result', 'reply.start', 'reply.end']);
  assert.is(replyText(back.frames, next.replyId), 'The tools answered: get_time: 09:30.');
});

test('who may answer: a stranger is forbidden; an unknown call and a second answer are not_found; nothing changes', async () => {
  plan = () => undefined;
  const asker = await stack.connect();
  const stranger = await stack.connect();
  const { conversationId, end } = await ask(asker, 'get_time now');
  const call = end.toolCalls![0]!;
  stranger.send({ type: 'join', conversationId });
  await stranger.next('joined');
  stranger.send({ type: 'tool.result', ref: 's1', conversationId, replyId: end.replyId, toolCallId: call.id, output: 'hijacked' });
  assert.is((await stranger.next('error', (e) => e.ref === 's1')).code, 'forbidden');
  asker.send({ type: 'tool.result', ref: 'a1', conversationId, replyId: end.replyId, toolCallId: 'call_nope', output: 'x' });
  assert.is((await asker.next('error', (e) => e.ref === 'a1')).code, 'not_found');
  asker.send({ type: 'tool.result', ref: 'a2', conversationId, replyId: 'no-such-reply', toolCallId: call.id, output: 'x' });
  assert.is((await asker.next('error', (e) => e.ref === 'a2')).code, 'not_found');
  asker.send({ type: 'tool.result', ref: 'a3', conversationId, replyId: end.replyId, toolCallId: call.id, output: '10:00' });
  await asker.next('tool.result', (f) => f.ref === 'a3');
  asker.send({ type: 'tool.result', ref: 'a4', conversationId, replyId: end.replyId, toolCallId: call.id, output: '11:00' });
  assert.is((await asker.next('error', (e) => e.ref === 'a4')).code, 'not_found', 'a call is answered once');
  const final = await asker.next('reply.end', (f) => f.replyId !== end.replyId);
  assert.is(replyText(asker.frames, final.replyId), 'The tools answered: get_time: 10:00.');
  const results = asker.events(conversationId).filter((f) => f.type === 'tool.result');
  assert.is(results.length, 1, 'only the accepted answer became an event');
});

test('calls nobody answers get an error result from the relay after TOOL_RESULT_TIMEOUT_MS, and the loop goes on', async () => {
  plan = () => undefined;
  const asker = await stack.connect();
  const { conversationId, end } = await ask(asker, 'get_weather in Oslo');
  const result = await asker.next('tool.result', () => true, 10_000);
  assert.equal([result.author.id, result.isError, result.toolCallId], ['relay', true, end.toolCalls![0]!.id]);
  const final = await asker.next('reply.end', (f) => f.conversationId === conversationId && f.replyId !== end.replyId);
  const said = replyText(asker.frames, final.replyId);
  // chat.completions has no error flag: the relay says it in the output.
  assert.match(said, /get_weather: Error: no result within 1000 ms/, said);
});

test('MAX_TOOL_STEPS bounds the loop: the last step offers no tools, so the model answers in words', async () => {
  // A model that would call a tool on every step it is offered one.
  plan = (req) => (req.tools.length ? { text: '', toolCalls: [{ id: `call_s${resultsSeen(req)}`, name: 'get_time', arguments: '{}' }] } : { text: 'done without tools' });
  const asker = await stack.connect();
  const { conversationId, end } = await ask(asker, 'loop forever');
  let reply = end;
  for (let step = 1; step < 3; step++) {
    assert.is(reply.finishReason, 'tool_calls', `step ${step}`);
    asker.send({ type: 'tool.result', conversationId, replyId: reply.replyId, toolCallId: reply.toolCalls![0]!.id, output: `t${step}` });
    const prev = reply.replyId;
    reply = await asker.next('reply.end', (f) => f.conversationId === conversationId && f.replyId !== prev);
  }
  assert.is(reply.finishReason, 'stop');
  assert.is(replyText(asker.frames, reply.replyId), 'done without tools');
  const sent = stack.model.requests.slice(-3).map((r) => r.tools.length);
  assert.equal(sent, [2, 2, 0]);
});

test('cancel while the loop waits ends it: open calls are answered as cancelled, no continuation runs', async () => {
  plan = () => undefined;
  const asker = await stack.connect();
  const { conversationId, end } = await ask(asker, 'get_weather in Nice');
  const before = stack.model.requests.length;
  asker.send({ type: 'cancel', conversationId });
  const result = await asker.next('tool.result');
  assert.equal([result.isError, result.output], [true, 'the tool call was cancelled']);
  asker.send({ type: 'tool.result', ref: 'late', conversationId, replyId: end.replyId, toolCallId: end.toolCalls![0]!.id, output: 'too late' });
  assert.is((await asker.next('error', (e) => e.ref === 'late')).code, 'not_found');
  // The conversation goes on normally, and no step was ever asked of the model.
  plan = () => ({ text: 'fine' });
  asker.send({ type: 'send', conversationId, text: 'never mind' });
  const next = await asker.next('reply.end', (f) => f.replyId !== end.replyId);
  assert.is(replyText(asker.frames, next.replyId), 'fine');
  await eventually(() => stack.model.requests.length === before + 1, 'exactly one more upstream request');
});

test('a tools list that breaks the bounds is a bad_frame', async () => {
  const c = await stack.connect();
  const many = Array.from({ length: 33 }, (_, i) => ({ name: `t${i}`, parameters: {} }));
  c.send({ type: 'send', ref: 'b1', conversationId: 'loop-bad', text: 'hi', tools: many });
  assert.is((await c.next('error', (e) => e.ref === 'b1')).code, 'bad_frame');
  c.send({ type: 'send', ref: 'b2', conversationId: 'loop-bad', text: 'hi', tools: [{ name: 'bad name!', parameters: {} }] });
  assert.is((await c.next('error', (e) => e.ref === 'b2')).code, 'bad_frame');
});

for (const dialect of DIALECTS) {
  test(`${dialect}: the continuation's upstream context holds the call and its result in the dialect's own form`, async () => {
    const own = await startStack({ env: { UPSTREAM_DIALECT: dialect } });
    try {
      const c = await own.connect();
      c.send({ type: 'send', conversationId: 'dialect-loop', text: 'get_time please', tools: [CLOCK] });
      const end = await c.next('reply.end');
      assert.is(end.finishReason, 'tool_calls');
      c.send({ type: 'tool.result', conversationId: 'dialect-loop', replyId: end.replyId, toolCallId: end.toolCalls![0]!.id, output: '07:45' });
      const final = await c.next('reply.end', (f) => f.replyId !== end.replyId);
      assert.is(replyText(c.frames, final.replyId), 'The tools answered: get_time: 07:45.');
      const req = own.model.requests.at(-1)!;
      assert.is(req.dialect, dialect);
      const turns = req.messages.filter((m) => m.role !== 'system');
      assert.equal(turns.map((m) => m.role), ['user', 'assistant', 'tool']);
      assert.equal(turns[1]!.toolCalls?.map((t) => [t.id, t.name]), [[end.toolCalls![0]!.id, 'get_time']]);
      assert.is(turns[2]!.toolCallId, end.toolCalls![0]!.id);
    } finally {
      await own.close();
    }
  });
}

test.run();

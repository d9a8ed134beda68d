// Tool calls as providers other than OpenAI stream them, replayed through the
// built-in model: without `index`, each call whole in one piece, or named by
// `id` once and continued by pieces that carry neither. reply.end.toolCalls
// must list each call separately, in order, arguments intact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack } from '../helpers.js';

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const call = (piece: object) => chunk({ tool_calls: [piece] });
const end = chunk({}, 'tool_calls') + 'data: [DONE]\n\n';

const STREAMS: Record<string, string> = {
  'two whole calls without index':
    call({ id: 'call_1', type: 'function', function: { name: 'a', arguments: '{"x":1}' } }) +
    call({ id: 'call_2', type: 'function', function: { name: 'b', arguments: '{"y":2}' } }) +
    end,
  'calls without index, arguments continued by pieces without id':
    call({ id: 'call_1', function: { name: 'a', arguments: '' } }) +
    call({ function: { arguments: '{"x"' } }) +
    call({ function: { arguments: ':1}' } }) +
    call({ id: 'call_2', function: { name: 'b', arguments: '{"y"' } }) +
    call({ function: { arguments: ':2}' } }) +
    end,
  'every call at index 0, told apart by id':
    call({ index: 0, id: 'call_1', function: { name: 'a', arguments: '{"x"' } }) +
    call({ index: 0, function: { arguments: ':1}' } }) +
    call({ index: 0, id: 'call_2', function: { name: 'b', arguments: '{"y":2}' } }) +
    end,
};

let stack: Stack;
test.before(async () => {
  // The test sends the stream's name as the user message.
  stack = await startStack({
    tokenDelayMs: 0,
    plan: (req) => ({ replay: STREAMS[req.messages.at(-1)?.content ?? ''] ?? end }),
  });
});
test.after(async () => {
  await stack.close();
});

for (const [i, name] of Object.keys(STREAMS).entries()) {
  test(`${name}: two separate calls`, async () => {
    const c = await stack.connect();
    c.send({ type: 'send', conversationId: `tools-${i}`, text: name });
    const reply = await c.next('reply.end');
    assert.is(reply.finishReason, 'tool_calls', JSON.stringify(reply.error));
    assert.equal(reply.toolCalls, [
      { id: 'call_1', name: 'a', arguments: '{"x":1}' },
      { id: 'call_2', name: 'b', arguments: '{"y":2}' },
    ]);
  });
}

test.run();

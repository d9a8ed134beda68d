// Real recorded upstream SSE bodies (test/fixtures/upstream/*.sse, copied byte
// for byte from a corpus of provider recordings) replayed through the built-in
// model into a real relay: the frames a client receives must say exactly what
// the recorded stream said, in protocol terms.
//
// The expected results live in test/fixtures/upstream/expected.json, written
// by hand from the corpus' mechanically computed expectations and the relay's
// rules; they are deliberately not derived from the .sse files here.
//   - text / reasoning / refusal: concatenations for choice index 0 only
//   - usage: the last non-null upstream usage, source "upstream"
//   - an in-stream error (an `event: error` event or a chunk with a top-level
//     `error`) ends the reply with finishReason "error", code "upstream_error",
//     keeping what already streamed; usage is the upstream one if any arrived,
//     else "estimated" (only the source is asserted then)
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FinishReason, ServerFrameOf, ToolCall, Usage } from '../../shared/protocol.js';
import { startStack, type Stack } from '../helpers.js';

interface Expected {
  text: string;
  reasoning: string;
  refusal: string;
  finishReason: FinishReason;
  usage?: Usage | { source: 'estimated' };
  toolCalls?: ToolCall[];
  errorCode?: string;
}

const DIR = new URL('../fixtures/upstream/', import.meta.url);
const expected = JSON.parse(readFileSync(new URL('expected.json', DIR), 'utf8')) as Record<string, Expected>;
const names = readdirSync(DIR)
  .filter((f) => f.endsWith('.sse'))
  .map((f) => f.slice(0, -'.sse'.length))
  .sort();
const bodies = new Map(names.map((n) => [n, readFileSync(new URL(`${n}.sse`, DIR), 'utf8')]));

let stack: Stack;
test.before(async () => {
  stack = await startStack({
    tokenDelayMs: 0,
    // The test sends the fixture's name as the user message; anything else is a 400.
    plan: (req) => {
      const last = [...req.messages].reverse().find((m) => m.role === 'user');
      const body = last ? bodies.get(last.content) : undefined;
      return body === undefined ? { httpStatus: 400 } : { replay: body };
    },
  });
});
test.after(async () => {
  await stack?.close();
});

test('every fixture has an expectation and every expectation a fixture', () => {
  assert.equal(Object.keys(expected).sort(), names);
  for (const name of names) assert.ok(bodies.get(name)!.length > 0, `${name} is empty`);
});

for (const name of names) {
  test(`replay ${name}`, async () => {
    const want = expected[name];
    assert.ok(want, `no expectation for ${name}`);
    const c = await stack.connect();
    const conversationId = `corpus.${name}`;
    c.send({ type: 'send', conversationId, text: name });
    const end = await c.next('reply.end', (f) => f.conversationId === conversationId);

    const events = c.events(conversationId);
    const starts = events.filter((f): f is ServerFrameOf<'reply.start'> => f.type === 'reply.start');
    const ends = events.filter((f): f is ServerFrameOf<'reply.end'> => f.type === 'reply.end');
    const deltas = events.filter((f): f is ServerFrameOf<'reply.delta'> => f.type === 'reply.delta');
    assert.is(starts.length, 1, 'exactly one reply.start');
    assert.is(ends.length, 1, 'exactly one reply.end');
    const start = starts[0]!;
    assert.is(end.replyId, start.replyId);
    const iStart = events.indexOf(start);
    const iEnd = events.indexOf(end);
    for (const d of deltas) {
      assert.is(d.replyId, start.replyId, 'delta belongs to the reply');
      const i = events.indexOf(d);
      assert.ok(iStart < i && i < iEnd, 'deltas come between reply.start and reply.end');
      assert.ok(d.text || d.reasoning || d.refusal, `empty reply.delta: ${JSON.stringify(d)}`);
    }
    const seqs = events.map((f) => f.seq);
    assert.ok(
      seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
      `seq strictly increasing: ${seqs.join(',')}`,
    );

    // Exact concatenations: UTF-8 (°, emoji) must come through intact.
    assert.is(deltas.map((d) => d.text ?? '').join(''), want.text, 'text');
    assert.is(deltas.map((d) => d.reasoning ?? '').join(''), want.reasoning, 'reasoning');
    assert.is(deltas.map((d) => d.refusal ?? '').join(''), want.refusal, 'refusal');

    assert.is(end.finishReason, want.finishReason, `finishReason (error: ${JSON.stringify(end.error)})`);
    if (want.errorCode) assert.is(end.error?.code, want.errorCode, 'error.code');
    else assert.is(end.error, undefined, 'no error');

    if (want.usage?.source === 'upstream') assert.equal(end.usage, want.usage, 'usage');
    else if (want.usage) assert.is(end.usage?.source, want.usage.source, 'usage.source');

    if (want.toolCalls) assert.equal(end.toolCalls, want.toolCalls, 'toolCalls');
    else assert.is(end.toolCalls, undefined, 'no toolCalls');

    assert.equal(c.invalid, [], 'every server frame matches the schema');
  });
}

test.run();

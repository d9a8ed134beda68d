// Runs of events as the embedded store writes them: deltas shortened to what
// differs and rebuilt byte for byte, whatever they hold; anything else kept whole.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packRun, unpackRun } from '../../server/backend/sqlite/runs.js';

const conversationId = 'room:1';
const replyId = '0b6f3c1e-5d2a-4f7e-9a41-2c8d7e6f5a10';
const event = (seq: number, body: Record<string, unknown>) => JSON.stringify({ ...body, seq });
const delta = (piece: Record<string, unknown>) => ({ type: 'reply.delta', conversationId, replyId, ...piece });

test('a run of a reply: deltas come back byte for byte, with their seqs and offsets', () => {
  const bodies = [
    { type: 'reply.start', conversationId, replyId, inReplyTo: 'm-1', model: 'gpt' },
    delta({ text: 'Hello' }),
    delta({ text: ' wörld\n"quoted" 🙂' }),
    delta({ reasoning: 'hmm' }),
    delta({ toolCall: { index: 0, id: 'call_1', name: 'f', arguments: '{"a":' } }),
    // Another reply's delta (never in one run, but if it were): kept whole.
    { type: 'reply.delta', conversationId, replyId: 'other', text: 'x' },
  ];
  const entries = bodies.map((b, i) => ({ seq: 10 + i, at: 5, offset: 0, json: event(10 + i, b) }));
  let offset = 100;
  for (const e of entries) {
    e.offset = offset;
    offset += Buffer.byteLength(e.json);
  }
  const packed = packRun(conversationId, replyId, entries);
  assert.ok(packed.text.length < entries.map((e) => e.json).join('\n').length / 2, 'much shorter');
  const back = unpackRun(conversationId, { seq: 10, at: 5, offset: 100, replyId: packed.replyId, json: packed.text });
  assert.equal(back, entries);
});

test('a single event, or a run without a reply, is kept whole', () => {
  const one = [{ seq: 3, at: 1, offset: 0, json: event(3, { type: 'message', conversationId, message: { text: 'hi' } }) }];
  const packed = packRun(conversationId, undefined, one);
  assert.equal(packed, { replyId: null, text: one[0]!.json });
  assert.equal(unpackRun(conversationId, { seq: 3, at: 1, offset: 0, replyId: null, json: packed.text }), one);
});

test.run();

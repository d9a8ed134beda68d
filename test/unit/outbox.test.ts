import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { ServerFrame } from '../../shared/protocol.js';
import { serialize } from '../../server/rooms/fanout.js';
import { Outbox, type DeltaEvent } from '../../server/session/outbox.js';

/** A socket whose send buffer the test fills and drains by hand. */
class FakeWire {
  bufferedAmount = 0;
  /** While false, the reader drains everything at once. */
  accumulate = true;
  sent: string[] = [];
  send(data: string) {
    this.sent.push(data);
    if (this.accumulate) this.bufferedAmount += data.length;
  }
  frames() {
    return this.sent.map((s) => ServerFrame.parse(JSON.parse(s)));
  }
}

const delta = (seq: number, text: string, replyId = 'r1', conversationId = 'c1'): DeltaEvent => ({
  type: 'reply.delta',
  conversationId,
  seq,
  replyId,
  text,
});
const send = (o: Outbox, e: DeltaEvent) => o.send(serialize(e), e);
const tick = () => new Promise((r) => setTimeout(r, 40));

test('below the high-water mark every frame goes straight out', () => {
  const wire = new FakeWire();
  const o = new Outbox(wire, { highWaterBytes: 10_000, hardLimitBytes: 100_000 }, { overflow: () => assert.unreachable() });
  for (let i = 1; i <= 5; i++) send(o, delta(i, `t${i}`));
  assert.is(wire.sent.length, 5);
  assert.is(o.merged, 0);
  o.close();
});

test('above it, consecutive deltas of a reply merge: same text, seq of the last', async () => {
  const wire = new FakeWire();
  const o = new Outbox(wire, { highWaterBytes: 100, hardLimitBytes: 100_000 }, { overflow: () => assert.unreachable() });
  wire.bufferedAmount = 500; // the reader stopped
  for (let i = 1; i <= 50; i++) send(o, delta(i, `w${i} `));
  assert.is(wire.sent.length, 0);
  wire.bufferedAmount = 0; // it reads again
  wire.accumulate = false;
  await tick();
  const frames = wire.frames();
  assert.is(frames.length, 1);
  const merged = z.object({ seq: z.number(), text: z.string() }).parse(frames[0]);
  assert.is(merged.seq, 50);
  assert.is(merged.text, Array.from({ length: 50 }, (_, i) => `w${i + 1} `).join(''));
  assert.is(o.merged, 49);
  o.close();
});

test('tool-call pieces merge within one call, never across calls: each call keeps its id, name and arguments in order', async () => {
  const wire = new FakeWire();
  const o = new Outbox(wire, { highWaterBytes: 100, hardLimitBytes: 100_000 }, { overflow: () => assert.unreachable() });
  wire.bufferedAmount = 500; // the reader stopped
  const piece = (seq: number, toolCall: DeltaEvent['toolCall']): DeltaEvent => ({ type: 'reply.delta', conversationId: 'c1', seq, replyId: 'r1', toolCall });
  const pieces = [
    piece(1, { index: 0, id: 'call_a', name: 'get_weather' }),
    piece(2, { index: 0, arguments: '{"city":' }),
    piece(3, { index: 0, arguments: ' "Paris"}' }),
    piece(4, { index: 1, id: 'call_b', name: 'get_time', arguments: '{' }),
    piece(5, { index: 1, arguments: '}' }),
  ];
  for (const p of pieces) send(o, p);
  wire.bufferedAmount = 0; // it reads again
  wire.accumulate = false;
  await tick();
  const calls = wire.frames().map((f) => (f.type === 'reply.delta' ? [f.seq, f.toolCall] : []));
  assert.equal(calls, [
    [3, { index: 0, id: 'call_a', name: 'get_weather', arguments: '{"city": "Paris"}' }],
    [5, { index: 1, id: 'call_b', name: 'get_time', arguments: '{}' }],
  ]);
  o.close();
});

test('merging never reorders a conversation: a message between deltas splits the merge', async () => {
  const wire = new FakeWire();
  const o = new Outbox(wire, { highWaterBytes: 100, hardLimitBytes: 100_000 }, { overflow: () => assert.unreachable() });
  wire.bufferedAmount = 500;
  send(o, delta(1, 'a'));
  send(o, delta(2, 'b'));
  const message = serialize({
    type: 'message',
    conversationId: 'c1',
    seq: 3,
    message: { id: 'm', role: 'user', author: { id: 'u', name: 'U' }, text: 'hi', createdAt: 1 },
  });
  o.send(message, undefined, 'c1');
  send(o, delta(4, 'c'));
  send(o, delta(5, 'x', 'r9', 'c2')); // another conversation interleaves freely
  send(o, delta(6, 'd'));
  wire.bufferedAmount = 0;
  wire.accumulate = false;
  await tick();
  const frames = wire.frames().map((f) => ('seq' in f ? [f.type, f.seq, f.type === 'reply.delta' ? f.text : ''] : []));
  assert.equal(frames, [
    ['reply.delta', 2, 'ab'],
    ['message', 3, ''],
    ['reply.delta', 6, 'cd'],
    ['reply.delta', 5, 'x'],
  ]);
  o.close();
});

test('past the hard limit the outbox gives up and reports the overflow once', () => {
  const wire = new FakeWire();
  let overflows = 0;
  const o = new Outbox(wire, { highWaterBytes: 100, hardLimitBytes: 2_000 }, { overflow: () => overflows++ });
  wire.bufferedAmount = 1_500;
  const big = 'x'.repeat(300);
  for (let i = 1; i <= 10; i++) o.send(serialize({ type: 'typing', conversationId: 'c1', user: { id: 'u', name: big } }), undefined, 'c1');
  assert.is(overflows, 1);
  assert.is(o.waiting, 0, 'nothing is kept after giving up');
});

test.run();

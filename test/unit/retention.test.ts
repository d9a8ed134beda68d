// The retention rule of server/history/retention.ts (every backend trims by it), with the clock given explicitly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventsToDrop, overLimits, type RetentionLimits, type Retained } from '../../server/history/retention.js';

const roomy: RetentionLimits = { eventLogMax: 1000, eventLogMaxAgeMs: 1_000_000, eventLogMaxBytes: 1_000_000 };

/** `count` events of 10 bytes each, seq 1…, appended at the given times (default 0). */
function log(count: number, at: (i: number) => number = () => 0): { events: Retained[]; extent: { count: number; end: number; keepFrom: number | undefined } } {
  const events = Array.from({ length: count }, (_, i) => ({ seq: i + 1, at: at(i), offset: i * 10 }));
  return { events, extent: { count, end: count * 10, keepFrom: undefined } };
}

test('age: past the cutoff plus an eighth it trims, back to the cutoff', () => {
  const limits = { ...roomy, eventLogMaxAgeMs: 800 };
  const { events, extent } = log(10, (i) => i * 50); // at 0, 50, … 450
  assert.not.ok(overLimits(events[0], extent, limits, 900), 'an eighth over (100 ms) is not yet enough');
  assert.ok(overLimits(events[0], extent, limits, 901));
  // Cutoff 901 - 800 = 101: the events at 0, 50 and 100 go.
  assert.is(eventsToDrop(events, extent, limits, 901), 3);
});

test('bytes: past the cap plus a quarter it trims, back to the cap', () => {
  const limits = { ...roomy, eventLogMaxBytes: 100 };
  const twelve = log(12);
  assert.not.ok(overLimits(twelve.events[0], twelve.extent, limits, 0), '120 bytes is within a quarter over');
  const thirteen = log(13);
  assert.ok(overLimits(thirteen.events[0], thirteen.extent, limits, 0), '130 bytes');
  assert.is(eventsToDrop(thirteen.events, thirteen.extent, limits, 0), 3, 'down to 100 bytes');
});

test('count: past the cap plus a quarter it trims, back to the cap', () => {
  const limits = { ...roomy, eventLogMax: 16 };
  const twenty = log(20);
  assert.not.ok(overLimits(twenty.events[0], twenty.extent, limits, 0));
  const more = log(21);
  assert.ok(overLimits(more.events[0], more.extent, limits, 0));
  assert.is(eventsToDrop(more.events, more.extent, limits, 0), 5);
});

test('the newest event is always kept', () => {
  const { events, extent } = log(10);
  assert.is(eventsToDrop(events, extent, { ...roomy, eventLogMaxAgeMs: 1000 }, 1_000_000), 9, 'all too old');
  assert.is(eventsToDrop(events, extent, { ...roomy, eventLogMaxBytes: 1 }, 0), 9, 'all too big');
});

test('the reply in flight (keepFrom on) is kept whatever the limits say', () => {
  const { events, extent } = log(10);
  assert.is(eventsToDrop(events, { ...extent, keepFrom: 4 }, { ...roomy, eventLogMaxAgeMs: 1000 }, 1_000_000), 3, 'seqs 1-3 go, 4 on stay');
  assert.is(eventsToDrop(events, { ...extent, keepFrom: 1 }, { ...roomy, eventLogMax: 2 }, 0), 0);
});

test('within every limit nothing is over and nothing drops', () => {
  const { events, extent } = log(10);
  assert.not.ok(overLimits(events[0], extent, roomy, 0));
  assert.is(eventsToDrop(events, extent, roomy, 0), 0);
  assert.not.ok(overLimits(undefined, { count: 0, end: 0, keepFrom: undefined }, roomy, 0), 'an empty log');
});

test.run();

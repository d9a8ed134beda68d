// The per-user and per-socket limit rules of server/session/limits.ts, with the clock given explicitly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TokenBucket, TokenQuota } from '../../server/session/limits.js';

test('TokenQuota: windows are aligned to the epoch, not to the first spend', () => {
  const quota = new TokenQuota(10, 1000);
  // 100 ms before a window boundary (6000 is a multiple of 1000).
  assert.ok(quota.spend('u', 10, 5900), 'exactly the quota is allowed');
  assert.not.ok(quota.available('u', 5900));
  assert.not.ok(quota.spend('u', 1, 5999), 'one more crosses it');
  assert.not.ok(quota.available('u', 5999));
  // The boundary: a fresh window, although the first spend was only 100 ms ago.
  assert.ok(quota.available('u', 6000));
  assert.ok(quota.spend('u', 10, 6000));
  assert.not.ok(quota.spend('u', 1, 6999));
  assert.ok(quota.available('other-user', 6999), 'each user has their own');
});

test('TokenQuota: 0 is no quota', () => {
  const quota = new TokenQuota(0, 1000);
  assert.ok(quota.spend('u', 1_000_000, 0));
  assert.ok(quota.available('u', 0));
});

test('TokenBucket(n, 1): n refusals at once, then one more per second (the strikes rule)', () => {
  const strikes = new TokenBucket(3, 1, 0);
  assert.equal([strikes.take(0), strikes.take(0), strikes.take(0), strikes.take(0)], [true, true, true, false]);
  assert.not.ok(strikes.take(999), 'nothing recovered before a second has passed');
  assert.ok(strikes.take(1000), 'one recovered after a second');
  assert.not.ok(strikes.take(1000));
  assert.ok(strikes.take(2500), 'one more by 2 s');
  // A long pause refills to the capacity, not beyond.
  assert.equal([strikes.take(60_000), strikes.take(60_000), strikes.take(60_000), strikes.take(60_000)], [true, true, true, false]);
});

test.run();

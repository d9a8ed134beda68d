// Upload bodies held at once: at most 8 of the largest size in all, and 2 per
// client address, each slot given back when its upload ends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UploadsInFlight } from '../../server/attachments/routes.js';

test('two uploads per address, eight of the largest size in all, and slots come back', () => {
  const uploads = new UploadsInFlight(100);
  assert.ok(uploads.admit('a', 100));
  assert.ok(uploads.admit('a', 100));
  assert.not.ok(uploads.admit('a', 1), 'a third from one address waits');
  for (const address of ['b', 'b', 'c', 'c', 'd', 'd']) assert.ok(uploads.admit(address, 100));
  assert.not.ok(uploads.admit('e', 1), 'the bytes of eight of the largest are held');
  uploads.release('a', 100);
  assert.ok(uploads.admit('e', 100), 'a finished upload gives its bytes back');
  assert.not.ok(uploads.admit('a', 1), 'all eight are held again');
  uploads.release('e', 100);
  assert.ok(uploads.admit('a', 100), "and its address's slot");
  assert.not.ok(uploads.admit('a', 1));
});

test.run();

// The chat page's room names: what someone types becomes a conversation id the
// relay accepts, the same way every time, and an id is used as typed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConversationId } from '../../shared/protocol.js';
import { roomIdFor } from '../../client/page/room-name.js';

test('an id is used as typed', () => {
  for (const id of ['general', 'Team:Alpha', 'v1.2_beta-3', 'a']) assert.is(roomIdFor(id), id);
  assert.is(roomIdFor('  padded  '), 'padded');
});

test('spaces, accents and signs become a lower-case slug', () => {
  assert.is(roomIdFor('Café crème'), 'cafe-creme');
  assert.is(roomIdFor('  Straße & Œuvre!  '), 'strasse-oeuvre');
  assert.is(roomIdFor('Ångström / Zürich'), 'angstrom-zurich');
  assert.is(roomIdFor('team (west)'), 'team-west');
  assert.is(roomIdFor('🎉 party 🎉'), 'party');
});

test('other scripts keep their letters as code points, so different names stay apart', () => {
  assert.is(roomIdFor('東京'), '6771-4eac');
  assert.is.not(roomIdFor('東京'), roomIdFor('大阪'));
  assert.is(roomIdFor('Привет мир'), '43f-440-438-432-435-442-43c-438-440');
});

test('nothing to name a room by gives no id', () => {
  for (const typed of ['', '   ', '!!!', '🎉', '¿?']) assert.is(roomIdFor(typed), '', typed);
});

test('whatever is typed, the result is a valid id or nothing', () => {
  const samples = ['x'.repeat(64), 'é'.repeat(64), '東'.repeat(64), 'a b'.repeat(30), '.:-_', 'a\u0000b', 'tab\there', 'ＦＵＬＬ ｗｉｄｔｈ'];
  for (const typed of samples) {
    const id = roomIdFor(typed);
    assert.ok(id === '' || ConversationId.safeParse(id).success, `${JSON.stringify(typed)} → ${JSON.stringify(id)}`);
    assert.is(roomIdFor(typed), id, 'the same every time');
  }
  assert.is(roomIdFor('ＦＵＬＬ ｗｉｄｔｈ'), 'full-width');
});

test.run();

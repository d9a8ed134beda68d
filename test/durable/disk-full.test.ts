// The embedded store on a full disk (DATA_MAX_BYTES caps the database, and
// past it writes fail as they would on a full file system): a send that
// cannot be written is refused with the reason, a reply streaming meanwhile
// ends with it, nothing already accepted is lost, and the relay goes on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack } from '../helpers.js';

const BIG = 'x'.repeat(15_000);
// Far longer than filling the disk takes, however slow the machine: the reply is still streaming when the disk fills.
const LONG = Array.from({ length: 30_000 }, (_, i) => `w${i}`).join(' ');
let stack: Stack;
let dataDir: string;

test.before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'relay-full-'));
  stack = await startStack({
    env: { STORE: 'sqlite', DATA_DIR: dataDir, DATA_MAX_BYTES: String(1024 * 1024), MAX_TEXT_CHARS: '16000', TOKEN_QUOTA: '0' },
    plan: (req) => (req.messages.at(-1)?.content === 'stream' ? { text: LONG, tokenDelayMs: 2 } : { text: 'ok' }),
  });
});
test.after(async () => {
  await stack.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a full data directory: the send that does not fit is refused with the reason, the streaming reply ends with it, nothing accepted is lost', async () => {
  const streamer = await stack.connect();
  streamer.send({ type: 'send', conversationId: 'streaming', text: 'stream' });
  const start = await streamer.next('reply.start');

  const filler = await stack.connect();
  filler.send({ type: 'join', conversationId: 'filler' });
  await filler.next('joined');
  const accepted: string[] = [];
  let refusal: { code: string; message: string } | undefined;
  for (let i = 0; i < 200 && !refusal; i++) {
    filler.send({ type: 'send', ref: `f${i}`, conversationId: 'filler', text: `${i} ${BIG}`, reply: false });
    const answer = await filler.answerTo(`f${i}`);
    if (answer.type === 'error') refusal = answer;
    else if (answer.type === 'message') accepted.push(answer.message.id);
  }
  assert.ok(accepted.length > 10, `${accepted.length} messages fitted`);
  assert.is(refusal?.code, 'internal');
  assert.match(refusal!.message, /data directory is full/);

  const end = await streamer.next('reply.end', (e) => e.replyId === start.replyId);
  assert.is(end.finishReason, 'error');
  assert.match(end.error!.message, /data directory is full/);

  // Everything acknowledged is there, the refused message is not; the relay still answers.
  const reader = await stack.connect();
  reader.send({ type: 'join', conversationId: 'filler' });
  const joined = await reader.next('joined');
  assert.equal(joined.history.map((m) => m.id), accepted);
  reader.send({ type: 'ping', ref: 'alive' });
  assert.is((await reader.next('pong')).ref, 'alive');
});

test.run();

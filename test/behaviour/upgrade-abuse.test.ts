// Hostile upgrades and framing: the server answers them and stays responsive for everyone else.
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack();
});
test.after.each(async () => {
  await stack.close();
});

/** Write raw bytes to the server; resolve the first line it answers (or '' when it just closes). */
function raw(payload: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = connect(stack.relay.port, '127.0.0.1', () => socket.end(payload));
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
  });
}

function upgradeRequest(extraHeaders: string): string {
  return (
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`
  );
}

async function stillServes(): Promise<void> {
  const c = await stack.connect();
  c.send({ type: 'ping', ref: 'alive' });
  assert.is((await c.next('pong')).ref, 'alive');
}

test('an upgrade with 2,000 headers is refused; the server stays responsive', async () => {
  const headers = Array.from({ length: 2000 }, (_, i) => `X-Filler-${i}: ${'v'.repeat(20)}\r\n`).join('');
  const status = await raw(upgradeRequest(headers));
  assert.match(status, /^HTTP\/1\.1 4\d\d/);
  await stillServes();
});

test('a very long Sec-WebSocket-Protocol is refused; the server stays responsive', async () => {
  const status = await raw(upgradeRequest(`Sec-WebSocket-Protocol: ${'p,'.repeat(20_000)}p\r\n`));
  assert.match(status, /^HTTP\/1\.1 4\d\d/);
  await stillServes();
});

test('a garbage request line gets 400', async () => {
  assert.match(await raw('\x00\x01\x02 nonsense\r\n\r\n'), /^HTTP\/1\.1 400/);
  await stillServes();
});

/** A masked client frame (RFC 6455 5.2) with the given opcode and FIN bit. */
function frame(opcode: number, fin: boolean, payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  if (payload.length >= 126) throw new Error('small frames only');
  const head = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

test('a flood of one-byte fragments is reassembled up to the frame limit and then closed with 1009', async () => {
  const c = await stack.connect();
  const socket = (c.ws as unknown as { _socket: Socket })._socket;
  const text = JSON.stringify({ type: 'ping', ref: 'frag' });
  // One message in single-byte fragments: legal, slow for nobody.
  const parts = [...Buffer.from(text)].map((b, i, all) => frame(i === 0 ? 1 : 0, i === all.length - 1, Buffer.from([b])));
  socket.write(Buffer.concat(parts));
  assert.is((await c.next('pong')).ref, 'frag');
  // A message that never ends: fragments past MAX_FRAME_BYTES close the socket instead of growing a buffer.
  const endless = Buffer.concat(Array.from({ length: 70_000 / 100 }, (_, i) => frame(i === 0 ? 1 : 0, false, Buffer.alloc(100, 0x61))));
  socket.write(endless);
  assert.is((await c.closed).code, 1009);
  await stillServes();
});

test.run();

import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { eventually, startStack, TestClient, type Stack } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ env: { MAX_FRAME_BYTES: '1024' } });
});
test.after.each(async () => {
  await stack.close();
});

test('a binary frame closes the socket with 1003', async () => {
  const c = await stack.connect();
  c.sendRaw(Buffer.from('{"type":"ping"}'), true);
  assert.is((await c.closed).code, 1003);
});

test('a frame over MAX_FRAME_BYTES closes the socket with 1009', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'big', text: 'x'.repeat(2000) });
  assert.is((await c.closed).code, 1009);
});

test('invalid UTF-8 in a text frame closes the socket with 1007', async () => {
  const c = await stack.connect();
  c.sendRaw(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), false);
  assert.is((await c.closed).code, 1007);
});

test('limits are announced in welcome', async () => {
  const c = await stack.connect({ hello: false });
  c.send({ type: 'hello' });
  const w = await c.next('welcome');
  assert.is(w.limits.maxFrameBytes, 1024);
});

function get(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: stack.relay.port, path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

test('GET /healthz answers 200; unknown paths 404', async () => {
  assert.is(await get('/healthz'), 200);
  assert.is(await get('/nope'), 404);
});

test('an upgrade on a path other than /ws is refused', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${stack.relay.port}/other`);
  const status = await new Promise<number>((resolve) => {
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(-1));
  });
  assert.is(status, 404);
});

test('after the server closes, a socket is released on both sides', async () => {
  const c = await TestClient.connect(stack.url);
  assert.is(stack.relay.stats().sockets, 1);
  c.ws.close(1000);
  await c.closed;
  await eventually(() => stack.relay.stats().sockets === 0, 'the server released the socket');
});

test.run();

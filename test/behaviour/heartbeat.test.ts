import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { eventually, startStack, TestClient, type Stack } from '../helpers.js';

let stack: Stack;
test.before.each(async () => {
  stack = await startStack({ env: { PING_INTERVAL_MS: '40' } });
});
test.after.each(async () => {
  await stack.close();
});

test('a socket that misses two pings is terminated and cleaned up', async () => {
  // autoPong: false makes this client deaf to pings, like a peer behind a dead NAT mapping.
  const ws = new WebSocket(stack.url, { autoPong: false });
  // Counted from the start: a ping can arrive in the same read as the upgrade, before 'open' is handled.
  let pings = 0;
  ws.on('ping', () => pings++);
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'hello' }));
  ws.send(JSON.stringify({ type: 'join', conversationId: 'hb' }));
  const code = await closed;
  assert.is(code, 1006, 'terminated without a close frame');
  assert.ok(pings >= 2, `saw ${pings} pings first`);
  await eventually(() => stack.relay.stats().sockets === 0, 'socket released');
});

test('a socket that answers pings stays open across many intervals', async () => {
  const c = await TestClient.connect(stack.url);
  let pings = 0;
  c.ws.on('ping', () => pings++);
  await eventually(() => pings >= 6, 'six pings');
  assert.is(c.ws.readyState, WebSocket.OPEN);
  c.send({ type: 'ping', ref: 'still' });
  assert.is((await c.next('pong')).ref, 'still');
});

test.run();

// Who may open a socket at all: origin, per-IP limits, the global cap, and anonymous exposure.
import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { startStack, type Stack } from '../helpers.js';

let stack: Stack | undefined;
test.after.each(async () => {
  await stack?.close();
  stack = undefined;
});

/** Try an upgrade; resolve the HTTP status it was refused with, or 101 when it opened. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.once('error', () => resolve({ status: -1 }));
  });
}

test('with ALLOWED_ORIGINS, another Origin is refused with 403 before the socket exists', async () => {
  stack = await startStack({ env: { ALLOWED_ORIGINS: 'https://chat.example.com, https://app.example.com' } });
  assert.is((await upgrade(stack.url, { Origin: 'https://evil.example.net' })).status, 403);
  assert.is(stack.relay.stats().sockets, 0);
  const ok = await upgrade(stack.url, { Origin: 'https://app.example.com' });
  assert.is(ok.status, 101);
  ok.ws!.close();
  // Non-browser clients send no Origin; they are held to their token instead.
  const none = await upgrade(stack.url);
  assert.is(none.status, 101);
  none.ws!.close();
});

test('more sockets per IP than allowed: 429', async () => {
  stack = await startStack({ env: { MAX_CONNECTIONS_PER_IP: '3' } });
  const open: Array<{ status: number; ws?: WebSocket }> = [];
  for (let i = 0; i < 3; i++) open.push(await upgrade(stack.url));
  assert.equal(open.map((o) => o.status), [101, 101, 101]);
  assert.is((await upgrade(stack.url)).status, 429);
  // Closing one frees its place.
  open[0]!.ws!.close();
  await new Promise((r) => open[0]!.ws!.once('close', r));
  let status = 0;
  for (let i = 0; i < 50 && status !== 101; i++) {
    const again = await upgrade(stack.url);
    status = again.status;
    again.ws?.close();
    if (status !== 101) await new Promise((r) => setTimeout(r, 10));
  }
  assert.is(status, 101);
  for (const o of open) o.ws?.close();
});

test('connecting faster than the per-IP rate: 429', async () => {
  stack = await startStack({ env: { CONNECTIONS_PER_IP_PER_MINUTE: '5' } });
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) {
    const r = await upgrade(stack.url);
    statuses.push(r.status);
    r.ws?.close();
  }
  assert.equal(statuses, [101, 101, 101, 101, 101, 429, 429]);
});

test('TRUST_PROXY=true: the last X-Forwarded-For hop is the client address; false: the header is ignored', async () => {
  stack = await startStack({ env: { TRUST_PROXY: 'true', MAX_CONNECTIONS_PER_IP: '1' } });
  const via = (hops: string) => upgrade(stack!.url, { 'X-Forwarded-For': hops });
  const a = await via('1.1.1.1, 10.0.0.1');
  const b = await via('1.1.1.1, 10.0.0.2');
  assert.equal([a.status, b.status], [101, 101], 'two clients behind the proxy, one earlier hop in common');
  assert.is((await via('2.2.2.2, 10.0.0.1')).status, 429, 'the same last hop is the same client');
  a.ws!.close();
  b.ws!.close();
  await stack.close();

  stack = await startStack({ env: { TRUST_PROXY: 'false', MAX_CONNECTIONS_PER_IP: '1' } });
  const c = await via('10.0.0.1');
  assert.is(c.status, 101);
  assert.is((await via('10.0.0.2')).status, 429, 'the TCP peer counts, whatever the header says');
  c.ws!.close();
});

test('past the global connection cap: 503', async () => {
  stack = await startStack({ env: { MAX_CONNECTIONS: '2' } });
  const a = await upgrade(stack.url);
  const b = await upgrade(stack.url);
  assert.is((await upgrade(stack.url)).status, 503);
  a.ws!.close();
  b.ws!.close();
});

test('anonymous mode refuses a non-loopback address unless ALLOW_ANONYMOUS=true', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('../../server/main.ts', import.meta.url).pathname], {
    env: { PATH: process.env.PATH, HOST: '0.0.0.0', PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.is(code, 2);
  assert.match(out, /ALLOW_ANONYMOUS/);
});

test.run();

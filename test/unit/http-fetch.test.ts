// responseOrAbort: the SDK sleeps between retries without watching the
// reply's signal, so a cancelled reply must stop waiting for it at once, and
// a response that still arrives afterwards must not hold its connection.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nodeBody, nodeFetch, responseOrAbort } from '../../server/upstream/http-fetch.js';

/** A server whose responses start and never end. */
async function endlessServer(): Promise<{ url: string; close(): void }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(': open\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

test('a response before any abort is the result', async () => {
  const server = await endlessServer();
  try {
    const response = await responseOrAbort(nodeFetch(4)(server.url), new AbortController().signal);
    assert.is(response.status, 200);
    nodeBody(response)?.destroy();
  } finally {
    server.close();
  }
});

test('an abort ends the wait at once while the request is still pending', async () => {
  const controller = new AbortController();
  const waiting = responseOrAbort(new Promise<Response>(() => undefined), controller.signal);
  const reason = new Error('cancelled');
  controller.abort(reason);
  assert.is(await waiting.then(() => 'resolved', (err: unknown) => err), reason);
});

test('a response that arrives after the abort is closed unread', async () => {
  const server = await endlessServer();
  try {
    const controller = new AbortController();
    let deliver!: (response: Response) => void;
    const late = new Promise<Response>((resolve) => (deliver = resolve));
    const waiting = responseOrAbort(late, controller.signal).catch((err: unknown) => err);
    controller.abort(new Error('cancelled'));
    const response = await nodeFetch(4)(server.url);
    deliver(response);
    await late;
    assert.ok(nodeBody(response)?.destroyed, 'its body was destroyed');
    assert.instance(await waiting, Error);
  } finally {
    server.close();
  }
});

test.run();

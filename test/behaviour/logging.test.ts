// Logs carry ids, never secrets or content: no tokens (in hello or a query string), no message text, no reply tokens.
import { SignJWT } from 'jose';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, TestClient } from '../helpers.js';

const SECRET = 'logging-test-secret-logging-test-secret';

test('trace-level logs of a whole session contain ids but no token, URL query, message text or reply text', async () => {
  const lines: string[] = [];
  const stack = await startStack({
    env: { LOG_LEVEL: 'trace', AUTH_JWT_SECRET: SECRET },
    logTo: { write: (line: string) => void lines.push(line) },
    plan: () => ({ text: 'REPLY-CONTENT-XYZZY', errorAfterTokens: 1 }),
  });
  const token = await new SignJWT({ sub: 'logged-user' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));
  const c = await TestClient.connect(`${stack.url}?token=${token}`, { hello: false });
  c.send({ type: 'hello', token });
  await c.next('welcome');
  c.send({ type: 'send', conversationId: 'logged-room', text: 'USER-TEXT-PLUGH' });
  await c.next('reply.end');
  const bad = await TestClient.connect(stack.url, { hello: false });
  bad.send({ type: 'hello', token: `${token}tampered` });
  await bad.closed;
  c.kill();
  await stack.close();

  const all = lines.join('');
  assert.ok(lines.length > 3, 'something was logged');
  assert.ok(all.includes('logged-user') && all.includes('logged-room'), 'ids are logged');
  for (const secret of [token, 'USER-TEXT-PLUGH', 'REPLY-CONTENT', '?token=']) {
    assert.not.ok(all.includes(secret), `logs must not contain ${secret.slice(0, 16)}`);
  }
});

test.run();

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, TestClient, type Stack } from '../helpers.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

function token(claims: Record<string, unknown>, opts: { expSeconds?: number; signWith?: Uint8Array } = {}) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(now() + (opts.expSeconds ?? 600))
    .sign(opts.signWith ?? key);
}

let stack: Stack | undefined;
test.after.each(async () => {
  await stack?.close();
  stack = undefined;
});

async function hello(tokenValue: string | undefined): Promise<TestClient> {
  const c = await stack!.connect({ hello: false });
  c.send({ type: 'hello', ...(tokenValue !== undefined ? { token: tokenValue } : {}) });
  return c;
}

test('HS256: a valid token opens the session as the user it names', async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET } });
  const c = await hello(await token({ sub: 'u-1', name: 'Ada' }));
  const w = await c.next('welcome');
  assert.equal(w.user, { id: 'u-1', name: 'Ada' });
});

test('missing, forged, expired, alg:none and exp-less tokens close with 4401', async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET } });
  const unsigned = (claims: object) =>
    `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
  const bad = [
    undefined,
    'not.a.jwt',
    await token({ sub: 'u' }, { signWith: new TextEncoder().encode('some-other-secret-of-sufficient-length') }),
    await token({ sub: 'u' }, { expSeconds: -10 }),
    unsigned({ sub: 'u', exp: now() + 600 }),
    await new SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'HS256' }).sign(key),
    await token({ name: 'no subject' }),
  ];
  for (const t of bad) {
    const c = await hello(t);
    assert.is((await c.closed).code, 4401, `token ${String(t).slice(0, 20)}`);
    assert.not.ok(c.frames.some((f) => f.type === 'welcome'));
  }
});

test('claims past their caps close with 4401: sub or name over 128, over 256 patterns, a pattern over 128', async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET } });
  const x = (n: number) => 'x'.repeat(n);
  const patterns = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`);
  // (256 patterns of 128 chars would not fit in a hello's 8192-char token.)
  const atCaps = await hello(await token({ sub: x(128), name: x(128), conversations: [...patterns(255), x(128)] }));
  assert.is((await atCaps.next('welcome')).user.id, x(128), 'at the caps, the token is taken');
  const over = [{ sub: x(129) }, { sub: 'u', name: x(129) }, { sub: 'u', conversations: patterns(257) }, { sub: 'u', conversations: ['lobby', x(129)] }];
  for (const claims of over) {
    const c = await hello(await token(claims));
    const outcome = await Promise.race([c.closed.then((x) => x.code), c.next('welcome').then(() => 'welcome')]);
    assert.is(outcome, 4401, JSON.stringify(claims).slice(0, 60));
  }
});

test('RS256 with a PEM public key, ES256 with a JWKS file', async () => {
  const rsa = await generateKeyPair('RS256');
  stack = await startStack({ env: { AUTH_JWT_PUBLIC_KEY: await exportSPKI(rsa.publicKey) } });
  const ok = await hello(await new SignJWT({ sub: 'rs' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(rsa.privateKey));
  assert.is((await ok.next('welcome')).user.id, 'rs');
  // An HS256 token "signed" with the public key's text must not pass (algorithm confusion).
  const confused = await hello(await token({ sub: 'x' }, { signWith: new TextEncoder().encode(await exportSPKI(rsa.publicKey)) }));
  assert.is((await confused.closed).code, 4401);
  await stack.close();

  const ec = await generateKeyPair('ES256');
  const dir = mkdtempSync(join(tmpdir(), 'relay-jwks-'));
  const file = join(dir, 'jwks.json');
  writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), alg: 'ES256', kid: 'k1' }] }));
  stack = await startStack({ env: { AUTH_JWT_PUBLIC_KEY: file } });
  const es = await hello(await new SignJWT({ sub: 'es' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setExpirationTime('5m').sign(ec.privateKey));
  assert.is((await es.next('welcome')).user.id, 'es');
});

test('with AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE, tokens from elsewhere close with 4401', async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET, AUTH_JWT_ISSUER: 'https://id.example.com', AUTH_JWT_AUDIENCE: 'chat-relay' } });
  const signed = (iss: string, aud: string) =>
    new SignJWT({ sub: 'u-9' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(iss).setAudience(aud).setExpirationTime('5m').sign(key);
  const ok = await hello(await signed('https://id.example.com', 'chat-relay'));
  assert.is((await ok.next('welcome')).user.id, 'u-9');
  for (const t of [await signed('https://evil.example.net', 'chat-relay'), await signed('https://id.example.com', 'other-app'), await token({ sub: 'u-9' })]) {
    assert.is((await (await hello(t)).closed).code, 4401);
  }
});

test('a conversation the token does not allow: forbidden, nothing joined, nothing appended', async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET }, plan: () => ({ text: 'ok' }) });
  const c = await hello(await token({ sub: 'u-2', conversations: ['team-1:*', 'lobby'] }));
  await c.next('welcome');
  c.send({ type: 'join', conversationId: 'team-2:general', ref: 'j' });
  const e1 = await c.next('error');
  assert.is(e1.code, 'forbidden');
  assert.is(e1.ref, 'j');
  c.send({ type: 'send', conversationId: 'secret', text: 'let me in', ref: 's' });
  assert.is((await c.next('error')).code, 'forbidden');
  c.send({ type: 'join', conversationId: 'team-1:general' });
  assert.is((await c.next('joined')).conversationId, 'team-1:general');
  c.send({ type: 'join', conversationId: 'lobby' });
  await c.next('joined');
  assert.is(c.frames.filter((f) => f.type === 'joined').length, 2);
  assert.is(stack.model.requests.length, 0);
  // Nothing was appended to the forbidden conversation.
  const other = await hello(await token({ sub: 'u-3' }));
  await other.next('welcome');
  other.send({ type: 'join', conversationId: 'secret' });
  assert.equal((await other.next('joined')).history, []);
});

test('a token that expires mid-session closes with 4401; a fresh one sent in time keeps it open', async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET } });
  const expiring = await hello(await token({ sub: 'u-4' }, { expSeconds: 3 }));
  await expiring.next('welcome');
  const refreshed = await hello(await token({ sub: 'u-5' }, { expSeconds: 3 }));
  await refreshed.next('welcome');
  refreshed.send({ type: 'auth', token: await token({ sub: 'u-5' }, { expSeconds: 600 }), ref: 'a' });
  const authed = await refreshed.next('authed');
  assert.is(authed.ref, 'a');
  assert.ok(authed.expiresAt! > Date.now() + 60_000);

  assert.is((await expiring.closed).code, 4401);
  refreshed.send({ type: 'ping', ref: 'still-here' });
  assert.is((await refreshed.next('pong')).ref, 'still-here');
});

test("when a user's token expires mid-reply, the reply stops then (the upstream is aborted), not after the grace period", async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET, REPLY_GRACE_MS: '600000' }, plan: () => ({ text: 'never ends', stallAfterTokens: 1 }) });
  const asker = await hello(await token({ sub: 'u-7' }, { expSeconds: 3 }));
  await asker.next('welcome');
  const watcher = await hello(await token({ sub: 'u-8' }, { expSeconds: 600 }));
  await watcher.next('welcome');
  watcher.send({ type: 'join', conversationId: 'billed' });
  await watcher.next('joined');
  asker.send({ type: 'send', conversationId: 'billed', text: 'go on forever' });
  await watcher.next('reply.delta');
  assert.is((await asker.closed).code, 4401);
  const end = await watcher.next('reply.end');
  assert.is(end.finishReason, 'cancelled');
  const req = stack.model.requests.at(-1)!;
  await req.closed;
  assert.ok(req.aborted);
});

test('refreshing with a token for another user closes with 4401', async () => {
  stack = await startStack({ env: { AUTH_JWT_SECRET: SECRET } });
  const c = await hello(await token({ sub: 'u-6' }));
  await c.next('welcome');
  c.send({ type: 'auth', token: await token({ sub: 'someone-else' }) });
  assert.is((await c.closed).code, 4401);
});

test.run();

// Attachments: files uploaded over HTTP (bounded, typed from their bytes,
// bound to their uploader), carried by a send, shown to each dialect's model
// in its own content parts, and served back only to the conversation's members.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { RelayClient, SendError } from '../../client/index.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LocalModel } from '../../demo/localmodel.js';
import type { Attachment } from '../../shared/protocol.js';
import { eventually, replyText, startStack, TestClient, type Stack, writeModelsFile } from '../helpers.js';

const SECRET = 'attachments-test-secret-long-enough-for-hs256';
const fixture = (name: string) => readFileSync(new URL(`../fixtures/attachments/${name}`, import.meta.url));
const PNG = fixture('pixels.png');
const PDF = fixture('two-pages.pdf');
const TEXT = fixture('notes.txt');
/** A documented request of each provider: what the relay sends must have the same shape. */
const documented = (dialect: string) => JSON.parse(readFileSync(new URL(`../fixtures/requests/${dialect}.json`, import.meta.url), 'utf8')) as { input?: Array<{ content: unknown }>; messages?: Array<{ content: unknown }> };

/** Keys all the way down, with strings reduced to what they are (a data URL of some type, base64, or text). */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)]));
  if (typeof value !== 'string') return typeof value;
  const dataUrl = /^data:(image|application)\/[\w.+-]+;base64,[A-Za-z0-9+/=]+$/.exec(value);
  if (dataUrl) return `data-url:${dataUrl[1]}`;
  return /^[A-Za-z0-9+/]{4,}={0,2}$/.test(value) && value.length % 4 === 0 ? 'base64' : 'string';
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex').slice(0, 12);

function token(sub: string, conversations?: string[]): Promise<string> {
  return new SignJWT({ ...(conversations ? { conversations } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(SECRET));
}

function modelsFile(model: LocalModel): string {
  const route = (dialect: string, extra = {}) => ({ dialect, baseURL: model.baseURL, upstreamModel: `up-${dialect}`, ...extra });
  const table = {
    default: 'chat',
    models: { chat: route('chat'), responses: route('responses'), anthropic: route('anthropic'), 'text-only': route('chat', { attachments: ['text'] }) },
  };
  return writeModelsFile(table);
}

let stack: Stack;
test.before(async () => {
  stack = await startStack({
    env: (model) => ({ AUTH_JWT_SECRET: SECRET, MODELS_FILE: modelsFile(model), MAX_ATTACHMENT_BYTES: '8192', ATTACHMENT_USER_QUOTA_BYTES: '6000' }),
  });
});
test.after(async () => {
  await stack.close();
});

const url = (s: Stack, path: string) => `http://127.0.0.1:${s.relay.port}${path}`;

function upload(s: Stack, body: Buffer, opts: { token?: string; type?: string; name?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': opts.type ?? 'application/octet-stream' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  return fetch(url(s, `/attachments${opts.name ? `?name=${encodeURIComponent(opts.name)}` : ''}`), { method: 'POST', body: new Uint8Array(body), headers });
}

async function uploaded(s: Stack, body: Buffer, opts: { token: string; type?: string; name?: string }): Promise<Attachment> {
  const res = await upload(s, body, opts);
  assert.is(res.status, 201, await res.clone().text());
  return (await res.json()) as Attachment;
}

const download = (s: Stack, id: string, token?: string) => fetch(url(s, `/attachments/${id}`), token ? { headers: { authorization: `Bearer ${token}` } } : {});

async function member(s: Stack, sub: string, conversationId: string, conversations?: string[]): Promise<TestClient> {
  const c = await s.connect({ hello: false });
  c.send({ type: 'hello', token: await token(sub, conversations) });
  await c.next('welcome');
  c.send({ type: 'join', conversationId });
  await c.next('joined', (f) => f.conversationId === conversationId);
  return c;
}

test('an image sent with a message reaches the model as an image, and the demo model says what it saw', async () => {
  const ann = await token('ann');
  const image = await uploaded(stack, PNG, { token: ann, type: 'image/png', name: 'pixels.png' });
  assert.equal(image, { id: image.id, mediaType: 'image/png', bytes: PNG.length, name: 'pixels.png' });
  const c = await member(stack, 'ann', 'att-1');
  const welcome = c.frames.find((f) => f.type === 'welcome');
  assert.equal(welcome?.type === 'welcome' && [welcome.limits.maxAttachmentBytes, welcome.limits.attachmentTypes], [
    8192,
    ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'application/pdf', 'text/plain'],
  ]);
  c.send({ type: 'send', ref: 's', conversationId: 'att-1', text: 'what is in this picture?', attachments: [image.id] });
  const message = await c.next('message', (f) => f.ref === 's');
  assert.equal(message.message.attachments, [image]);
  const end = await c.next('reply.end', (f) => f.replyId === message.replyId);
  assert.is(end.finishReason, 'stop');
  const text = replyText(c.frames, message.replyId);
  assert.ok(text.includes(`1. a 3×2 PNG image (${PNG.length} bytes, sha256 ${sha(PNG)})`), text);
  // The chat dialect's own form: the text, then the image as a data URL.
  const sent = stack.model.requests.at(-1)!;
  const body = sent.body as { messages: Array<{ role: string; content: unknown }> };
  assert.equal(body.messages.at(-1)!.content, [
    { type: 'text', text: 'what is in this picture?' },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } },
  ]);
});

test('each dialect gets images and PDFs in its own content parts, and text files inline', async () => {
  const bo = await token('bo');
  const image = await uploaded(stack, PNG, { token: bo, type: 'image/png', name: 'pixels.png' });
  const pdf = await uploaded(stack, PDF, { token: bo, type: 'application/pdf', name: 'two-pages.pdf' });
  const notes = await uploaded(stack, TEXT, { token: bo, type: 'text/plain; charset=utf-8', name: 'notes.txt' });
  const c = await member(stack, 'bo', 'att-dialects');
  const png64 = PNG.toString('base64');
  const pdf64 = PDF.toString('base64');
  const expected: Record<string, unknown> = {
    chat: [
      { type: 'text', text: `see these\n\n[file notes.txt]\n${TEXT}\n[end of notes.txt]` },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${png64}` } },
      { type: 'file', file: { filename: 'two-pages.pdf', file_data: `data:application/pdf;base64,${pdf64}` } },
    ],
    responses: [
      { type: 'input_text', text: `see these\n\n[file notes.txt]\n${TEXT}\n[end of notes.txt]` },
      { type: 'input_image', image_url: `data:image/png;base64,${png64}`, detail: 'auto' },
      { type: 'input_file', filename: 'two-pages.pdf', file_data: `data:application/pdf;base64,${pdf64}` },
    ],
    anthropic: [
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png64 } },
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: pdf64 }, title: 'two-pages.pdf' },
      { type: 'text', text: `see these\n\n[file notes.txt]\n${TEXT}\n[end of notes.txt]` },
    ],
  };
  for (const model of ['chat', 'responses', 'anthropic']) {
    c.send({ type: 'send', ref: model, conversationId: 'att-dialects', text: 'see these', attachments: [image.id, pdf.id, notes.id], options: { model } });
    const message = await c.next('message', (f) => f.ref === model);
    await c.next('reply.end', (f) => f.replyId === message.replyId);
    const request = stack.model.requests.at(-1)!;
    const body = request.body as { input?: Array<{ content: unknown }>; messages?: Array<{ content: unknown }> };
    const last = (body.input ?? body.messages)!.at(-1)!;
    assert.equal(last.content, expected[model], model);
    const theirs = documented(model);
    assert.equal(shape(last.content), shape((theirs.input ?? theirs.messages)!.at(-1)!.content), `${model}: the provider's documented shape`);
    const text = replyText(c.frames, message.replyId);
    assert.ok(text.includes('I received 2 attachments'), `${model}: ${text}`);
    assert.ok(text.includes(`two-pages.pdf: a PDF document of 2 pages (${PDF.length} bytes, sha256 ${sha(PDF)})`), `${model}: ${text}`);
  }
});

test('uploads that are too large, of a forbidden type, lying about their type, or unauthenticated are refused', async () => {
  const cy = await token('cy');
  const big = await upload(stack, Buffer.alloc(9000, 'a'), { token: cy, type: 'text/plain' });
  assert.is(big.status, 413);
  const zip = Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(64, 1)]);
  const forbidden = await upload(stack, zip, { token: cy, type: 'application/zip' });
  assert.is(forbidden.status, 415);
  assert.is(((await forbidden.json()) as { error: { code: string } }).error.code, 'unsupported_attachment');
  const lying = await upload(stack, PDF, { token: cy, type: 'image/png' });
  assert.is(lying.status, 415);
  assert.match(((await lying.json()) as { error: { message: string } }).error.message, 'application/pdf');
  const binary = await upload(stack, Buffer.from([0, 1, 2, 3, 4, 5]), { token: cy, type: 'text/plain' });
  assert.is(binary.status, 415);
  const anonymous = await upload(stack, PNG, { type: 'image/png' });
  assert.is(anonymous.status, 401);
  const forged = await upload(stack, PNG, { token: 'not-a-token', type: 'image/png' });
  assert.is(forged.status, 401);
  const empty = await upload(stack, Buffer.alloc(0), { token: cy, type: 'text/plain' });
  assert.is(empty.status, 400);
  // Streamed without a length: refused before anything is read.
  const unsized = await fetch(url(stack, '/attachments'), {
    method: 'POST',
    headers: { authorization: `Bearer ${cy}`, 'content-type': 'text/plain' },
    body: new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('hello')), c.close()) }),
    duplex: 'half',
  } as RequestInit);
  assert.is(unsized.status, 411);
});

test('a file name is shown, never used as a path: control characters and slashes are replaced, and it is cut at 255 characters', async () => {
  const token_ = await token('nia');
  const odd = await uploaded(stack, TEXT, { token: token_, type: 'text/plain', name: '../etc\\passwd\u0001' });
  assert.is(odd.name, '.._etc_passwd_');
  const long = await uploaded(stack, TEXT, { token: token_, type: 'text/plain', name: 'n'.repeat(300) });
  assert.is(long.name?.length, 255);
});

test('a user holds attachments up to their byte quota', async () => {
  const di = await token('di');
  await uploaded(stack, Buffer.alloc(4000, 'x'), { token: di, type: 'text/plain' });
  const over = await upload(stack, Buffer.alloc(4000, 'y'), { token: di, type: 'text/plain' });
  assert.is(over.status, 429);
  assert.is(((await over.json()) as { error: { code: string } }).error.code, 'quota_exceeded');
  // Another user's quota is their own.
  await uploaded(stack, Buffer.alloc(4000, 'z'), { token: await token('di2'), type: 'text/plain' });
});

test("another user's attachment cannot be sent, and a model that takes no images refuses them; nothing is appended", async () => {
  const image = await uploaded(stack, PNG, { token: await token('ed'), type: 'image/png' });
  const c = await member(stack, 'fay', 'att-refused');
  c.send({ type: 'send', ref: 'theirs', conversationId: 'att-refused', text: 'look', attachments: [image.id] });
  const theirs = await c.answerTo('theirs');
  assert.is(theirs.type === 'error' && theirs.code, 'forbidden');
  c.send({ type: 'send', ref: 'missing', conversationId: 'att-refused', text: 'look', attachments: ['no-such-file'] });
  const missing = await c.answerTo('missing');
  assert.is(missing.type === 'error' && missing.code, 'not_found');
  const mine = await uploaded(stack, PNG, { token: await token('fay'), type: 'image/png' });
  c.send({ type: 'send', ref: 'text-only', conversationId: 'att-refused', text: 'look', attachments: [mine.id], options: { model: 'text-only' } });
  const refused = await c.answerTo('text-only');
  assert.is(refused.type === 'error' && refused.code, 'unsupported_attachment');
  const late = await member(stack, 'fay', 'att-refused');
  const joined = late.frames.find((f) => f.type === 'joined');
  assert.equal(joined?.type === 'joined' && joined.history, []);
});

test('an attachment is served to members of a conversation that carries it, and to nobody else', async () => {
  const gus = await token('gus', ['team-*']);
  const image = await uploaded(stack, PNG, { token: gus, type: 'image/png', name: 'pixels.png' });
  const unsent = await uploaded(stack, TEXT, { token: gus, type: 'text/plain', name: 'draft.txt' });
  const c = await member(stack, 'gus', 'team-att', ['team-*']);
  c.send({ type: 'send', ref: 's', conversationId: 'team-att', text: 'here', attachments: [image.id], reply: false });
  await c.next('message', (f) => f.ref === 's');

  const teammate = await token('hal', ['team-*']);
  const got = await download(stack, image.id, teammate);
  assert.is(got.status, 200);
  assert.is(got.headers.get('content-type'), 'image/png');
  assert.is(got.headers.get('x-content-type-options'), 'nosniff');
  assert.match(got.headers.get('content-disposition') ?? '', "filename*=UTF-8''pixels.png");
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(PNG));

  // A late joiner sees the attachment in history.
  const late = await member(stack, 'hal', 'team-att', ['team-*']);
  const joined = late.frames.find((f) => f.type === 'joined');
  assert.equal(joined?.type === 'joined' && joined.history[0]?.attachments, [image]);

  const outsider = await token('ivy', ['other-*']);
  assert.is((await download(stack, image.id, outsider)).status, 403);
  assert.is((await download(stack, image.id)).status, 401);
  // Never sent: only its uploader may fetch it.
  assert.is((await download(stack, unsent.id, teammate)).status, 403);
  assert.is((await download(stack, unsent.id, gus)).status, 200);
  assert.is((await download(stack, 'no-such-file', gus)).status, 404);
});

test('anonymous mode: the session token from welcome uploads as the same user, and brings them back on reconnect', async () => {
  const anon = await startStack();
  try {
    const c = await anon.connect();
    const welcome = c.frames.find((f) => f.type === 'welcome');
    assert.ok(welcome?.type === 'welcome' && welcome.sessionToken);
    const sessionToken = welcome.type === 'welcome' ? welcome.sessionToken! : '';
    const image = await uploaded(anon, PNG, { token: sessionToken, type: 'image/png' });
    c.send({ type: 'join', conversationId: 'anon-att' });
    await c.next('joined');
    c.send({ type: 'send', ref: 's', conversationId: 'anon-att', text: 'mine', attachments: [image.id] });
    const message = await c.next('message', (f) => f.ref === 's');
    await c.next('reply.end', (f) => f.replyId === message.replyId);
    assert.ok(replyText(c.frames, message.replyId).includes('a 3×2 PNG image'));

    const again = await anon.connect({ hello: false });
    again.send({ type: 'hello', token: sessionToken });
    const back = await again.next('welcome');
    assert.equal(back.user, welcome.type === 'welcome' ? welcome.user : undefined);
    // Anyone else is someone new, and may not send that file.
    const other = await anon.connect();
    const stranger = other.frames.find((f) => f.type === 'welcome');
    assert.is.not(stranger?.type === 'welcome' && stranger.user.id, back.user.id);
    other.send({ type: 'join', conversationId: 'anon-att' });
    await other.next('joined');
    other.send({ type: 'send', ref: 'x', conversationId: 'anon-att', text: 'theirs', attachments: [image.id] });
    const refused = await other.answerTo('x');
    assert.is(refused.type === 'error' && refused.code, 'forbidden');
  } finally {
    await anon.close();
  }
});

test('the client library uploads, sends and fetches attachments, and keeps its anonymous user across a reconnect', async () => {
  const anon = await startStack();
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      sockets.push(this);
    }
  }
  const client = new RelayClient({ url: anon.url, WebSocket: Tracked, backoff: { initialMs: 10, maxMs: 50 } });
  try {
    const welcome = await client.connect();
    const image = await client.uploadAttachment(new Blob([new Uint8Array(PNG)], { type: 'image/png' }), { name: 'pixels.png' });
    assert.equal(image, { id: image.id, mediaType: 'image/png', bytes: PNG.length, name: 'pixels.png' });
    const c = client.conversation('lib-att');
    const reply = await c.ask('what is it?', { attachments: [image.id] });
    const result = await reply.result;
    assert.ok(result.text.includes('1. a 3×2 PNG image'), result.text);
    const blob = await client.fetchAttachment(image.id);
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(PNG));
    const refused = await client.uploadAttachment(new Blob([new Uint8Array([0, 1, 2])], { type: 'text/plain' })).catch((e: unknown) => e);
    assert.ok(refused instanceof SendError && refused.code === 'unsupported_attachment', String(refused));
    // The socket drops; the client comes back as the same anonymous user.
    const back = new Promise<string>((resolve) => client.once('welcome', (w) => resolve(w.user.id)));
    sockets.at(-1)!.terminate();
    assert.is(await back, welcome.user.id);
  } finally {
    client.close();
    await anon.close();
  }
});

test('an expired attachment is gone for downloads, and the model is told it is no longer there', async () => {
  const short = await startStack({ env: { AUTH_JWT_SECRET: SECRET, ATTACHMENT_TTL_MS: '4000' } });
  try {
    const jo = await token('jo');
    const image = await uploaded(short, PNG, { token: jo, type: 'image/png', name: 'pixels.png' });
    const c = await member(short, 'jo', 'att-expiry');
    c.send({ type: 'send', ref: 'a', conversationId: 'att-expiry', text: 'first', attachments: [image.id], reply: false });
    await c.next('message', (f) => f.ref === 'a');
    await eventually(async () => (await download(short, image.id, jo)).status === 404, 'the attachment to expire', 10_000);
    c.send({ type: 'send', ref: 'b', conversationId: 'att-expiry', text: 'and now?' });
    const message = await c.next('message', (f) => f.ref === 'b');
    await c.next('reply.end', (f) => f.replyId === message.replyId);
    const turns = short.model.requests.at(-1)!.messages.filter((m) => m.role === 'user');
    assert.is(turns[0]!.content, 'first\n\n[attachment pixels.png is no longer available]');
    assert.is(turns[0]!.files, undefined);
  } finally {
    await short.close();
  }
});

test.run();

// Property-based fuzzing of the client → server edge, against one real stack:
// arbitrary text, arbitrary JSON, and frame-shaped objects with mutated fields
// and hostile keys. Whatever arrives, the socket stays open, every frame gets
// either `error bad_frame` or the answer its type calls for (checked against
// an oracle), every server frame passes the schema, and nothing leaks into
// Object.prototype. Each fuzz frame is followed by a `ping` with a unique ref:
// frames of one socket are handled in order, so everything that answers the
// fuzz frame arrives before that `pong` (as it does on one node; with
// TEST_REDIS_URL the sender's own `message` can arrive after it, which this
// file reports as a failure).
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientFrame, type ServerFrame } from '../../shared/protocol.js';
import { eventually, sleep, startStack, type Stack, type TestClient } from '../helpers.js';

// FUZZ_SEED=<n> explores another corner; the default keeps the suite deterministic.
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_f022);
const MAX_FRAME_BYTES = 65_536; // the default; fuzz frames stay under it (a larger one closes with 1009 by design)
const MAX_TEXT_CHARS = 16_000; // the default maxTextChars
const SYNC = '\u0001sync:'; // prefix of the synchronising ping refs; generated refs never start with it

let stack: Stack;
let client: TestClient;
let syncCounter = 0;
let reconnects = 0;
/** clientMessageId → text, per conversation: an idempotent retry answers with the original message. */
const sentTexts = new Map<string, string>();
/** How often each outcome came up, so a generator that stopped reaching valid frames fails loudly. */
const coverage = new Map<string, number>();
const count = (what: string) => coverage.set(what, (coverage.get(what) ?? 0) + 1);
const prototypeKeys = () =>
  [Object.prototype, Array.prototype, Function.prototype, String.prototype, Number.prototype].map((p) =>
    Object.getOwnPropertyNames(p).sort().join(','),
  );
const keysBefore = prototypeKeys();

test.before(async () => {
  stack = await startStack({
    // Far above what this file sends: the fuzz must not be cut short by the flood guard.
    env: { FRAME_RATE_PER_SEC: '100000', FRAME_BURST: '100000', FRAME_ABUSE_STRIKES: '100000' },
    plan: () => ({ text: 'ok' }),
  });
  client = await stack.connect();
});
test.after(async () => {
  await stack.close();
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Frames the server sends *because of* a client frame; reply events, presence and typing come on their own. */
const ANSWER_TYPES = new Set<ServerFrame['type']>(['welcome', 'joined', 'left', 'pong', 'authed', 'error', 'message']);

/** What the server receives: ws encodes the string as UTF-8, so a lone surrogate arrives as U+FFFD. */
const onTheWire = (raw: string) => Buffer.from(raw, 'utf8').toString('utf8');

/** Throws, naming the frame, unless `answers` is exactly what the server must say to `raw` on an open session. */
function checkAnswer(raw: string, answers: ServerFrame[]): void {
  const wire = onTheWire(raw);
  const show = () => `frame ${JSON.stringify(wire.length > 300 ? `${wire.slice(0, 300)}…` : wire)} got ${JSON.stringify(answers).slice(0, 600)}`;
  const fail = (why: string): never => {
    throw new Error(`${why}: ${show()}`);
  };
  let json: unknown;
  let parsedOk = true;
  try {
    json = JSON.parse(wire);
  } catch {
    parsedOk = false;
  }
  const parsed = parsedOk ? ClientFrame.safeParse(json) : undefined;
  if (!parsed?.success) {
    // The ref is echoed when it can be read: an object whose type (if any) is a string and whose ref is a
    // string of at most 64 characters (zod counts code points, so 64 emoji are fine).
    let ref: string | undefined;
    if (isObject(json)) {
      const { type, ref: r } = json;
      if ((type === undefined || typeof type === 'string') && typeof r === 'string' && [...r].length <= 64) ref = r;
    }
    count('malformed');
    if (answers.length !== 1) fail('a malformed frame must get exactly one answer');
    const err = answers[0]!;
    if (err.type !== 'error' || err.code !== 'bad_frame') return fail('a malformed frame must get error bad_frame');
    if (err.ref !== ref) fail(`bad_frame must carry ref ${JSON.stringify(ref)}`);
    return;
  }
  const frame = parsed.data;
  count(`valid ${frame.type}`);
  for (const a of answers) count(`answer ${a.type}${a.type === 'error' ? ` ${a.code}` : ''}`);
  const conversationId = 'conversationId' in frame ? frame.conversationId : undefined;
  const only = (what: string, ok: (f: ServerFrame) => boolean) => {
    if (answers.length !== 1 || !ok(answers[0]!)) fail(`expected ${what}`);
  };
  const isError = (f: ServerFrame, codes: string[]) =>
    f.type === 'error' && codes.includes(f.code) && f.ref === frame.ref && f.conversationId === conversationId;
  switch (frame.type) {
    case 'hello':
      return only('bad_frame for a second hello', (f) => isError(f, ['bad_frame']));
    case 'ping':
      return only('pong', (f) => f.type === 'pong' && f.ref === frame.ref);
    case 'auth':
      return only('authed', (f) => f.type === 'authed' && f.ref === frame.ref);
    case 'leave':
      return only('left', (f) => f.type === 'left' && f.ref === frame.ref && f.conversationId === conversationId);
    case 'join': {
      // A join with `since` replays the events after it (messages among them), with no ref.
      const [first, ...replayed] = answers;
      const head = first?.type === 'joined' ? first.seq : -1;
      const replay = replayed.every((f) => f.type === 'message' && f.ref === undefined && f.conversationId === conversationId && f.seq <= head);
      if (first?.type === 'joined' && first.ref === frame.ref && first.conversationId === conversationId && replay) {
        if (replayed.length && (frame.since === undefined || first.reset)) fail('only a covered since replays');
        return;
      }
      return only('joined, or rate_limited past maxConversations', (f) => isError(f, ['rate_limited']));
    }
    case 'cancel':
    case 'typing':
      if (answers.length === 0) return;
      return only('nothing, or not_found', (f) => isError(f, ['not_found']));
    case 'send': {
      if (frame.text.length > MAX_TEXT_CHARS) return only('bad_frame for text over maxTextChars', (f) => isError(f, ['bad_frame']));
      let rest = answers;
      // A send to a conversation the socket is not in joins it first.
      if (rest[0]?.type === 'joined') {
        if (rest[0].ref !== frame.ref || rest[0].conversationId !== conversationId) fail('the auto-join answers with the send\'s ref');
        rest = rest.slice(1);
      }
      if (rest.length !== 1) fail('a send gets one message or one error (after an optional joined)');
      const answer = rest[0]!;
      if (answer.type === 'error') {
        // Refused sends: over the socket's conversations, the user's replies, the queue, or a model not allowed.
        if (!isError(answer, ['rate_limited', 'busy', 'forbidden', 'quota_exceeded'])) fail('unexpected error for a valid send');
        if (answer.code === 'forbidden' && (frame.reply === false || !frame.options?.model)) fail('forbidden only for a model');
        return;
      }
      if (answer.type !== 'message') return fail('expected a message');
      if (answer.conversationId !== conversationId || answer.ref !== frame.ref) fail('the sender\'s message carries its ref');
      const key = frame.clientMessageId === undefined ? undefined : `${conversationId}\u0000${frame.clientMessageId}`;
      const earlier = key === undefined ? undefined : sentTexts.get(key);
      const text = answer.message.text;
      if (text !== frame.text && text !== earlier) fail('the message carries the sent text (or the original of a retried clientMessageId)');
      if (answer.message.clientMessageId !== frame.clientMessageId) fail('clientMessageId echoed');
      if (text === frame.text && earlier === undefined && (answer.replyId !== undefined) !== (frame.reply ?? true)) {
        fail('replyId present exactly when a reply was asked for');
      }
      if (key !== undefined) sentTexts.set(key, text);
      return;
    }
  }
}

/** The session to fuzz; a new one if the last run closed it (that run has failed already). */
async function session(): Promise<TestClient> {
  if (client.ws.readyState !== client.ws.OPEN) {
    reconnects++;
    client.kill();
    client = await stack.connect();
  }
  return client;
}

/** Send one raw frame and a synchronising ping; check the answer-type frames the server sent in between. */
async function exchange(raw: string): Promise<void> {
  const c = await session();
  const from = c.frames.length;
  const invalidBefore = c.invalid.length;
  const ref = `${SYNC}${++syncCounter}`;
  c.sendRaw(raw);
  c.send({ type: 'ping', ref });
  const closed = c.closed.then(({ code, reason }) => {
    throw new Error(`the server closed the socket (${code} ${reason}) after ${JSON.stringify(onTheWire(raw).slice(0, 300))}`);
  });
  const pong = await Promise.race([c.waitFor('pong', (p) => p.ref === ref, 5_000), closed]);
  const window = c.frames.slice(from, c.frames.indexOf(pong));
  if (c.invalid.length !== invalidBefore) throw new Error(`a server frame failed the schema: ${JSON.stringify(c.invalid.slice(invalidBefore))}`);
  const internal = window.find((f) => f.type === 'error' && f.code === 'internal');
  if (internal) throw new Error(`internal error for ${JSON.stringify(raw.slice(0, 300))}: ${JSON.stringify(internal)}`);
  try {
    checkAnswer(raw, window.filter((f) => ANSWER_TYPES.has(f.type)));
  } catch (err) {
    // Say so when the answer did come, only after the pong of the frame that followed it.
    await sleep(300);
    const late = c.frames.slice(c.frames.indexOf(pong) + 1).filter((f) => ANSWER_TYPES.has(f.type) && f.type !== 'pong');
    if (late.length) (err as Error).message += `; after the pong of the next frame came: ${JSON.stringify(late).slice(0, 400)}`;
    throw err;
  }
}

/** Property runs whose frame would exceed maxFrameBytes are skipped: that closes with 1009, by contract. */
async function fuzz(raw: string): Promise<void> {
  fc.pre(Buffer.byteLength(raw, 'utf8') <= MAX_FRAME_BYTES);
  await exchange(raw);
}

const params = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns, maxSkipsPerRun: 10, includeErrorInReport: true });

// ------------------------------------------------------------------ arbitraries

/** Any UTF-16 code unit, lone surrogates included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u));
const anyString = (maxLength = 40) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    fc.string({ unit: codeUnit, maxLength }),
  );
/** Strings that look a bit like frames, to get past the first JSON.parse more often. */
const jsonish = fc
  .array(
    fc.oneof(
      fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', 'null', 'true', '-0', '1e400', '"type"', '"ping"', '"join"', '"send"', '"ref"', '"__proto__"', '\\u0000', '\\ud800'),
      anyString(6),
    ),
    { maxLength: 20 },
  )
  .map((parts) => parts.join(''));

const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, -0.5, 1.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, Number.MIN_VALUE, '', '__proto__', 'constructor'),
  fc.double(),
  fc.integer(),
  anyString(20),
  fc.jsonValue({ maxDepth: 2 }),
);

// Well-formed values, edges included (each of these passes the schema).
const goodConversationId = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('fz-a', 'fz-b', 'fz-c') },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(128), ':', '.', '-_-') },
);
const goodRef = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.string({ unit: codeUnit, maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom('', 'r'.repeat(64), '\u{1F600}'.repeat(64), '\uD800'.repeat(64), '__proto__') },
).filter((s) => !s.startsWith(SYNC));
const goodText = fc.oneof(
  { weight: 6, arbitrary: anyString(40).filter((s) => s.length > 0) },
  // Around maxTextChars (16 000, enforced by the server) and the schema's cap (32 000), inside maxFrameBytes.
  { weight: 1, arbitrary: fc.integer({ min: MAX_TEXT_CHARS - 2, max: MAX_TEXT_CHARS + 2 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 31_998, max: 32_000 }).map((n) => 'y'.repeat(n)) },
);
const goodId = fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), fc.constantFrom('i'.repeat(128), '__proto__', 'constructor'));
const goodSeq = fc.oneof(fc.nat(), fc.constantFrom(0, 2 ** 31, Number.MAX_SAFE_INTEGER));
const goodToken = fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.constantFrom('t'.repeat(8192), 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'));
/** Valid sends with a reply start an upstream request: keep them rare. */
const goodReply = fc.oneof({ weight: 10, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
const goodOptions = fc.record(
  {
    model: fc.oneof(fc.constant('test-model'), fc.string({ minLength: 1, maxLength: 10 }), fc.constant('m'.repeat(128))),
    temperature: fc.oneof(fc.double({ min: 0, max: 2, noNaN: true }), fc.constantFrom(0, 2)),
    maxTokens: fc.oneof(fc.integer({ min: 1, max: 131_072 }), fc.constantFrom(1, 131_072)),
  },
  { requiredKeys: [] },
);
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });

/** Frames that pass the schema, one record per client frame type. */
const validFrame: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ type: fc.constant('hello'), ref: opt(goodRef), token: opt(goodToken) }),
  fc.record({ type: fc.constant('join'), ref: opt(goodRef), conversationId: goodConversationId, since: opt(goodSeq) }),
  fc.record({ type: fc.constant('leave'), ref: opt(goodRef), conversationId: goodConversationId }),
  fc.record({
    type: fc.constant('send'),
    ref: opt(goodRef),
    conversationId: goodConversationId,
    text: goodText,
    clientMessageId: opt(goodId),
    reply: goodReply,
    options: opt(goodOptions),
  }),
  fc.record({ type: fc.constant('cancel'), ref: opt(goodRef), conversationId: goodConversationId, replyId: opt(goodId) }),
  fc.record({ type: fc.constant('typing'), ref: opt(goodRef), conversationId: goodConversationId }),
  fc.record({ type: fc.constant('ping'), ref: opt(goodRef) }),
  fc.record({ type: fc.constant('auth'), ref: opt(goodRef), token: goodToken }),
);

const FRAME_TYPES = ['hello', 'join', 'leave', 'send', 'cancel', 'typing', 'ping', 'auth'] as const;
const FIELDS = ['type', 'ref', 'conversationId', 'since', 'text', 'clientMessageId', 'reply', 'options', 'replyId', 'token'] as const;
/** Values just outside what the schema allows, per field. */
const badValue: Record<(typeof FIELDS)[number], unknown[]> = {
  type: ['PING', 'ping ', 'join\u0000', 'reply.start', 'welcome', 'error', '__proto__', 'constructor', 'toString', '', ...FRAME_TYPES],
  ref: ['r'.repeat(65), '\u{1F600}'.repeat(65), 64],
  conversationId: ['', 'x'.repeat(129), 'a b', 'a/b', 'é', 'a\nb', '\u0000'],
  since: [-1, -0.5, 1.5, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, '1'],
  text: ['', 'z'.repeat(32_001), 42],
  clientMessageId: ['', 'i'.repeat(129)],
  reply: ['true', 1, 0, null],
  options: [{ temperature: 2.0001 }, { temperature: -0.0001 }, { maxTokens: 0 }, { maxTokens: 131_073 }, { maxTokens: 1.5 }, { model: '' }, { model: 'm'.repeat(129) }, []],
  replyId: ['', 'i'.repeat(129)],
  token: ['', 't'.repeat(8193)],
};
const fieldName = fc.constantFrom(...FIELDS);
const hostileKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'then', 'toJSON'),
  fieldName,
  fc.string({ maxLength: 8 }),
);
const hostileValue = fc.oneof(
  fc.constantFrom({ polluted: true }, { prototype: { polluted: true } }, { reply: false }, { type: 'ping' }, { toString: 1 }, null),
  fc.jsonValue({ maxDepth: 2 }),
);
type Entry = [string, unknown];
/** One change to a frame's list of keys and values. */
const mutation: fc.Arbitrary<(entries: Entry[]) => Entry[]> = fc.oneof(
  // A field set to junk, or to a value just outside its range (added if absent).
  fc
    .tuple(fieldName, fc.oneof(junk, fieldName.chain((f) => fc.constantFrom(...badValue[f]))))
    .map(([k, v]) => (entries: Entry[]): Entry[] => (entries.some(([e]) => e === k) ? entries.map((e): Entry => (e[0] === k ? [k, v] : e)) : [...entries, [k, v]])),
  // A field removed.
  fieldName.map((k) => (entries: Entry[]): Entry[] => entries.filter(([e]) => e !== k)),
  // An extra key, possibly a duplicate or a prototype-polluting one, before or after the others.
  fc
    .tuple(hostileKey, hostileValue, fc.boolean())
    .map(([k, v, first]) => (entries: Entry[]): Entry[] => (first ? [[k, v] as Entry, ...entries] : [...entries, [k, v] as Entry])),
);
/**
 * A frame-shaped object after 0–3 mutations, serialized by hand so that
 * `__proto__` stays an own key and duplicate keys survive into the text
 * (JSON.parse keeps the last).
 */
const frameText = fc.tuple(validFrame, fc.array(mutation, { maxLength: 3 })).map(([frame, mutations]) => {
  let entries: Entry[] = Object.entries(frame).filter(([, v]) => v !== undefined);
  for (const m of mutations) entries = m(entries);
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
});

// ------------------------------------------------------------------ properties

test('arbitrary strings: bad_frame (or the right answer), socket open', async () => {
  await fc.assert(fc.asyncProperty(fc.oneof(anyString(200), jsonish), fuzz), params(400));
});

test('arbitrary JSON values: bad_frame (or the right answer), socket open', async () => {
  await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), (v) => fuzz(JSON.stringify(v) ?? 'null')), params(300));
});

test('frame-shaped objects with mutated fields and hostile keys: bad_frame or the right answer, socket open', async () => {
  await fc.assert(fc.asyncProperty(frameText, fuzz), params(500));
});

test('the generators reached every kind of frame', () => {
  if (process.env.FUZZ_STATS) console.log(Object.fromEntries([...coverage].sort()));
  for (const type of FRAME_TYPES) assert.ok((coverage.get(`valid ${type}`) ?? 0) > 0, `no valid ${type} frame was generated`);
  for (const what of ['malformed', 'answer message', 'answer joined', 'answer error bad_frame', 'answer error not_found']) {
    assert.ok((coverage.get(what) ?? 0) > 0, `never saw: ${what}`);
  }
});

test('afterwards: one session all along, nothing polluted, nothing left running', async () => {
  assert.is(reconnects, 0, 'no run closed the session');
  assert.is(client.ws.readyState, client.ws.OPEN);
  assert.equal(client.invalid, []);
  assert.equal(prototypeKeys(), keysBefore, 'built-in prototypes gained no keys');
  assert.is(({} as Record<string, unknown>).polluted, undefined);
  assert.is((Object.prototype as Record<string, unknown>).reply, undefined);
  // Whatever replies the fuzz started have ended, and leaving frees everything.
  await eventually(() => stack.relay.stats().usersWithReplies === 0 && stack.model.openRequests === 0, 'fuzzed replies ended');
  client.kill();
  await eventually(() => stack.relay.stats().sockets === 0, 'the socket is gone');
});

test.run();

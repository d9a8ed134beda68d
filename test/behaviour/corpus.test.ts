// Real recorded upstream SSE bodies, copied byte for byte from a corpus of
// provider recordings, in each upstream dialect: chat.completions
// (test/fixtures/upstream/*.sse), the Responses API (responses/) and
// Anthropic Messages (anthropic/). Each is replayed through the built-in model
// in small socket writes into a real relay speaking that dialect: the frames a
// client receives must say exactly what the recorded stream said, in protocol
// terms, and the live tool-call pieces must add up to the final tool calls.
//
// The expected results live in each folder's expected.json, written from the
// corpus' mechanically computed expectations and the relay's rules; they are
// deliberately not derived from the .sse files here.
//   - text / reasoning / refusal: concatenations for choice index 0 only
//   - reasoning: Responses summary parts are joined with a blank line
//   - usage: the last non-null upstream usage, source "upstream"; Anthropic's
//     prompt is input + cache read + cache creation tokens
//   - an in-stream error (an `event: error` event or a chunk with a top-level
//     `error`) ends the reply with finishReason "error", code "upstream_error",
//     keeping what already streamed; usage is the upstream one if any arrived,
//     else "estimated" (only the source is asserted then)
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FinishReason, ServerFrameOf, ToolCall, Usage } from '../../shared/protocol.js';
import type { DialectName } from '../../server/upstream/dialect.js';
import { startStack, type Stack } from '../helpers.js';

interface Expected {
  text: string;
  reasoning: string;
  refusal: string;
  finishReason: FinishReason;
  usage?: Usage | { source: 'estimated' };
  toolCalls?: ToolCall[];
  errorCode?: string;
}

const FOLDERS: Record<DialectName, string> = { chat: '', responses: 'responses/', anthropic: 'anthropic/' };

/** Socket writes of at most this many bytes: events, and characters, arrive cut in pieces. */
const WRITE_BYTES = 61;

for (const [dialect, folder] of Object.entries(FOLDERS)) {
  const dir = new URL(`../fixtures/upstream/${folder}`, import.meta.url);
  const expected = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as Record<string, Expected>;
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.sse'))
    .map((f) => f.slice(0, -'.sse'.length))
    .sort();
  const bodies = new Map(names.map((n) => [n, readFileSync(new URL(`${n}.sse`, dir), 'utf8')]));
  const suite = `${dialect}: `;

  let stack: Stack;
  test.before(async () => {
    stack = await startStack({
      tokenDelayMs: 0,
      env: { UPSTREAM_DIALECT: dialect },
      // The test sends the fixture's name as the user message; anything else is a 400.
      plan: (req) => {
        const last = [...req.messages].reverse().find((m) => m.role === 'user');
        const body = last ? bodies.get(last.content) : undefined;
        return body === undefined || req.dialect !== dialect ? { httpStatus: 400 } : { replay: body, writeChunkBytes: WRITE_BYTES };
      },
    });
  });
  test.after(async () => {
    await stack?.close();
  });

  test(`${suite}every fixture has an expectation and every expectation a fixture`, () => {
    assert.equal(Object.keys(expected).sort(), names);
    for (const name of names) assert.ok(bodies.get(name)!.length > 0, `${name} is empty`);
  });

  for (const name of names) {
    test(`${suite}replay ${name}`, async () => {
      const want = expected[name];
      assert.ok(want, `no expectation for ${name}`);
      await checkReplay(stack, name, want);
    });
  }
}

async function checkReplay(stack: Stack, name: string, want: Expected): Promise<void> {
  const c = await stack.connect();
  const conversationId = `corpus.${name}`;
  c.send({ type: 'send', conversationId, text: name });
  const end = await c.next('reply.end', (f) => f.conversationId === conversationId);

  const events = c.events(conversationId);
  const starts = events.filter((f): f is ServerFrameOf<'reply.start'> => f.type === 'reply.start');
  const ends = events.filter((f): f is ServerFrameOf<'reply.end'> => f.type === 'reply.end');
  const deltas = events.filter((f): f is ServerFrameOf<'reply.delta'> => f.type === 'reply.delta');
  assert.is(starts.length, 1, 'exactly one reply.start');
  assert.is(ends.length, 1, 'exactly one reply.end');
  const start = starts[0]!;
  assert.is(end.replyId, start.replyId);
  const iStart = events.indexOf(start);
  const iEnd = events.indexOf(end);
  for (const d of deltas) {
    assert.is(d.replyId, start.replyId, 'delta belongs to the reply');
    const i = events.indexOf(d);
    assert.ok(iStart < i && i < iEnd, 'deltas come between reply.start and reply.end');
    assert.ok(d.text || d.reasoning || d.refusal || d.toolCall, `empty reply.delta: ${JSON.stringify(d)}`);
  }
  const seqs = events.map((f) => f.seq);
  assert.ok(
    seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
    `seq strictly increasing: ${seqs.join(',')}`,
  );

  // Exact concatenations: UTF-8 (°, emoji, a ZWJ sequence split across events) must come through intact.
  assert.is(deltas.map((d) => d.text ?? '').join(''), want.text, 'text');
  assert.is(deltas.map((d) => d.reasoning ?? '').join(''), want.reasoning, 'reasoning');
  assert.is(deltas.map((d) => d.refusal ?? '').join(''), want.refusal, 'refusal');

  assert.is(end.finishReason, want.finishReason, `finishReason (error: ${JSON.stringify(end.error)})`);
  if (want.errorCode) assert.is(end.error?.code, want.errorCode, 'error.code');
  else assert.is(end.error, undefined, 'no error');

  if (want.usage?.source === 'upstream') assert.equal(end.usage, want.usage, 'usage');
  else if (want.usage) assert.is(end.usage?.source, want.usage.source, 'usage.source');

  if (want.toolCalls) {
    assert.equal(end.toolCalls, want.toolCalls, 'toolCalls');
    assert.equal(joinToolCalls(deltas), want.toolCalls, 'the live tool-call pieces add up to the final tool calls');
  } else {
    assert.is(end.toolCalls, undefined, 'no toolCalls');
  }
  assert.equal(c.invalid, [], 'every server frame matches the schema');
}

/** What a client rebuilds from the toolCall pieces of the deltas. */
function joinToolCalls(deltas: ReadonlyArray<ServerFrameOf<'reply.delta'>>): ToolCall[] {
  const calls: ToolCall[] = [];
  for (const { toolCall: piece } of deltas) {
    if (!piece) continue;
    const call = (calls[piece.index] ??= { id: '', name: '', arguments: '' });
    if (piece.id) call.id = piece.id;
    if (piece.name) call.name = piece.name;
    call.arguments += piece.arguments ?? '';
  }
  return calls;
}

test.run();

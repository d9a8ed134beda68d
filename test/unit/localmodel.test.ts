import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI, { type APIError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { LocalModel, splitTokens, type FaultPlan } from '../../demo/localmodel.js';

const MESSAGES = [{ role: 'user' as const, content: 'Hello there' }];

/** Runs `fn` against a fresh server answering every request with `plan`, and always closes it. */
async function withModel(plan: FaultPlan, fn: (model: LocalModel, client: OpenAI) => Promise<void>): Promise<void> {
  const model = new LocalModel({ tokenDelayMs: 1, plan: () => plan });
  await model.start();
  // logLevel 'off': the SDK logs malformed SSE lines to the console before throwing.
  const client = new OpenAI({ apiKey: 'x', baseURL: model.baseURL, maxRetries: 0, logLevel: 'off' });
  try {
    await fn(model, client);
  } finally {
    await model.close();
  }
}

async function stream(client: OpenAI, extra: { max_tokens?: number; messages?: typeof MESSAGES } = {}, signal?: AbortSignal) {
  return client.chat.completions.create(
    { model: 'relay-demo-1', messages: MESSAGES, stream: true, stream_options: { include_usage: true }, ...extra },
    { signal },
  );
}

async function collect(client: OpenAI, extra: Parameters<typeof stream>[1] = {}): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of await stream(client, extra)) chunks.push(chunk);
  return chunks;
}

/** The error the SDK's iterator throws, plus the chunks seen before it. */
async function failure(client: OpenAI): Promise<{ err: unknown; chunks: ChatCompletionChunk[] }> {
  const chunks: ChatCompletionChunk[] = [];
  try {
    for await (const chunk of await stream(client)) chunks.push(chunk);
  } catch (err) {
    return { err, chunks };
  }
  throw new Error('stream ended without an error');
}

const contentOf = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
const contentChunks = (chunks: ChatCompletionChunk[]) => chunks.filter((c) => c.choices[0]?.delta?.content).length;
const finishOf = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);

test('streams the planned text in OpenAI chunk shape, then usage and [DONE]', async () => {
  const text = 'Streaming works — one token at a time.';
  await withModel({ text }, async (model, client) => {
    const chunks = await collect(client);
    assert.is(contentOf(chunks), text);
    assert.equal(chunks[0]?.choices[0]?.delta, { role: 'assistant', content: '' });
    assert.is(chunks[0]?.object, 'chat.completion.chunk');
    assert.is(chunks[0]?.model, 'relay-demo-1');
    assert.equal(finishOf(chunks), ['stop']);
    const usage = chunks.at(-1);
    assert.equal(usage?.choices, []);
    assert.is(usage?.usage?.completion_tokens, contentChunks(chunks));
    assert.is(contentChunks(chunks), splitTokens(text).length);
    assert.ok((usage?.usage?.prompt_tokens ?? 0) > 4);
    const rec = model.requests[0]!;
    await rec.closed;
    assert.is(rec.id, 1);
    assert.equal(rec.messages, MESSAGES);
    assert.ok(rec.finished && !rec.aborted);
    assert.is(rec.tokensSent, contentChunks(chunks));
    assert.is(model.openRequests, 0);
  });
});

test('max_tokens cuts the reply and reports finish_reason "length"', async () => {
  await withModel({ text: 'one two three four five six' }, async (model, client) => {
    const chunks = await collect(client, { max_tokens: 3 });
    assert.is(contentChunks(chunks), 3);
    assert.is(contentOf(chunks), 'one two three');
    assert.equal(finishOf(chunks), ['length']);
    assert.is(chunks.at(-1)?.usage?.completion_tokens, 3);
    assert.is(model.requests[0]?.tokensSent, 3);
  });
});

test('httpStatus 429 and 500 surface as the SDK error classes, without retries', async () => {
  for (const [status, cls] of [
    [429, OpenAI.RateLimitError],
    [500, OpenAI.InternalServerError],
  ] as const) {
    await withModel({ httpStatus: status }, async (model, client) => {
      const err = await stream(client).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.instance(err, cls);
      assert.is((err as APIError).status, status);
      assert.is(model.requests.length, 1);
    });
  }
});

test('a stalled stream aborted by the client is recorded as aborted and released', async () => {
  for (const keepAliveMs of [undefined, 1]) {
    await withModel({ text: 'a b c d e f', stallAfterTokens: 2, keepAliveMs }, async (model, client) => {
      const ac = new AbortController();
      const seen: string[] = [];
      for await (const chunk of await stream(client, {}, ac.signal)) {
        const piece = chunk.choices[0]?.delta?.content;
        if (piece) seen.push(piece);
        if (seen.length === 2) ac.abort();
      }
      // The SDK ends the iteration quietly on abort instead of throwing.
      assert.equal(seen, ['a', ' b']);
      const rec = model.requests[0]!;
      await rec.closed;
      assert.ok(rec.aborted);
      assert.not.ok(rec.finished);
      assert.is(rec.tokensSent, 2);
      assert.is(model.openRequests, 0);
    });
  }
});

test('an error event mid-stream makes the SDK throw a bare APIError', async () => {
  await withModel({ text: 'a b c d', errorAfterTokens: 2 }, async (model, client) => {
    const { err, chunks } = await failure(client);
    assert.is(contentOf(chunks), 'a b');
    assert.instance(err, OpenAI.APIError);
    const apiErr = err as APIError;
    // No HTTP status for an in-band error, so none of the status subclasses apply.
    assert.is(apiErr.status, undefined);
    assert.not.instance(err, OpenAI.InternalServerError);
    assert.is(apiErr.message, 'injected failure');
    assert.is(apiErr.code, 'injected');
    assert.is(apiErr.type, 'server_error');
    await model.requests[0]!.closed;
    assert.ok(model.requests[0]!.finished);
  });
});

test('a malformed data line makes the SDK throw a raw SyntaxError', async () => {
  await withModel({ text: 'a b c d', malformedAfterTokens: 1 }, async (_model, client) => {
    const { err, chunks } = await failure(client);
    assert.is(contentOf(chunks), 'a');
    assert.instance(err, SyntaxError);
    assert.not.instance(err, OpenAI.OpenAIError);
  });
});

test('a dropped socket makes the SDK throw a transport error, not an APIError', async () => {
  await withModel({ text: 'a b c d', dropAfterTokens: 2 }, async (model, client) => {
    const { err, chunks } = await failure(client);
    assert.is(contentOf(chunks), 'a b');
    assert.instance(err, Error);
    assert.not.instance(err, OpenAI.APIError);
    const rec = model.requests[0]!;
    await rec.closed;
    assert.not.ok(rec.finished);
    assert.not.ok(rec.aborted);
    assert.is(model.openRequests, 0);
  });
});

test('omitDone and omitFinishReason still end the stream normally', async () => {
  await withModel({ text: 'all done', omitDone: true }, async (_model, client) => {
    const chunks = await collect(client);
    assert.is(contentOf(chunks), 'all done');
    assert.equal(finishOf(chunks), ['stop']);
  });
  await withModel({ text: 'all done', omitFinishReason: true }, async (_model, client) => {
    const chunks = await collect(client);
    assert.is(contentOf(chunks), 'all done');
    assert.equal(finishOf(chunks), []);
  });
});

test('one-byte writes split UTF-8 characters and the SDK reassembles them', async () => {
  const text = '日本語 and emoji 😊 done';
  await withModel({ text, writeChunkBytes: 1 }, async (_model, client) => {
    assert.is(contentOf(await collect(client)), text);
  });
});

test('replay sends a recorded body verbatim', async () => {
  const chunk = (choices: unknown[], extra = {}) =>
    `data: ${JSON.stringify({ id: 'rec-1', object: 'chat.completion.chunk', created: 1, model: 'recorded', choices, ...extra })}`;
  const replay = [
    ': recorded upstream comment',
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
    chunk([{ index: 0, delta: { content: 'Re' }, finish_reason: null }]),
    chunk([{ index: 0, delta: { content: 'played' }, finish_reason: 'stop' }]),
    chunk([], { usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } }),
    'data: [DONE]',
    '',
  ].join('\n\n');
  await withModel({ replay, text: 'ignored' }, async (_model, client) => {
    const chunks = await collect(client);
    assert.is(chunks.length, 4);
    assert.is(contentOf(chunks), 'Replayed');
    assert.is(chunks[0]?.model, 'recorded');
    assert.equal(finishOf(chunks), ['stop']);
    assert.is(chunks.at(-1)?.usage?.total_tokens, 9);
  });
});

test('reasoning and tool calls stream as OpenAI-style pieces', async () => {
  const toolCalls = [
    { id: 'call_1', name: 'get_weather', arguments: '{"city":"Zürich","unit":"c"}' },
    { id: 'call_2', name: 'get_time', arguments: '{"tz":"Europe/Paris"}' },
  ];
  await withModel({ reasoning: 'Let me check the weather first.', toolCalls }, async (model, client) => {
    const chunks = await collect(client);
    const deltas = chunks.map((c) => c.choices[0]?.delta).filter((d) => d !== undefined);
    const reasoning = deltas.map((d) => (d as { reasoning_content?: string }).reasoning_content ?? '');
    assert.is(reasoning.join(''), 'Let me check the weather first.');
    assert.ok(reasoning.filter(Boolean).length > 1);
    assert.is(contentOf(chunks), '');

    const calls: Array<{ id?: string; name?: string; args: string; pieces: number }> = [];
    for (const tc of deltas.flatMap((d) => d.tool_calls ?? [])) {
      const call = (calls[tc.index] ??= { args: '', pieces: 0 });
      if (tc.id) call.id = tc.id;
      if (tc.function?.name) call.name = tc.function.name;
      call.args += tc.function?.arguments ?? '';
      call.pieces++;
    }
    assert.equal(
      calls.map(({ id, name, args }) => ({ id, name, arguments: args })),
      toolCalls,
    );
    assert.ok(calls.every((c) => c.pieces > 2));
    assert.equal(finishOf(chunks), ['tool_calls']);
    assert.is(model.requests[0]?.tokensSent, reasoning.filter(Boolean).length);
  });
});

test('the demo reply depends on the prompt, is multi-byte, and says it is a demo', async () => {
  await withModel({}, async (_model, client) => {
    const first = contentOf(await collect(client, { messages: [{ role: 'user', content: 'What is a WebSocket?' }] }));
    const second = contentOf(await collect(client, { messages: [{ role: 'user', content: 'Tell me a joke' }] }));
    assert.is.not(first, second);
    for (const reply of [first, second]) {
      assert.match(reply, /[^\x00-\x7f]/);
      assert.match(reply, /demo model/);
      assert.match(reply, /OPENAI_API_KEY/);
      const tokens = splitTokens(reply).length;
      assert.ok(tokens >= 60 && tokens <= 120, `${tokens} tokens`);
    }
    assert.match(first, /What is a WebSocket\?/);
  });
});

test('plain HTTP: models list, non-streaming completion, bad JSON and unknown paths', async () => {
  await withModel({ text: 'Whole reply.' }, async (model, _client) => {
    const root = model.baseURL;
    const models = await fetch(`${root}/models`);
    assert.equal(await models.json(), { object: 'list', data: [{ id: 'relay-demo-1', object: 'model' }] });

    const post = (body: string) => fetch(`${root}/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const whole = await post(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }));
    const completion = (await whole.json()) as OpenAI.ChatCompletion;
    assert.is(completion.object, 'chat.completion');
    assert.is(completion.choices[0]?.message.content, 'Whole reply.');
    assert.is(completion.choices[0]?.finish_reason, 'stop');
    assert.is(model.requests[0]?.messages[0]?.content, 'hi');

    const bad = await post('{not json');
    assert.is(bad.status, 400);
    assert.is(((await bad.json()) as { error: { type: string } }).error.type, 'invalid_request_error');

    const missing = await fetch(`${root}/nope`);
    assert.is(missing.status, 404);
    assert.ok(((await missing.json()) as { error?: unknown }).error);
  });
});

test('close() ends in-flight streams and resolves their closed promises', async () => {
  const model = new LocalModel({ tokenDelayMs: 0, plan: () => ({ text: 'x y z', stallAfterTokens: 1, keepAliveMs: 1 }) });
  await model.start();
  const client = new OpenAI({ apiKey: 'x', baseURL: model.baseURL, maxRetries: 0 });
  const s = await stream(client);
  const reading = (async () => {
    for await (const _ of s);
  })().catch((e: unknown) => e);
  while (model.requests[0]?.tokensSent !== 1) await new Promise((r) => setTimeout(r, 1));
  await model.close();
  await model.requests[0]!.closed;
  assert.is(model.openRequests, 0);
  assert.instance(await reading, Error);
});

test.run();

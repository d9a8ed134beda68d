// The local model's Responses and Anthropic dialects, consumed through the real
// official SDKs, and the fault plan meaning the same thing in all three dialects.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import type { RawMessageStreamEvent } from '@anthropic-ai/sdk/resources/messages';
import { LocalModel, splitTokens, type DialectName, type FaultPlan } from '../../demo/localmodel.js';

const TEXT = 'Streaming works — one token at a time.';
const REASONING = 'First I think, then I answer.';
const TOOL_CALLS = [
  { id: 'call_1', name: 'get_weather', arguments: '{"city":"Zürich","unit":"c"}' },
  { id: 'call_2', name: 'get_time', arguments: '{"tz":"Europe/Paris"}' },
];

interface Clients {
  openai: OpenAI;
  anthropic: Anthropic;
}

/** Runs `fn` against a fresh server answering every request with `plan`, and always closes it. */
async function withModel(plan: FaultPlan, fn: (model: LocalModel, clients: Clients) => Promise<void>): Promise<void> {
  const model = new LocalModel({ tokenDelayMs: 1, plan: () => plan });
  await model.start();
  // logLevel 'off': the SDKs log malformed SSE lines to the console before throwing.
  const openai = new OpenAI({ apiKey: 'x', baseURL: model.baseURL, maxRetries: 0, logLevel: 'off' });
  const anthropic = new Anthropic({ apiKey: 'x', baseURL: model.origin, maxRetries: 0, logLevel: 'off' });
  try {
    await fn(model, { openai, anthropic });
  } finally {
    await model.close();
  }
}

const respond = (openai: OpenAI, extra: { max_output_tokens?: number } = {}, signal?: AbortSignal) =>
  openai.responses.create({ model: 'relay-demo-1', instructions: 'Be brief.', input: 'Hello there', stream: true, ...extra }, { signal });

const PARAMS = { model: 'relay-demo-1', max_tokens: 1024, system: 'Be brief.', messages: [{ role: 'user' as const, content: 'Hello there' }] };

async function responseEvents(openai: OpenAI, extra: { max_output_tokens?: number } = {}): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const ev of await respond(openai, extra)) events.push(ev);
  return events;
}

async function messageEvents(anthropic: Anthropic, extra: { max_tokens?: number } = {}): Promise<RawMessageStreamEvent[]> {
  const events: RawMessageStreamEvent[] = [];
  for await (const ev of await anthropic.messages.create({ ...PARAMS, ...extra, stream: true })) events.push(ev);
  return events;
}

/** What `fn` throws, or a failure when it does not. */
async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

const textOfResponse = (events: ResponseStreamEvent[]) => events.map((e) => (e.type === 'response.output_text.delta' ? e.delta : '')).join('');
const textOfMessage = (events: RawMessageStreamEvent[]) =>
  events.map((e) => (e.type === 'content_block_delta' && e.delta.type === 'text_delta' ? e.delta.text : '')).join('');

// ------------------------------------------------------------------ Responses

test('responses: the SDK iterator sees the real event sequence, text, reasoning and usage', async () => {
  await withModel({ text: TEXT, reasoning: REASONING }, async (model, { openai }) => {
    const events = await responseEvents(openai);
    assert.is(textOfResponse(events), TEXT);
    const summary = events.flatMap((e) => (e.type === 'response.reasoning_summary_text.delta' ? [e.delta] : []));
    assert.is(summary.join(''), REASONING);
    assert.is(events[0]?.type, 'response.created');
    assert.is(events[1]?.type, 'response.in_progress');
    assert.equal(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    const done = events.at(-1);
    assert.ok(done?.type === 'response.completed');
    assert.is(done.response.status, 'completed');
    const message = done.response.output.find((o) => o.type === 'message');
    assert.equal(message?.content, [{ type: 'output_text', annotations: [], logprobs: [], text: TEXT }]);
    const usage = done.response.usage!;
    assert.ok(usage.input_tokens > 0);
    assert.is(usage.output_tokens, splitTokens(TEXT).length + splitTokens(REASONING).length);
    assert.is(usage.output_tokens_details.reasoning_tokens, splitTokens(REASONING).length);
    assert.is(usage.total_tokens, usage.input_tokens + usage.output_tokens);

    const rec = model.requests[0]!;
    await rec.closed;
    assert.is(rec.dialect, 'responses');
    assert.equal(rec.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello there' },
    ]);
    assert.ok(rec.finished && !rec.aborted);
    assert.is(rec.tokensSent, usage.output_tokens);
  });
});

test('responses: stream() and finalResponse() assemble tool calls with their full arguments', async () => {
  await withModel({ toolCalls: TOOL_CALLS }, async (model, { openai }) => {
    const stream = openai.responses.stream({ model: 'relay-demo-1', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Weather?' }] }] });
    let deltas = 0;
    stream.on('response.function_call_arguments.delta', () => deltas++);
    const final = await stream.finalResponse();
    assert.is(final.status, 'completed');
    const calls = final.output.flatMap((o) => (o.type === 'function_call' ? [o] : []));
    assert.equal(
      calls.map((c) => ({ id: c.call_id, name: c.name, arguments: c.arguments })),
      TOOL_CALLS,
    );
    assert.ok(calls.every((c) => c.id?.startsWith('fc_')));
    assert.equal(JSON.parse(calls[0]!.arguments), { city: 'Zürich', unit: 'c' });
    assert.ok(deltas > TOOL_CALLS.length * 2);
    assert.is(final.output_text, '');
    assert.is(model.requests[0]?.tokensSent, 0);
  });
});

test('responses: max_output_tokens ends in response.incomplete', async () => {
  await withModel({ text: 'one two three four five six' }, async (_model, { openai }) => {
    const events = await responseEvents(openai, { max_output_tokens: 3 });
    assert.is(textOfResponse(events), 'one two three');
    const last = events.at(-1);
    assert.ok(last?.type === 'response.incomplete');
    assert.equal(last.response.incomplete_details, { reason: 'max_output_tokens' });
    assert.is(last.response.usage?.output_tokens, 3);
  });
});

test('responses: non-streaming answers one response object; bad input is a 400', async () => {
  await withModel({ text: 'Whole reply.' }, async (model, { openai }) => {
    const response = await openai.responses.create({ model: 'relay-demo-1', input: 'hi' });
    assert.is(response.object, 'response');
    assert.is(response.output_text, 'Whole reply.');
    assert.ok(response.usage && response.usage.output_tokens === splitTokens('Whole reply.').length);
    const bad = await fetch(`${model.baseURL}/responses`, { method: 'POST', body: '{"input":42}' });
    assert.is(bad.status, 400);
    assert.is(((await bad.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
  });
});

test('responses: an error event comes with response.failed, and stream() rejects with it', async () => {
  await withModel({ text: 'a b c d', errorAfterTokens: 2, errorCode: 'rate_limit_exceeded' }, async (model, { openai }) => {
    // The bare iterator hands both events over rather than throwing.
    const events = await responseEvents(openai);
    assert.is(textOfResponse(events), 'a b');
    const [error, failed] = events.slice(-2);
    assert.ok(error?.type === 'error');
    assert.is(error.code, 'rate_limit_exceeded');
    assert.is(error.message, 'injected failure');
    assert.ok(failed?.type === 'response.failed');
    assert.is(failed.response.status, 'failed');
    assert.equal(failed.response.error, { code: 'rate_limit_exceeded', message: 'injected failure' } as never);
    assert.is(failed.sequence_number, error.sequence_number + 1);
    await model.requests[0]!.closed;
    assert.ok(model.requests[0]!.finished);

    const err = await thrown(() => openai.responses.stream({ model: 'relay-demo-1', input: 'x' }).finalResponse());
    assert.equal(err, error);
  });
});

// ------------------------------------------------------------------ Anthropic

test('anthropic: stream() and finalMessage() give thinking, text, stop reason and usage', async () => {
  await withModel({ text: TEXT, reasoning: REASONING }, async (model, { anthropic }) => {
    const stream = anthropic.messages.stream({
      ...PARAMS,
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Look:' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'look', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'ok' }, { type: 'text', text: 'Hello there' }] },
      ],
    });
    let streamed = '';
    stream.on('text', (delta) => (streamed += delta));
    const message = await stream.finalMessage();
    assert.is(streamed, TEXT);
    assert.is(message.stop_reason, 'end_turn');
    const [thinking, text] = message.content;
    assert.ok(thinking?.type === 'thinking' && text?.type === 'text');
    assert.is(thinking.thinking, REASONING);
    assert.ok(thinking.signature.length > 0);
    assert.is(text.text, TEXT);
    assert.ok(message.usage.input_tokens > 0);
    assert.is(message.usage.output_tokens, splitTokens(TEXT).length + splitTokens(REASONING).length);

    const rec = model.requests[0]!;
    await rec.closed;
    assert.is(rec.dialect, 'anthropic');
    assert.equal(rec.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Look:', files: [{ mediaType: 'image/png', data: Buffer.from('AA==', 'base64') }] },
      { role: 'assistant', content: '', toolCalls: [{ id: 'toolu_1', name: 'look', arguments: '{}' }] },
      { role: 'tool', content: 'ok', toolCallId: 'toolu_1' },
      { role: 'user', content: 'Hello there' },
    ]);
    assert.ok(rec.finished && !rec.aborted);
  });
});

test('anthropic: tool_use blocks parse to their full input, stop reason tool_use', async () => {
  await withModel({ toolCalls: TOOL_CALLS }, async (_model, { anthropic }) => {
    const message = await anthropic.messages.stream(PARAMS).finalMessage();
    assert.is(message.stop_reason, 'tool_use');
    const uses = message.content.flatMap((b) => (b.type === 'tool_use' ? [b] : []));
    assert.equal(
      uses.map((u) => ({ id: u.id, name: u.name, input: u.input })),
      TOOL_CALLS.map((c) => ({ id: `toolu_${c.id}`, name: c.name, input: JSON.parse(c.arguments) as unknown })),
    );
  });
});

test('anthropic: create({stream}) iterates the raw events; max_tokens cuts with stop reason max_tokens', async () => {
  await withModel({ text: 'one two three four five six' }, async (_model, { anthropic }) => {
    const events = await messageEvents(anthropic, { max_tokens: 3 });
    assert.is(textOfMessage(events), 'one two three');
    assert.equal(
      [events[0]?.type, events[1]?.type, ...events.slice(-3).map((e) => e.type)],
      ['message_start', 'content_block_start', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    const start = events[0];
    assert.ok(start?.type === 'message_start');
    assert.equal(start.message.usage.output_tokens, 1);
    const delta = events.at(-2);
    assert.ok(delta?.type === 'message_delta');
    assert.is(delta.delta.stop_reason, 'max_tokens');
    assert.is(delta.usage.output_tokens, 3);
  });
});

test('anthropic: non-streaming answers a message; a missing max_tokens is a 400 in Anthropic shape', async () => {
  await withModel({ text: 'Whole reply.' }, async (model, { anthropic }) => {
    const message = await anthropic.messages.create(PARAMS);
    assert.is(message.type, 'message');
    assert.equal(message.content, [{ type: 'text', text: 'Whole reply.' }] as never);
    assert.is(message.stop_reason, 'end_turn');
    const { max_tokens: _, ...withoutMax } = PARAMS;
    const err = await thrown(() => anthropic.messages.create(withoutMax as typeof PARAMS));
    assert.instance(err, Anthropic.BadRequestError);
    const raw = await fetch(`${model.origin}/v1/messages`, { method: 'POST', body: JSON.stringify(withoutMax) });
    assert.equal(await raw.json(), { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });
    assert.is(model.requests.length, 1);
  });
});

test('anthropic: an error event makes the SDK iterator throw an APIError of the planned type', async () => {
  for (const errorCode of [undefined, 'overloaded_error']) {
    await withModel({ text: 'a b c d', errorAfterTokens: 2, errorCode }, async (_model, { anthropic }) => {
      const seen: string[] = [];
      const err = await thrown(async () => {
        for await (const ev of await anthropic.messages.create({ ...PARAMS, stream: true })) {
          if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') seen.push(ev.delta.text);
        }
      });
      assert.equal(seen, ['a', ' b']);
      assert.instance(err, Anthropic.APIError);
      assert.is((err as InstanceType<typeof Anthropic.APIError>).status, undefined);
      assert.is((err as InstanceType<typeof Anthropic.APIError>).type, errorCode ?? 'api_error');
      assert.match((err as Error).message, 'injected failure');
    });
  }
});

test('anthropic: omitDone keeps message_delta, omitFinishReason drops it too', async () => {
  await withModel({ text: 'all done', omitDone: true }, async (_model, { anthropic }) => {
    const stream = anthropic.messages.stream(PARAMS);
    const events: RawMessageStreamEvent[] = [];
    stream.on('streamEvent', (e) => events.push(e));
    // The helper only settles its message on message_stop.
    const err = await thrown(() => stream.finalMessage());
    assert.instance(err, Anthropic.AnthropicError);
    const last = events.at(-1);
    assert.ok(last?.type === 'message_delta');
    assert.is(last.delta.stop_reason, 'end_turn');
  });
  await withModel({ text: 'all done', omitFinishReason: true }, async (_model, { anthropic }) => {
    const events = await messageEvents(anthropic);
    assert.is(textOfMessage(events), 'all done');
    assert.is(events.at(-1)?.type, 'content_block_stop');
  });
});

// ------------------------------------------------------------------ every dialect

/** One streamed request per dialect through its SDK; resolves to what the iteration threw, if anything. */
function streamIn(dialect: DialectName, { openai, anthropic }: Clients, signal?: AbortSignal, onText?: (piece: string) => void): Promise<unknown> {
  const run = async () => {
    if (dialect === 'chat') {
      const s = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true }, { signal });
      for await (const c of s) if (c.choices[0]?.delta.content) onText?.(c.choices[0].delta.content);
    } else if (dialect === 'responses') {
      for await (const e of await respond(openai, {}, signal)) if (e.type === 'response.output_text.delta') onText?.(e.delta);
    } else {
      const s = await anthropic.messages.create({ ...PARAMS, stream: true }, { signal });
      for await (const e of s) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') onText?.(e.delta.text);
    }
  };
  return run().then(
    () => undefined,
    (err: unknown) => err,
  );
}

const DIALECTS: DialectName[] = ['chat', 'responses', 'anthropic'];

test('every dialect: HTTP errors surface as the SDK error classes, without retries', async () => {
  const cases = [
    [429, OpenAI.RateLimitError, Anthropic.RateLimitError, 'rate_limit_error'],
    [500, OpenAI.InternalServerError, Anthropic.InternalServerError, 'api_error'],
    [529, OpenAI.InternalServerError, Anthropic.OverloadedError, 'overloaded_error'],
  ] as const;
  for (const [status, openaiClass, anthropicClass, anthropicType] of cases) {
    await withModel({ httpStatus: status }, async (model, clients) => {
      for (const dialect of DIALECTS) {
        const err = await streamIn(dialect, clients);
        assert.instance(err, dialect === 'anthropic' ? anthropicClass : openaiClass, `${dialect} ${status}`);
        assert.is((err as { status: number }).status, status);
        if (dialect === 'anthropic') assert.is((err as InstanceType<typeof Anthropic.APIError>).type, anthropicType);
      }
      assert.is(model.requests.length, 3);
    });
  }
});

test('every dialect: a malformed line throws a SyntaxError, a dropped socket a transport error', async () => {
  for (const dialect of DIALECTS) {
    await withModel({ text: 'a b c d', malformedAfterTokens: 1 }, async (_model, clients) => {
      const seen: string[] = [];
      const err = await streamIn(dialect, clients, undefined, (p) => seen.push(p));
      assert.instance(err, SyntaxError, dialect);
      assert.equal(seen, ['a'], dialect);
    });
    await withModel({ text: 'a b c d', dropAfterTokens: 2 }, async (model, clients) => {
      const seen: string[] = [];
      const err = await streamIn(dialect, clients, undefined, (p) => seen.push(p));
      assert.instance(err, Error, dialect);
      assert.not.instance(err, dialect === 'anthropic' ? Anthropic.APIError : OpenAI.APIError, dialect);
      assert.equal(seen, ['a', ' b'], dialect);
      const rec = model.requests[0]!;
      await rec.closed;
      assert.ok(!rec.finished && !rec.aborted, dialect);
    });
  }
});

test('every dialect: a client abort during a stall is recorded as aborted', async () => {
  for (const dialect of DIALECTS) {
    await withModel({ text: 'a b c d e f', stallAfterTokens: 2, keepAliveMs: 1 }, async (model, clients) => {
      const ac = new AbortController();
      const seen: string[] = [];
      await streamIn(dialect, clients, ac.signal, (p) => seen.push(p) === 2 && ac.abort());
      assert.equal(seen, ['a', ' b'], dialect);
      const rec = model.requests[0]!;
      await rec.closed;
      assert.ok(rec.aborted && !rec.finished, dialect);
      assert.is(rec.tokensSent, 2, dialect);
      assert.is(model.openRequests, 0, dialect);
    });
  }
});

test('every dialect: one-byte writes split UTF-8 characters and the SDK reassembles them', async () => {
  const text = '日本語 and emoji 😊 done';
  for (const dialect of DIALECTS) {
    await withModel({ text, writeChunkBytes: 1, tokenDelayMs: 0 }, async (_model, clients) => {
      let seen = '';
      assert.is(await streamIn(dialect, clients, undefined, (p) => (seen += p)), undefined);
      assert.is(seen, text, dialect);
    });
  }
});

/** A minimal streamed request in `dialect`, for reading the body without an SDK. */
function rawRequest(dialect: DialectName): [string, object] {
  if (dialect === 'chat') return ['/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stream: true }];
  if (dialect === 'responses') return ['/v1/responses', { input: 'hi', stream: true }];
  return ['/v1/messages', { ...PARAMS, stream: true }];
}

/** The names of the events of a raw streamed body: `event:` lines, or what an unnamed chat event is. */
async function rawEvents(model: LocalModel, dialect: DialectName): Promise<string[]> {
  const [path, body] = rawRequest(dialect);
  const res = await fetch(`${model.origin}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const text = await res.text();
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((e) => e.match(/^event: (.*)$/m)?.[1] ?? (e.includes('[DONE]') ? '[DONE]' : e.includes('finish_reason":"stop') ? 'finish' : 'data'));
}

test('every dialect: omitDone and omitFinishReason leave out the end marker and the finish', async () => {
  const expected: Record<DialectName, Record<'normal' | 'omitDone' | 'omitFinishReason', string[]>> = {
    chat: { normal: ['finish', '[DONE]'], omitDone: ['data', 'finish'], omitFinishReason: ['data', '[DONE]'] },
    responses: { normal: ['response.output_item.done', 'response.completed'], omitDone: ['response.content_part.done', 'response.output_item.done'], omitFinishReason: ['response.content_part.done', 'response.output_item.done'] },
    anthropic: { normal: ['message_delta', 'message_stop'], omitDone: ['content_block_stop', 'message_delta'], omitFinishReason: ['content_block_delta', 'content_block_stop'] },
  };
  for (const dialect of DIALECTS) {
    for (const variant of ['normal', 'omitDone', 'omitFinishReason'] as const) {
      await withModel({ text: 'all done', [variant]: true }, async (model) => {
        const names = await rawEvents(model, dialect);
        assert.equal(names.slice(-2), expected[dialect][variant], `${dialect} ${variant}`);
        assert.is(names.includes('[DONE]'), dialect === 'chat' && variant !== 'omitDone', `${dialect} ${variant} [DONE]`);
      });
    }
  }
});

test('every dialect: stallAfterFinish reports the finish and then holds the stream open', async () => {
  const finish: Record<DialectName, string> = { chat: '"finish_reason":"stop"', responses: 'event: response.completed', anthropic: 'event: message_delta' };
  for (const dialect of DIALECTS) {
    await withModel({ text: 'all done', stallAfterFinish: true }, async (model) => {
      const ac = new AbortController();
      const [path, body] = rawRequest(dialect);
      const res = await fetch(`${model.origin}${path}`, { method: 'POST', body: JSON.stringify(body), signal: ac.signal });
      const reader = res.body!.getReader();
      let text = '';
      while (!text.includes(finish[dialect])) text += new TextDecoder().decode((await reader.read()).value);
      const next = await Promise.race([reader.read().then(() => 'more'), new Promise((r) => setTimeout(() => r('held'), 100))]);
      assert.is(next, 'held', dialect);
      assert.not.match(text, /\[DONE\]|message_stop/);
      ac.abort();
      await model.requests[0]!.closed;
      assert.ok(model.requests[0]!.aborted, dialect);
    });
  }
});

test('every dialect: replay serves the recorded body as-is', async () => {
  const recorded: Record<DialectName, string> = {
    chat: `data: {"id":"r","object":"chat.completion.chunk","created":1,"model":"recorded","choices":[{"index":0,"delta":{"content":"Replayed"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n`,
    responses: `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":0,"item_id":"m","output_index":0,"content_index":0,"delta":"Replayed","logprobs":[]}\n\n`,
    anthropic: `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Replayed"}}\n\n`,
  };
  for (const dialect of DIALECTS) {
    await withModel({ replay: recorded[dialect], text: 'ignored' }, async (model, clients) => {
      let seen = '';
      assert.is(await streamIn(dialect, clients, undefined, (p) => (seen += p)), undefined);
      assert.is(seen, 'Replayed', dialect);
      assert.is(model.requests[0]?.tokensSent, 1, dialect);
    });
  }
});

test('chat: errorCode sets the in-stream error code', async () => {
  await withModel({ text: 'a b', errorAfterTokens: 1, errorCode: 'overloaded' }, async (_model, clients) => {
    const err = await streamIn('chat', clients);
    assert.instance(err, OpenAI.APIError);
    assert.is((err as InstanceType<typeof OpenAI.APIError>).code, 'overloaded');
    assert.is((err as InstanceType<typeof OpenAI.APIError>).type, 'server_error');
  });
});

test('every dialect: the recorded messages are normalized, system prompt first', async () => {
  await withModel({ text: 'ok' }, async (model, { openai, anthropic }) => {
    await openai.chat.completions.create({ model: 'm', messages: [{ role: 'system', content: 'Sys.' }, { role: 'user', content: 'Hi' }] });
    await openai.responses.create({
      model: 'm',
      instructions: 'Sys.',
      input: [
        { role: 'user', content: 'Hi' },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c1', output: 'done' },
      ],
    });
    await anthropic.messages.create({ ...PARAMS, system: 'Sys.', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(
      model.requests.map((r) => r.dialect),
      DIALECTS,
    );
    const [chatRec, responsesRec, anthropicRec] = model.requests;
    for (const rec of [chatRec!, anthropicRec!]) {
      assert.equal(rec.messages, [
        { role: 'system', content: 'Sys.' },
        { role: 'user', content: 'Hi' },
      ]);
    }
    // The tool items are turns of their own (test/unit/localmodel-tools.test.ts covers them in every dialect).
    assert.equal(responsesRec!.messages, [
      { role: 'system', content: 'Sys.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'f', arguments: '{}' }] },
      { role: 'tool', content: 'done', toolCallId: 'c1' },
    ]);
  });
});

test.run();

// The local model's Responses background mode through the real OpenAI SDK: a
// background response runs on after its connection closes, can be re-attached to
// after the last sequence number read, polled, and cancelled.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI, { APIError } from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { BackgroundRegistry, BackgroundResponse, MAX_BACKGROUND } from '../../demo/background.js';
import { LocalModel, type FaultPlan, type RecordedRequest } from '../../demo/localmodel.js';
import { eventually } from '../helpers.js';

// Long enough that the reply is still being generated after a few events have been read.
const TEXT = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ') + '.';
const MODEL = 'relay-demo-1';

async function withModel(plan: (rec: RecordedRequest) => FaultPlan, fn: (model: LocalModel, openai: OpenAI) => Promise<void>): Promise<void> {
  const model = new LocalModel({ port: 0, tokenDelayMs: 20, plan });
  await model.start();
  const openai = new OpenAI({ apiKey: 'x', baseURL: model.baseURL, maxRetries: 0, logLevel: 'off' });
  try {
    await fn(model, openai);
  } finally {
    await model.close();
  }
}

const startBackground = (openai: OpenAI) => openai.responses.create({ model: MODEL, input: 'Hello', background: true, store: true, stream: true });

/** Reads events until `deltas` text deltas have come, then closes the stream as a lost client would. */
async function readDeltas(stream: AsyncIterable<ResponseStreamEvent>, deltas: number): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const ev of stream) {
    events.push(ev);
    if (events.filter((e) => e.type === 'response.output_text.delta').length >= deltas) break; // aborts the request
  }
  return events;
}

async function all(stream: AsyncIterable<ResponseStreamEvent>): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const ev of stream) events.push(ev);
  return events;
}

const textOf = (events: ResponseStreamEvent[]) => events.map((e) => (e.type === 'response.output_text.delta' ? e.delta : '')).join('');
const seqs = (events: ResponseStreamEvent[]) => events.map((e) => e.sequence_number);
const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

function idOf(events: ResponseStreamEvent[]): string {
  const created = events[0];
  if (created?.type !== 'response.created') throw new Error('the stream did not start with response.created');
  return created.response.id;
}

async function thrown(fn: () => Promise<unknown>): Promise<APIError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof APIError) return err;
    throw err;
  }
  throw new Error('expected an API error');
}

test('a background response runs on after its stream closes; a re-attach gets every later event once', async () => {
  await withModel(() => ({ text: TEXT }), async (model, openai) => {
    const before = await readDeltas(await startBackground(openai), 3);
    const id = idOf(before);
    assert.is(model.lastBackgroundId(), id);
    const rec = model.requests.at(-1)!;
    assert.is(rec.responseId, id);
    const created = before[0]!.type === 'response.created' ? before[0]!.response : undefined;
    assert.is(created?.background, true);
    assert.is(created?.status, 'queued');

    await eventually(() => rec.aborted, 'the model sees the client leave');
    const atAbort = model.background(id)!.tokensGenerated;
    await eventually(() => model.background(id)!.tokensGenerated >= atAbort + 3, 'the generation goes on without a client');

    const last = before.at(-1)!.sequence_number;
    const after = await all(await openai.responses.retrieve(id, { stream: true, starting_after: last }));
    assert.equal(seqs(after), range(last + 1, after.length));
    assert.is(after.at(-1)?.type, 'response.completed');
    assert.is(textOf(before) + textOf(after), TEXT);
    assert.equal(model.background(id), { status: 'completed', tokensGenerated: model.background(id)!.tokensGenerated, cancelRequests: 0, attaches: 1 });
    await rec.closed;
    assert.ok(rec.finished);
  });
});

test('a finished background response can be replayed whole and polled', async () => {
  await withModel(() => ({ text: TEXT }), async (model, openai) => {
    const live = await all(await startBackground(openai));
    const id = idOf(live);
    const replayed = await all(await openai.responses.retrieve(id, { stream: true }));
    assert.equal(replayed, live);
    assert.equal(seqs(live), range(0, live.length));
    const polled = await openai.responses.retrieve(id);
    assert.is(polled.status, 'completed');
    assert.is(polled.output_text, TEXT);
    assert.is(model.background(id)?.tokensGenerated, model.requests[0]?.tokensSent);
  });
});

test('a background response asked for without streaming answers queued at once and completes on its own', async () => {
  await withModel(() => ({ text: TEXT }), async (model, openai) => {
    const queued = await openai.responses.create({ model: MODEL, input: 'Hello', background: true, store: true });
    assert.is(queued.status, 'queued');
    assert.is(queued.background, true);
    await eventually(() => model.background(queued.id)?.status === 'completed', 'the response completes');
    const done = await openai.responses.retrieve(queued.id);
    assert.is(done.output_text, TEXT);
    assert.not.ok(model.requests[0]?.aborted);
  });
});

test('a connection dropped by a fault leaves the background response running for a re-attach', async () => {
  await withModel(() => ({ text: TEXT, dropAfterTokens: 4 }), async (model, openai) => {
    const before: ResponseStreamEvent[] = [];
    let cut: unknown;
    try {
      for await (const ev of await startBackground(openai)) before.push(ev);
    } catch (err) {
      cut = err;
    }
    assert.ok(cut, 'the dropped stream fails');
    const id = idOf(before);
    assert.is(textOf(before), TEXT.split(' ').slice(0, 4).join(' '));
    const last = before.at(-1)!.sequence_number;
    const after = await all(await openai.responses.retrieve(id, { stream: true, starting_after: last }));
    assert.is(textOf(before) + textOf(after), TEXT);
    assert.is(after.at(-1)?.type, 'response.completed');
    const rec = model.requests[0]!;
    await rec.closed;
    assert.ok(rec.finished && !rec.aborted);
  });
});

test('cancel stops a running background response at once and ends its stream', async () => {
  await withModel(() => ({ text: TEXT }), async (model, openai) => {
    const stream = await startBackground(openai);
    const iterator = stream[Symbol.asyncIterator]();
    const before: ResponseStreamEvent[] = [];
    while (before.filter((e) => e.type === 'response.output_text.delta').length < 2) before.push((await iterator.next()).value);
    const id = idOf(before);

    const cancelled = await openai.responses.cancel(id);
    assert.is(cancelled.status, 'cancelled');
    const atCancel = model.background(id)!.tokensGenerated;
    // The attached stream ends after what was already sent, with no terminal event.
    const rest: ResponseStreamEvent[] = [];
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest.push(r.value);
    assert.ok(rest.every((e) => e.type !== 'response.completed'));
    assert.ok(textOf([...before, ...rest]).length < TEXT.length);

    // Another response, paced alike, gets several tokens further: the cancelled one would have too.
    const other = all(await openai.responses.create({ model: MODEL, input: 'Hi', stream: true }));
    const otherRec = model.requests.at(-1)!;
    await eventually(() => otherRec.tokensSent >= 5, 'another response advances');
    assert.is(model.background(id)!.tokensGenerated, atCancel);
    assert.is(model.background(id)!.status, 'cancelled');
    await other;

    // Idempotent, and what is stored stays readable.
    assert.is((await openai.responses.cancel(id)).status, 'cancelled');
    assert.is((await openai.responses.retrieve(id)).status, 'cancelled');
    const replayed = await all(await openai.responses.retrieve(id, { stream: true }));
    assert.equal(replayed, [...before, ...rest]);
    assert.equal(model.background(id), { status: 'cancelled', tokensGenerated: atCancel, cancelRequests: 2, attaches: 1 });
    await model.requests[0]!.closed;
    assert.is(model.openRequests, 0);
  });
});

test('cancelling a completed background response answers it as it is', async () => {
  await withModel(() => ({ text: 'Short.' }), async (model, openai) => {
    const id = idOf(await all(await startBackground(openai)));
    const answer = await openai.responses.cancel(id);
    assert.is(answer.status, 'completed');
    assert.equal(answer.output.flatMap((item) => (item.type === 'message' ? item.content : [])).map((c) => (c.type === 'output_text' ? c.text : '')), ['Short.']);
    assert.equal(model.background(id), { status: 'completed', tokensGenerated: 2, cancelRequests: 1, attaches: 0 });
  });
});

test('an unknown id, and a response whose plan refuses re-attaching, answer 404', async () => {
  await withModel(() => ({ text: TEXT, refuseReattach: true }), async (model, openai) => {
    for (const call of [() => openai.responses.retrieve('resp_nope', { stream: true }), () => openai.responses.retrieve('resp_nope'), () => openai.responses.cancel('resp_nope')]) {
      const err = await thrown(call);
      assert.is(err.status, 404);
      assert.is(err.message, "404 Response with id 'resp_nope' not found.");
      assert.is(err.type, 'invalid_request_error');
    }
    const id = idOf(await readDeltas(await startBackground(openai), 1));
    const refused = await thrown(() => openai.responses.retrieve(id, { stream: true, starting_after: 2 }));
    assert.is(refused.status, 404);
    assert.is(refused.message, `404 Response with id '${id}' not found.`);
    assert.is((await thrown(() => openai.responses.retrieve(id))).status, 404);
    assert.is(model.background(id)?.attaches, 0);
    // It still runs, and can still be stopped.
    assert.is((await openai.responses.cancel(id)).status, 'cancelled');
  });
});

test('background mode refuses store=false with a 400, as the API does', async () => {
  await withModel(() => ({}), async (model, openai) => {
    const err = await thrown(() => openai.responses.create({ model: MODEL, input: 'Hello', background: true, store: false, stream: true }));
    assert.is(err.status, 400);
    assert.match(err.message, /Background mode requires store=true/);
    assert.is(err.type, 'invalid_request_error');
    assert.is(model.requests.length, 0);
    assert.is(model.lastBackgroundId(), undefined);
  });
});

test('a plain (non-background) response still stops when its client leaves, and is not kept', async () => {
  await withModel(() => ({ text: TEXT }), async (model, openai) => {
    const events = await readDeltas(await openai.responses.create({ model: MODEL, input: 'Hello', stream: true }), 2);
    const rec = model.requests[0]!;
    await rec.closed;
    assert.ok(rec.aborted && !rec.finished);
    assert.is(rec.responseId, undefined);
    assert.is((await thrown(() => openai.responses.retrieve(idOf(events)))).status, 404);
  });
});

test('the registry keeps at most MAX_BACKGROUND responses, dropping the oldest finished ones, never a running one', () => {
  const registry = new BackgroundRegistry();
  const make = (id: string) => new BackgroundResponse(id, { id, status: 'completed' }, false, () => {});
  const running = make('resp_running');
  registry.add(running);
  const finished = range(0, MAX_BACKGROUND).map((i) => make(`resp_${i}`));
  for (const bg of finished) {
    bg.finish();
    registry.add(bg);
  }
  assert.is(registry.size, MAX_BACKGROUND);
  assert.is(registry.get('resp_running'), running);
  assert.is(registry.get('resp_0'), undefined);
  assert.is(registry.get('resp_1'), finished[1]);
  assert.is(registry.lastId, `resp_${MAX_BACKGROUND - 1}`);
});

test.run();

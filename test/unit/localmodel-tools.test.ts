// The local model's tool round trips, through the real official SDKs in all three
// dialects: the offered tools and tool turns as it records them, the calls it makes
// of its own accord, its answer to the results, and the demo tool endpoint.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { DEMO_TOOLS, LocalModel, demoReply, type DialectName, type FaultPlan, type OfferedTool, type ToolCall } from '../../demo/localmodel.js';

const TIME_TOOL = DEMO_TOOLS[0]!;
const WEATHER: OfferedTool = {
  name: 'get_weather',
  description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
};
const LOOKUP: OfferedTool = { name: 'lookup', description: 'Looks something up', parameters: { type: 'object', properties: { query: { type: 'string' }, limit: { type: 'string' } } } };
const PING: OfferedTool = { name: 'ping', parameters: { type: 'object', properties: {} } };
const asOffered = ({ name, description, parameters }: OfferedTool): OfferedTool => ({ name, description, parameters });

interface Result {
  id: string;
  output: string;
  isError?: boolean;
}

/** One dialect spoken through its SDK: ask offering tools, and answer the calls with results. */
interface Driver {
  name: DialectName;
  ask(tools: OfferedTool[], text: string): Promise<{ calls: ToolCall[]; finish: string; text: string }>;
  answer(tools: OfferedTool[], text: string, calls: ToolCall[], results: Result[]): Promise<string>;
}

function drivers(model: LocalModel): Driver[] {
  const openai = new OpenAI({ apiKey: 'x', baseURL: model.baseURL, maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: 'x', baseURL: model.origin, maxRetries: 0 });
  const m = 'relay-demo-1';
  const params = (t: OfferedTool) => t.parameters ?? { type: 'object', properties: {} };

  const chatTools = (tools: OfferedTool[]) => tools.map((t) => ({ type: 'function' as const, function: { name: t.name, description: t.description, parameters: params(t) } }));
  const chat: Driver = {
    name: 'chat',
    async ask(tools, text) {
      const final = await openai.chat.completions.stream({ model: m, messages: [{ role: 'user', content: text }], tools: chatTools(tools) }).finalChatCompletion();
      const choice = final.choices[0]!;
      const calls = (choice.message.tool_calls ?? []).flatMap((c) => (c.type === 'function' ? [{ id: c.id, name: c.function.name, arguments: c.function.arguments }] : []));
      return { calls, finish: choice.finish_reason, text: choice.message.content ?? '' };
    },
    async answer(tools, text, calls, results) {
      const completion = await openai.chat.completions.create({
        model: m,
        tools: chatTools(tools),
        messages: [
          { role: 'user', content: text },
          { role: 'assistant', content: null, tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) },
          ...results.map((r) => ({ role: 'tool' as const, tool_call_id: r.id, content: r.output })),
        ],
      });
      return completion.choices[0]?.message.content ?? '';
    },
  };

  const responseTools = (tools: OfferedTool[]) => tools.map((t) => ({ type: 'function' as const, name: t.name, description: t.description, parameters: params(t), strict: false }));
  const responses: Driver = {
    name: 'responses',
    async ask(tools, text) {
      const final = await openai.responses.stream({ model: m, input: [{ role: 'user', content: text }], tools: responseTools(tools) }).finalResponse();
      const calls = final.output.flatMap((o) => (o.type === 'function_call' ? [{ id: o.call_id, name: o.name, arguments: o.arguments }] : []));
      return { calls, finish: final.status === 'completed' && calls.length ? 'tool_calls' : String(final.status), text: final.output_text };
    },
    async answer(tools, text, calls, results) {
      const response = await openai.responses.create({
        model: m,
        tools: responseTools(tools),
        input: [
          { role: 'user', content: text },
          ...calls.map((c) => ({ type: 'function_call' as const, call_id: c.id, name: c.name, arguments: c.arguments })),
          ...results.map((r) => ({ type: 'function_call_output' as const, call_id: r.id, output: r.output })),
        ],
      });
      return response.output_text;
    },
  };

  const anthropicTools = (tools: OfferedTool[]) => tools.map((t) => ({ name: t.name, description: t.description, input_schema: { ...params(t), type: 'object' as const } }));
  const messages: Driver = {
    name: 'anthropic',
    async ask(tools, text) {
      const final = await anthropic.messages.stream({ model: m, max_tokens: 1024, messages: [{ role: 'user', content: text }], tools: anthropicTools(tools) }).finalMessage();
      const calls = final.content.flatMap((b) => (b.type === 'tool_use' ? [{ id: b.id, name: b.name, arguments: JSON.stringify(b.input) }] : []));
      const said = final.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
      return { calls, finish: final.stop_reason ?? '', text: said };
    },
    async answer(tools, text, calls, results) {
      const message = await anthropic.messages.create({
        model: m,
        max_tokens: 1024,
        tools: anthropicTools(tools),
        messages: [
          { role: 'user', content: text },
          { role: 'assistant', content: calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: JSON.parse(c.arguments) })) },
          { role: 'user', content: results.map((r) => ({ type: 'tool_result', tool_use_id: r.id, content: r.output, ...(r.isError ? { is_error: true } : {}) })) },
        ],
      });
      return message.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    },
  };
  return [chat, responses, messages];
}

/** Runs `fn` once per dialect, each against a fresh server, so call ids start at call_demo_1 every time. */
async function eachDialect(plan: FaultPlan, fn: (d: Driver, model: LocalModel) => Promise<void>): Promise<void> {
  for (const index of [0, 1, 2]) {
    const model = new LocalModel({ tokenDelayMs: 0, plan: () => plan });
    await model.start();
    const d = drivers(model)[index]!;
    try {
      await fn(d, model);
    } catch (err) {
      if (err instanceof Error) err.message = `[${d.name}] ${err.message}`;
      throw err;
    } finally {
      await model.close();
    }
  }
}

const FINISH = { chat: 'tool_calls', responses: 'tool_calls', anthropic: 'tool_use' };
/** Anthropic's ids start toolu_; the model keeps its own number inside. */
const idOf = (d: Driver, n: number) => (d.name === 'anthropic' ? `toolu_call_demo_${n}` : `call_demo_${n}`);

test('every dialect: "what time is it?" calls the offered current_time, with no text', async () => {
  await eachDialect({}, async (d, model) => {
    const { calls, finish, text } = await d.ask([WEATHER, TIME_TOOL], 'what time is it?');
    assert.equal(calls, [{ id: idOf(d, 1), name: 'current_time', arguments: '{}' }]);
    assert.is(finish, FINISH[d.name]);
    assert.is(text, '');
    const rec = model.requests[0]!;
    assert.equal(rec.tools, [WEATHER, asOffered(TIME_TOOL)]);
    assert.equal(rec.messages, [{ role: 'user', content: 'what time is it?' }]);
    assert.is(rec.tokensSent, 0);
  });
});

test('every dialect: the whole round trip, through the demo endpoint, ends in a sentence quoting the result', async () => {
  await eachDialect({}, async (d, model) => {
    const { calls } = await d.ask([TIME_TOOL], 'What TIME is it, please?');
    const res = await fetch(model.toolURL('current_time'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: calls[0]!.arguments });
    const { output } = (await res.json()) as { output: string };
    const text = await d.answer([TIME_TOOL], 'What TIME is it, please?', calls, [{ id: calls[0]!.id, output }]);
    assert.is(text, `The tools answered: current_time: ${output}.`);

    const rec = model.requests[1]!;
    assert.equal(rec.tools, [asOffered(TIME_TOOL)]);
    assert.equal(rec.messages, [
      { role: 'user', content: 'What TIME is it, please?' },
      { role: 'assistant', content: '', toolCalls: [{ id: idOf(d, 1), name: 'current_time', arguments: '{}' }] },
      { role: 'tool', content: output, toolCallId: idOf(d, 1) },
    ]);
    assert.equal(model.toolCalls, [{ name: 'current_time', body: {} }]);
  });
});

test('every dialect: the tools named in the text are called in the order offered, arguments per schema', async () => {
  await eachDialect({}, async (d) => {
    const text = '  Please ping, then Get_Weather — and not get_weather_extra — for Zürich and the rest of this long line  ';
    const { calls, finish } = await d.ask([TIME_TOOL, WEATHER, LOOKUP, PING], text);
    const clipped = text.trim().slice(0, 40);
    assert.equal(calls, [
      // Only the required property; `unit` is optional.
      { id: idOf(d, 1), name: 'get_weather', arguments: JSON.stringify({ city: clipped }) },
      { id: idOf(d, 2), name: 'ping', arguments: '{}' },
    ]);
    assert.is(finish, FINISH[d.name]);

    // Nothing required: nothing is filled. The counter runs on across requests.
    const again = await d.ask([LOOKUP], 'lookup cats');
    assert.equal(again.calls, [{ id: idOf(d, 3), name: 'lookup', arguments: '{}' }]);
  });
});

test('every dialect: without a tool named, the answer is the usual demo text', async () => {
  await eachDialect({}, async (d, model) => {
    const { calls, text, finish } = await d.ask([WEATHER, LOOKUP], 'Is it sometimes raining in lookups?');
    assert.equal(calls, []);
    assert.is(text, demoReply('Is it sometimes raining in lookups?'));
    assert.ok(finish !== FINISH[d.name]);
    // "time" is only a cue when current_time is offered.
    assert.equal((await d.ask([WEATHER], 'what time is it?')).calls, []);
    assert.is(model.requests.length, 2);
  });
});

test('every dialect: a plan that scripts the reply wins over the tools', async () => {
  await eachDialect({ text: 'Scripted.' }, async (d) => {
    const asked = await d.ask([TIME_TOOL], 'what time is it?');
    assert.equal(asked.calls, []);
    assert.is(asked.text, 'Scripted.');
    const call = { id: 'call_x', name: 'current_time', arguments: '{}' };
    assert.is(await d.answer([TIME_TOOL], 'what time is it?', [call], [{ id: 'call_x', output: 'noon' }]), 'Scripted.');
  });
  const scripted = [{ id: 'call_s', name: 'get_weather', arguments: '{"city":"Oslo"}' }];
  await eachDialect({ toolCalls: scripted }, async (d) => {
    const { calls } = await d.ask([TIME_TOOL], 'what time is it?');
    assert.equal(
      calls.map((c) => [c.name, c.arguments]),
      [['get_weather', '{"city":"Oslo"}']],
    );
  });
});

test('every dialect: several results, each under its call name, clipped to 200 characters', async () => {
  await eachDialect({}, async (d, model) => {
    const calls = [
      { id: 'call_a', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { id: 'call_b', name: 'lookup', arguments: '{}' },
    ];
    const long = 'x'.repeat(250);
    const text = await d.answer([WEATHER, LOOKUP], 'weather and lookup', calls, [
      { id: 'call_a', output: 'Sunny, 21 °C' },
      { id: 'call_b', output: long },
    ]);
    assert.is(text, `The tools answered: get_weather: Sunny, 21 °C; lookup: ${'x'.repeat(200)}.`);
    const turns = model.requests[0]!.messages;
    assert.equal(turns[1], { role: 'assistant', content: '', toolCalls: calls });
    assert.equal(turns.slice(2), [
      { role: 'tool', content: 'Sunny, 21 °C', toolCallId: 'call_a' },
      { role: 'tool', content: long, toolCallId: 'call_b' },
    ]);
  });
});

// ------------------------------------------------------------ dialect details

test('anthropic: is_error results say "failed"; text beside results is a user turn after them', async () => {
  const model = new LocalModel({ tokenDelayMs: 0 });
  await model.start();
  const anthropic = new Anthropic({ apiKey: 'x', baseURL: model.origin, maxRetries: 0 });
  try {
    const use = (id: string, name: string, input: object) => ({ type: 'tool_use' as const, id, name, input });
    const assistant = { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'Checking.' }, use('toolu_1', 'get_weather', { city: 'Oslo' }), use('toolu_2', 'lookup', {})] };
    const results = [
      { type: 'tool_result' as const, tool_use_id: 'toolu_1', content: [{ type: 'text' as const, text: 'Rain' }] },
      { type: 'tool_result' as const, tool_use_id: 'toolu_2', content: 'boom', is_error: true },
    ];
    const base = { model: 'm', max_tokens: 100, tools: [{ name: 'lookup', input_schema: { type: 'object' as const } }] };
    const message = await anthropic.messages.create({ ...base, messages: [{ role: 'user', content: 'go' }, assistant, { role: 'user', content: results }] });
    assert.equal(message.content, [{ type: 'text', text: 'The tools answered: get_weather: Rain; lookup failed: boom.' }]);
    const rec = model.requests[0]!;
    assert.equal(rec.tools, [{ name: 'lookup', parameters: { type: 'object' } }]);
    assert.equal(rec.messages, [
      { role: 'user', content: 'go' },
      {
        role: 'assistant',
        content: 'Checking.',
        toolCalls: [
          { id: 'toolu_1', name: 'get_weather', arguments: '{"city":"Oslo"}' },
          { id: 'toolu_2', name: 'lookup', arguments: '{}' },
        ],
      },
      { role: 'tool', content: 'Rain', toolCallId: 'toolu_1' },
      { role: 'tool', content: 'boom', toolCallId: 'toolu_2', isError: true },
    ]);

    // With text after the results the user has spoken last: no continuation, and no lookup named.
    await anthropic.messages.create({ ...base, messages: [{ role: 'user', content: 'go' }, assistant, { role: 'user', content: [...results, { type: 'text', text: 'And now?' }] }] });
    assert.equal(model.requests[1]!.messages.slice(-3), [
      { role: 'tool', content: 'Rain', toolCallId: 'toolu_1' },
      { role: 'tool', content: 'boom', toolCallId: 'toolu_2', isError: true },
      { role: 'user', content: 'And now?' },
    ]);
  } finally {
    await model.close();
  }
});

test('chat and responses: only the latest round of results is answered; junk tools are skipped', async () => {
  const model = new LocalModel({ tokenDelayMs: 0 });
  await model.start();
  const post = async (path: string, body: object) => (await fetch(`${model.baseURL}${path}`, { method: 'POST', body: JSON.stringify(body) })).json();
  try {
    const call = (id: string) => ({ id, type: 'function', function: { name: 'lookup', arguments: '{}' } });
    const chat = (await post('/chat/completions', {
      model: 'm',
      tools: [null, { type: 'custom', custom: { name: 'grammar' } }, { type: 'function', function: { name: 'lookup', parameters: 'junk' } }],
      messages: [
        { role: 'user', content: 'lookup twice' },
        { role: 'assistant', content: 'First.', tool_calls: [call('c1')] },
        { role: 'tool', tool_call_id: 'c1', content: 'old' },
        { role: 'assistant', content: null, tool_calls: [call('c2')] },
        { role: 'tool', tool_call_id: 'c2', content: [{ type: 'text', text: 'new' }] },
      ],
    })) as { choices: Array<{ message: { content: string } }> };
    assert.is(chat.choices[0]?.message.content, 'The tools answered: lookup: new.');
    assert.equal(model.requests[0]!.tools, [{ name: 'lookup' }]);
    assert.equal(model.requests[0]!.messages[1], { role: 'assistant', content: 'First.', toolCalls: [{ id: 'c1', name: 'lookup', arguments: '{}' }] });

    // An assistant message and the calls after it are one turn; array outputs are read as text.
    const response = (await post('/responses', {
      model: 'm',
      tools: [{ type: 'web_search' }, { type: 'function', name: 'lookup', description: 'Looks up' }],
      input: [
        { role: 'user', content: 'lookup' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'On it.' }] },
        { type: 'function_call', call_id: 'c9', name: 'lookup', arguments: '{"q":1}' },
        { type: 'function_call_output', call_id: 'c9', output: [{ type: 'input_text', text: 'found' }] },
      ],
    })) as { output: Array<{ content: Array<{ text: string }> }> };
    assert.is(response.output[0]?.content[0]?.text, 'The tools answered: lookup: found.');
    assert.equal(model.requests[1]!.tools, [{ name: 'lookup', description: 'Looks up' }]);
    assert.equal(model.requests[1]!.messages.slice(1), [
      { role: 'assistant', content: 'On it.', toolCalls: [{ id: 'c9', name: 'lookup', arguments: '{"q":1}' }] },
      { role: 'tool', content: 'found', toolCallId: 'c9' },
    ]);
  } finally {
    await model.close();
  }
});

// ------------------------------------------------------------ the tool endpoint

test('POST /tools/current_time answers the time now, in a zone on request; a bad zone is a 400', async () => {
  const model = new LocalModel();
  await model.start();
  const call = async (body: string) => {
    const res = await fetch(model.toolURL('current_time'), { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: res.status, body: (await res.json()) as { output?: string; error?: string } };
  };
  try {
    assert.is(model.toolURL('current_time'), `${model.origin}/tools/current_time`);
    const before = Date.now();
    const utc = await call('{}');
    assert.is(utc.status, 200);
    assert.match(utc.body.output!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(utc.body.output!) - before) < 5_000);

    const paris = await call('{"timezone":"Europe/Paris"}');
    assert.is(paris.status, 200);
    assert.match(paris.body.output!, /^\d{4}-\d\d-\d\dT\S+Z \(Europe\/Paris: .*\d\d:\d\d:\d\d.*\)$/);

    assert.equal(await call('{"timezone":"Mars/Olympus_Mons"}'), { status: 400, body: { error: 'unknown timezone' } });
    assert.is((await call('')).status, 200, 'an empty body is no arguments');
    assert.is((await call('{oops')).status, 400);
    const unknown = await fetch(`${model.origin}/tools/teleport`, { method: 'POST', body: '{}' });
    assert.is(unknown.status, 404);
    assert.throws(() => model.toolURL('teleport'));

    assert.equal(
      model.toolCalls.map((c) => [c.name, c.body]),
      [
        ['current_time', {}],
        ['current_time', { timezone: 'Europe/Paris' }],
        ['current_time', { timezone: 'Mars/Olympus_Mons' }],
        ['current_time', {}],
        ['current_time', '{oops'],
        ['teleport', {}],
      ],
    );
    assert.is(model.requests.length, 0, 'tool calls are not model requests');
  } finally {
    await model.close();
  }
});

test.run();

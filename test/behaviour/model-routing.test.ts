// MODELS_FILE: the models a client may name, each routed to its own upstream
// and dialect, with fallbacks. Two models on two dialects answer in one
// conversation; a model whose upstream fails with 503 before answering is
// served by its fallback.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LocalModel } from '../../demo/localmodel.js';
import { replyText, startStack, type Stack, writeModelsFile } from '../helpers.js';

const CLAUDE_KEY = 'sk-ant-test-key-for-routing';

function modelsFile(model: LocalModel): string {
  const table = {
    default: 'fast',
    models: {
      fast: { dialect: 'chat', baseURL: model.baseURL, upstreamModel: 'up-fast', prices: { input: 1, output: 2 } },
      claude: { dialect: 'anthropic', baseURL: model.origin, apiKeyEnv: 'TEST_CLAUDE_KEY', upstreamModel: 'up-claude', options: { max_tokens: 77 } },
      flaky: { dialect: 'responses', baseURL: model.baseURL, upstreamModel: 'up-flaky', fallbacks: ['claude'] },
    },
  };
  return writeModelsFile(table);
}

/** The model name an upstream request asked for. */
function upstreamModel(body: unknown): unknown {
  return typeof body === 'object' && body !== null && 'model' in body ? body.model : undefined;
}

let stack: Stack;
test.before(async () => {
  stack = await startStack({
    env: (model) => ({ MODELS_FILE: modelsFile(model), TEST_CLAUDE_KEY: CLAUDE_KEY, UPSTREAM_MAX_RETRIES: '0' }),
    plan: (req) => (upstreamModel(req.body) === 'up-flaky' ? { httpStatus: 503 } : { text: `answer from ${req.dialect}` }),
  });
});
test.after(async () => {
  await stack.close();
});

test('welcome and GET /v1/models list the models of the table, the default first', async () => {
  const c = await stack.connect();
  const welcome = await c.waitFor('welcome');
  assert.equal(welcome.models, [{ id: 'fast', default: true }, { id: 'claude' }, { id: 'flaky' }]);
  const res = await fetch(`${stack.url.replace('ws:', 'http:').replace(/\/ws$/, '')}/v1/models`);
  const list = (await res.json()) as { data: Array<{ id: string }> };
  assert.equal(list.data.map((m) => m.id), ['fast', 'claude', 'flaky']);
});

test('two models on two dialects answer in one conversation, each from its own upstream, with the whole history', async () => {
  const c = await stack.connect();
  const conversationId = 'routing-two';
  const before = stack.model.requests.length;
  c.send({ type: 'send', conversationId, text: 'hello default' });
  const first = await c.next('reply.end');
  c.send({ type: 'send', conversationId, text: 'hello claude', options: { model: 'claude' } });
  const second = await c.next('reply.end');
  assert.is(replyText(c.frames, first.replyId), 'answer from chat');
  assert.is(replyText(c.frames, second.replyId), 'answer from anthropic');
  const starts = c.frames.filter((f) => f.type === 'reply.start');
  assert.equal(starts.map((s) => s.model), ['fast', 'claude'], 'reply.start names the model the client chose');

  const [chat, anthropic] = stack.model.requests.slice(before);
  assert.is(chat?.dialect, 'chat');
  assert.is(upstreamModel(chat?.body), 'up-fast');
  assert.is(anthropic?.dialect, 'anthropic');
  assert.is(upstreamModel(anthropic?.body), 'up-claude');
  // The SDK decides how the key travels (x-api-key, or a bearer token).
  const auth = [anthropic?.headers['x-api-key'], anthropic?.headers.authorization].join(' ');
  assert.ok(auth.includes(CLAUDE_KEY), 'the key comes from the variable the table names');
  const body = anthropic?.body;
  assert.is(typeof body === 'object' && body !== null && 'max_tokens' in body ? body.max_tokens : undefined, 77, "the route's options go into the request");
  assert.equal(
    anthropic!.messages.filter((m) => m.role !== 'system').map((m) => [m.role, m.content]),
    [
      ['user', 'hello default'],
      ['assistant', 'answer from chat'],
      ['user', 'hello claude'],
    ],
    'the other dialect sees the history the first one wrote',
  );
});

test('a 503 before the first byte falls back to the next model: the reply streams from it, and the metrics count it', async () => {
  const c = await stack.connect();
  const before = stack.model.requests.length;
  c.send({ type: 'send', conversationId: 'routing-fallback', text: 'anyone there?', options: { model: 'flaky' } });
  const end = await c.next('reply.end');
  assert.is(end.finishReason, 'stop', JSON.stringify(end.error));
  assert.is(replyText(c.frames, end.replyId), 'answer from anthropic');
  const tried = stack.model.requests.slice(before).map((r) => [r.dialect, upstreamModel(r.body)]);
  assert.equal(tried, [
    ['responses', 'up-flaky'],
    ['anthropic', 'up-claude'],
  ]);
  const metrics = await (await fetch(`http://127.0.0.1:${stack.relay.port}/metrics`)).text();
  assert.match(metrics, /relay_upstream_fallbacks_total\{from="flaky",to="claude"\} 1/);
});

test('the prices of the table turn usage into cost, per model', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'routing-cost', text: 'what does this cost?' });
  const end = await c.next('reply.end');
  assert.is(end.usage?.source, 'upstream');
  const metrics = await (await fetch(`http://127.0.0.1:${stack.relay.port}/metrics`)).text();
  const cost = Number(/relay_upstream_cost_usd_total\{model="fast"\} ([0-9.e-]+)/.exec(metrics)?.[1]);
  // At least this reply's cost ($1 per million prompt tokens, $2 per million completion tokens).
  assert.ok(cost >= (end.usage!.promptTokens * 1 + end.usage!.completionTokens * 2) / 1e6, `cost ${cost}`);
});

test('a model the table does not list is refused with forbidden, and nothing goes upstream', async () => {
  const c = await stack.connect();
  const before = stack.model.requests.length;
  c.send({ type: 'send', ref: 'r1', conversationId: 'routing-unknown', text: 'hi', options: { model: 'gpt-unknown' } });
  const err = await c.next('error', (e) => e.ref === 'r1');
  assert.is(err.code, 'forbidden');
  assert.is(stack.model.requests.length, before);
});

test('on Anthropic, a conversation of several people names each speaker in the text', async () => {
  const a = await stack.connect();
  const ann = (await a.waitFor('welcome')).user;
  // Anonymous names are drawn from 256: two people who happen to share one cannot be told apart by it.
  let b = await stack.connect();
  for (let tries = 0; (await b.waitFor('welcome')).user.name === ann.name && tries < 10; tries++) b = await stack.connect();
  const conversationId = 'routing-speakers';
  const bob = (await b.waitFor('welcome')).user;
  a.send({ type: 'send', conversationId, text: 'I am first', reply: false });
  await a.next('message');
  b.send({ type: 'send', conversationId, text: 'and I am second', options: { model: 'claude' } });
  await b.next('reply.end');
  const request = stack.model.requests.at(-1)!;
  assert.equal(
    request.messages.filter((m) => m.role === 'user').map((m) => m.content),
    [`${ann.name}: I am first`, `${bob.name}: and I am second`],
  );
});

test.run();

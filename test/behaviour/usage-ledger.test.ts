// The usage ledger: one entry per reply however it ends (stop, length, tool
// calls, content filter, cancelled, failed, dropped from the queue), each with
// the tokens its reply.end reported and the cost at the table's prices; the
// user's own totals (`usage`), the operator's (GET /admin/usage, JSON and CSV)
// and the cost quota, all from those entries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FaultPlan, LocalModel, RecordedRequest } from '../../demo/localmodel.js';
import type { ServerFrameOf } from '../../shared/protocol.js';
import type { Store } from '../../server/backend/store.js';
import { WebSocket } from 'ws';
import { RelayClient } from '../../client/index.js';
import { backend, eventually, startStack, type Stack, type TestClient, writeModelsFile } from '../helpers.js';

const ADMIN = 'ledger-admin-token-0123456789';
const PRICES = { input: 1, output: 2 };
const LONG = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ');
const FILTERED = [
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Some"},"finish_reason":null}]}',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}',
  'data: [DONE]',
].join('\n\n') + '\n\n';

const PLANS: Record<string, FaultPlan> = {
  stop: { text: 'a short answer' },
  length: { text: LONG },
  tools: { text: '', toolCalls: [{ id: 'call_1', name: 'lookup', arguments: '{"q":"x"}' }] },
  filter: { replay: FILTERED },
  cancel: { text: LONG, tokenDelayMs: 20 },
  error: { httpStatus: 500 },
  slow: { text: LONG, tokenDelayMs: 5 },
};

function modelsFile(model: LocalModel): string {
  const table = { default: 'priced', models: { priced: { dialect: 'chat', baseURL: model.baseURL, upstreamModel: 'up-priced', prices: PRICES } } };
  return writeModelsFile(table);
}

const planOf = (req: RecordedRequest) => PLANS[req.messages.at(-1)?.content.split(' ')[0] ?? ''];

let stack: Stack;
test.before(async () => {
  stack = await startStack({ env: (model) => ({ ADMIN_TOKEN: ADMIN, MODELS_FILE: modelsFile(model), UPSTREAM_MAX_RETRIES: '0', MAX_QUEUED_REPLIES: '4' }), plan: planOf });
});
test.after(async () => {
  await stack.close();
});

const http = (path: string) => `http://127.0.0.1:${stack.relay.port}${path}`;
const admin = (query: string, token = ADMIN) => fetch(http(`/admin/usage${query}`), { headers: { authorization: `Bearer ${token}` } });

interface Row {
  replies: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  estimatedReplies: number;
  finishReasons: Record<string, number>;
}

async function rows(query: string): Promise<Array<Row & Record<string, unknown>>> {
  const res = await admin(query);
  assert.is(res.status, 200);
  return ((await res.json()) as { rows: Array<Row & Record<string, unknown>> }).rows;
}

const cost = (u: { promptTokens: number; completionTokens: number }) => (u.promptTokens * PRICES.input + u.completionTokens * PRICES.output) / 1e6;

/** Send in a conversation of its own and wait for the end of the reply it asks for. */
async function ask(c: TestClient, conversationId: string, text: string): Promise<ServerFrameOf<'reply.end'>> {
  c.send({ type: 'send', conversationId, text, ...(text.startsWith('length') ? { options: { maxTokens: 3 } } : {}), ...(text.startsWith('tools') ? { tools: [{ name: 'lookup', parameters: { type: 'object' } }] } : {}) });
  const message = await c.next('message', (m) => m.conversationId === conversationId);
  if (text.startsWith('cancel')) {
    await c.next('reply.delta', (d) => d.replyId === message.replyId);
    c.send({ type: 'cancel', conversationId, replyId: message.replyId });
  }
  return c.next('reply.end', (e) => e.replyId === message.replyId);
}

test('every way a reply ends writes one entry with the usage its reply.end reported, and the user\'s totals add up', async () => {
  const c = await stack.connect();
  const user = (await c.waitFor('welcome')).user.id;
  const run = `r${Date.now()}`;
  const ends = new Map<string, ServerFrameOf<'reply.end'>>();
  for (const kind of ['stop', 'length', 'tools', 'filter', 'cancel', 'error']) ends.set(kind, await ask(c, `${run}-${kind}`, `${kind} please`));
  assert.equal([...ends.values()].map((e) => e.finishReason), ['stop', 'length', 'tool_calls', 'content_filter', 'cancelled', 'error']);

  // A queued reply cancelled before it ran: billed for nothing, but listed.
  const queue = `${run}-queued`;
  c.send({ type: 'send', conversationId: queue, text: 'slow first' });
  c.send({ type: 'send', conversationId: queue, text: 'stop second' });
  const second = await c.next('message', (m) => m.conversationId === queue && m.message.text === 'stop second');
  c.send({ type: 'cancel', conversationId: queue, replyId: second.replyId });
  ends.set('queued', await c.next('reply.end', (e) => e.replyId === second.replyId));
  await c.next('reply.end', (e) => e.conversationId === queue && e.replyId !== second.replyId);

  const byConversation = new Map((await rows(`?group_by=conversation&user=${user}`)).map((r) => [String(r.conversation), r]));
  for (const [kind, end] of ends) {
    const row = byConversation.get(`${run}-${kind}`);
    const usage = end.usage ?? { promptTokens: 0, completionTokens: 0 };
    assert.equal(row?.finishReasons, kind === 'queued' ? { stop: 1, cancelled: 1 } : { [end.finishReason]: 1 }, kind);
    if (kind === 'queued') continue;
    assert.is(row!.replies, 1, kind);
    assert.equal([row!.promptTokens, row!.completionTokens], [usage.promptTokens, usage.completionTokens], `${kind}: the tokens its reply.end reported`);
    assert.ok(Math.abs(row!.costUsd - cost(usage)) < 1e-12, `${kind}: cost at the table's prices`);
  }
  assert.ok(ends.get('cancel')!.usage!.completionTokens > 0, 'a cancelled reply is billed for what it generated');
  assert.is(ends.get('filter')!.usage?.source, 'upstream');

  // The user's totals: the sum of every reply.end this client saw, from the admin endpoint and from the usage frame.
  const seen = c.frames.filter((f): f is ServerFrameOf<'reply.end'> => f.type === 'reply.end');
  const sum = seen.reduce((s, e) => ({ promptTokens: s.promptTokens + (e.usage?.promptTokens ?? 0), completionTokens: s.completionTokens + (e.usage?.completionTokens ?? 0) }), { promptTokens: 0, completionTokens: 0 });
  const [mine] = await rows(`?group_by=user&user=${user}`);
  assert.equal([mine?.user, mine?.replies, mine?.promptTokens, mine?.completionTokens], [user, seen.length, sum.promptTokens, sum.completionTokens]);
  c.send({ type: 'usage', ref: 'u1' });
  const usage = await c.next('usage', (f) => f.ref === 'u1');
  assert.equal([usage.today.replies, usage.today.promptTokens, usage.today.completionTokens], [seen.length, sum.promptTokens, sum.completionTokens]);
  assert.equal(usage.window.completionTokens, sum.completionTokens);
  assert.ok(Math.abs(usage.today.costUsd - cost(sum)) < 1e-9);
  assert.is(usage.window.tokenQuota, 200_000);
  assert.ok(usage.window.startsAt <= Date.now() && Date.now() < usage.window.endsAt);

  const metrics = await (await fetch(http('/metrics'))).text();
  assert.match(metrics, /relay_usage_tokens_total\{model="priced",source="upstream",kind="completion"\} [1-9]/);
  assert.match(metrics, /relay_usage_cost_usd_total\{model="priced",source="upstream"\} [0-9.e-]+/);
});

test('GET /admin/usage: by model, as CSV, within a period; without the token 401, with bad parameters 400', async () => {
  const c = await stack.connect();
  const user = (await c.waitFor('welcome')).user.id;
  const end = await ask(c, `csv-${Date.now()}`, 'stop now');
  const byModel = await rows(`?group_by=model&user=${user}`);
  assert.equal(byModel.map((r) => [r.model, r.replies, r.completionTokens]), [['priced', 1, end.usage!.completionTokens]]);

  const csv = await admin(`?group_by=user&format=csv&user=${user}`);
  assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
  const lines = (await csv.text()).trim().split('\r\n');
  assert.equal(lines[0], 'user,replies,promptTokens,completionTokens,cachedTokens,reasoningTokens,costUsd,estimatedReplies');
  assert.equal(lines[1]!.split(',').slice(0, 4), [user, '1', String(end.usage!.promptTokens), String(end.usage!.completionTokens)]);

  const past = new Date(Date.now() - 3_600_000).toISOString();
  const earlier = new Date(Date.now() - 7_200_000).toISOString();
  assert.equal(await rows(`?from=${earlier}&to=${past}&user=${user}`), [], 'nothing in a period before the reply');

  assert.is((await admin('')).status, 200);
  assert.is((await fetch(http('/admin/usage'))).status, 401);
  assert.is((await admin('', 'wrong-token-wrong-token')).status, 401);
  for (const bad of ['?group_by=planet', '?from=yesterday', `?from=${past}&to=${earlier}`, '?format=xml', '?groupby=user', '?user=a&user=b']) {
    const res = await admin(bad);
    assert.is(res.status, 400, bad);
    assert.type(((await res.json()) as { error: string }).error, 'string');
  }
});

test('the client library reads the user\'s usage', async () => {
  const client = new RelayClient({ url: stack.url, WebSocket });
  try {
    const welcome = await client.connect();
    const before = await client.usage();
    const c = client.conversation(`lib-${Date.now()}`);
    const done = new Promise<void>((resolve) => c.on('reply.end', () => resolve()));
    await c.send('stop there');
    await done;
    const after = await client.usage();
    assert.is(after.today.replies, before.today.replies + 1);
    assert.ok(after.today.completionTokens > before.today.completionTokens);
    assert.ok(welcome.user.id);
  } finally {
    client.close();
  }
});

test('a conversation whose text is gone (expired, forgotten) is still billed', async () => {
  let store: Store | undefined;
  const own = await startStack({
    // Each backend's own way to let a conversation go: idle in memory, expired on Redis, past its retention on disk.
    env: (model) => ({ ADMIN_TOKEN: ADMIN, MODELS_FILE: modelsFile(model), CONVERSATION_IDLE_MS: '50', REDIS_RETENTION_MS: '1000', DATA_RETENTION_DAYS: '0.00001', DATA_SWEEP_MS: '100' }),
    plan: () => ({ text: 'soon forgotten' }),
    wrapStore: (s) => (store = s),
  });
  try {
    const c = await own.connect();
    c.send({ type: 'send', conversationId: 'fleeting', text: 'remember me' });
    const end = await c.next('reply.end');
    c.send({ type: 'leave', conversationId: 'fleeting' });
    await c.next('left');
    // Nothing may read the conversation meanwhile: in memory (and on disk) a read keeps it alive.
    const gone = async () => {
      if (own.relay.stats().storedConversations > 0) return false;
      if (backend() === 'redis') return (await store!.log.snapshot('fleeting')).history.length === 0;
      if (backend() === 'sqlite') return /relay_data_conversations 0\b/.test(await (await fetch(`http://127.0.0.1:${own.relay.port}/metrics`)).text());
      return true;
    };
    await eventually(gone, 'the conversation is gone');
    assert.equal((await store!.log.snapshot('fleeting')).history, []);
    const res = await fetch(`http://127.0.0.1:${own.relay.port}/admin/usage?group_by=conversation`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const body = (await res.json()) as { rows: Array<{ conversation: string; replies: number; completionTokens: number }> };
    assert.equal(body.rows.map((r) => [r.conversation, r.replies, r.completionTokens]), [['fleeting', 1, end.usage!.completionTokens]]);
  } finally {
    await own.close();
  }
});

test('a cost quota refuses new replies once the window\'s ledger reaches it', async () => {
  const own = await startStack({ env: (model) => ({ MODELS_FILE: modelsFile(model), COST_QUOTA_USD: '0.000001' }), plan: () => ({ text: 'cheap but not free' }) });
  try {
    const c = await own.connect();
    c.send({ type: 'send', conversationId: 'quota', text: 'first' });
    const first = await c.next('reply.end');
    assert.ok(cost(first.usage!) >= 0.000001, 'the first reply alone spends the quota');
    c.send({ type: 'send', ref: 's2', conversationId: 'quota', text: 'second' });
    const refused = await c.next('error', (e) => e.ref === 's2');
    assert.is(refused.code, 'quota_exceeded');
    c.send({ type: 'usage', ref: 'u' });
    const usage = await c.next('usage', (f) => f.ref === 'u');
    assert.is(usage.window.costQuotaUsd, 0.000001);
    assert.is(usage.window.replies, 1);
  } finally {
    await own.close();
  }
});

test.run();

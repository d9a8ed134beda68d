// Background replies (MODELS_FILE `background: true`, the Responses dialect)
// on three real relay processes and one Redis: the node running a reply is
// killed mid-stream and another re-attaches to the same upstream response,
// so every member sees one uninterrupted reply; a cancel stops the
// generation upstream, not only the stream; an upstream that will not take
// the reply back leaves today's error end.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalModel, type FaultPlan } from '../../demo/localmodel.js';
import { NODE_LEASE_MS, redisAvailable, startNode, stop, type Node } from '../redis.js';
import { eventually, replyText, TestClient, writeModelsFile } from '../helpers.js';

const TEXT = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
const PLANS: Record<string, FaultPlan> = {
  long: { text: TEXT, tokenDelayMs: 25 },
  refuse: { text: TEXT, tokenDelayMs: 25, refuseReattach: true },
  short: { text: 'a short answer', tokenDelayMs: 5 },
};

let model: LocalModel;
let nodes: Node[] = [];
const clients: TestClient[] = [];
const available = await redisAvailable();

function modelsFile(): string {
  const table = { default: 'bg', models: { bg: { dialect: 'responses', baseURL: model.baseURL, upstreamModel: 'up-bg', background: true } } };
  return writeModelsFile(table);
}

test.before(async () => {
  if (!available) return;
  model = new LocalModel({ tokenDelayMs: 25, plan: (req) => PLANS[req.messages.at(-1)?.content ?? ''] });
  await model.start();
  const prefix = `background-${randomUUID()}:`;
  const env = { MODELS_FILE: modelsFile() };
  nodes = await Promise.all([0, 1, 2].map(() => startNode(model, prefix, undefined, env)));
});

test.after(async () => {
  for (const c of clients) c.kill();
  await Promise.all(nodes.map(stop));
  await model?.close();
});

async function member(node: Node, conversationId: string): Promise<TestClient> {
  const c = await TestClient.connect(node.url);
  clients.push(c);
  c.send({ type: 'join', conversationId });
  await c.next('joined', (f) => f.conversationId === conversationId);
  return c;
}

/** Start a reply from `sender` and wait until `watcher` has seen `deltas` of it; the upstream response's id. */
async function streaming(sender: TestClient, watcher: TestClient, conversationId: string, text: string, deltas: number) {
  sender.send({ type: 'send', conversationId, text });
  const start = await watcher.next('reply.start');
  for (let i = 0; i < deltas; i++) await watcher.next('reply.delta', (d) => d.replyId === start.replyId);
  const responseId = model.lastBackgroundId();
  assert.ok(responseId, 'the reply runs as a background response');
  return { replyId: start.replyId, responseId: responseId! };
}

{
  const it = available ? test : test.skip;

  it('kill -9 of the node running a background reply: another node re-attaches, every member sees one uninterrupted reply', async () => {
    const victim = nodes[0]!;
    const a = await member(victim, 'bg-crash');
    const b = await member(nodes[1]!, 'bg-crash');
    const { replyId, responseId } = await streaming(a, b, 'bg-crash', 'long', 5);
    victim.child.kill('SIGKILL');
    const end = await b.next('reply.end', (e) => e.replyId === replyId, 20 * NODE_LEASE_MS);
    assert.is(end.finishReason, 'stop');
    assert.is(end.error, undefined);
    assert.is(replyText(b.frames, replyId), TEXT, 'each token once, none missing');
    assert.is(b.frames.filter((f) => f.type === 'reply.start' && f.replyId === replyId).length, 1);
    assert.is(b.frames.filter((f) => f.type === 'reply.end' && f.replyId === replyId).length, 1);
    const seqs = b.events('bg-crash').map((f) => f.seq);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'in order, nothing doubled');
    const upstream = model.background(responseId);
    assert.is(upstream?.status, 'completed');
    assert.ok((upstream?.attaches ?? 0) >= 1, 'the new node re-attached to the same response');
    assert.is(upstream?.cancelRequests, 0);
    // A late joiner's history has the reply whole.
    const late = await member(nodes[2]!, 'bg-crash');
    const joined = late.frames.find((f) => f.type === 'joined');
    assert.is(joined?.type === 'joined' && joined.history.find((m) => m.id === replyId)?.text, TEXT);
  });

  it('cancel stops the background response upstream: its generation ends, not only the stream', async () => {
    const c = await member(nodes[1]!, 'bg-cancel');
    const { replyId, responseId } = await streaming(c, c, 'bg-cancel', 'long', 3);
    c.send({ type: 'cancel', conversationId: 'bg-cancel', replyId });
    assert.is((await c.next('reply.end', (e) => e.replyId === replyId)).finishReason, 'cancelled');
    await eventually(() => model.background(responseId)?.status === 'cancelled', 'the upstream response cancelled');
    const generated = model.background(responseId)!.tokensGenerated;
    assert.ok(generated < 60);
    // Long enough for several more of its tokens: another reply streams to its end meanwhile.
    const d = await member(nodes[2]!, 'bg-after');
    d.send({ type: 'send', conversationId: 'bg-after', text: 'long' });
    await d.next('reply.end');
    assert.is(model.background(responseId)!.tokensGenerated, generated, 'no token generated after the cancel');
  });

  it('an upstream that cannot take the reply back: it ends with an error for everyone, as without background mode', async () => {
    const victim = nodes[1]!;
    const a = await member(victim, 'bg-refused');
    const b = await member(nodes[2]!, 'bg-refused');
    const { replyId } = await streaming(a, b, 'bg-refused', 'refuse', 5);
    victim.child.kill('SIGKILL');
    const end = await b.next('reply.end', (e) => e.replyId === replyId, 20 * NODE_LEASE_MS);
    assert.is(end.finishReason, 'error');
    assert.is(end.error?.code, 'internal');
    assert.match(end.error?.message ?? '', 'lost its node');
    assert.is(b.frames.filter((f) => f.type === 'reply.end' && f.replyId === replyId).length, 1);
    // The conversation goes on.
    b.send({ type: 'send', conversationId: 'bg-refused', text: 'short' });
    const next = await b.next('reply.end', (e) => e.replyId !== replyId);
    assert.is(next.finishReason, 'stop');
  });
}

test.run();

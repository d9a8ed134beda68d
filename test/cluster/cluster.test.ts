// Many relay nodes on one Redis: three real relay processes (server/main.ts)
// on port 0, one built-in model in this process as their upstream.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalModel, type FaultPlan } from '../../demo/localmodel.js';
import { NODE_LEASE_MS, redisAvailable, startNode, stop, type Node } from '../redis.js';
import { eventually, replyText, TestClient } from '../helpers.js';

const TEXT = Array.from({ length: 40 }, (_, i) => `token${i}`).join(' ');
let plan: (req: { messages: Array<{ content: string }> }) => FaultPlan = () => ({ text: TEXT, tokenDelayMs: 15 });
let model: LocalModel;
let nodes: Node[] = [];
const clients: TestClient[] = [];
const available = await redisAvailable();

async function client(node: Node): Promise<TestClient> {
  const c = await TestClient.connect(node.url);
  clients.push(c);
  return c;
}

test.before(async () => {
  if (!available) return;
  model = new LocalModel({ tokenDelayMs: 15, plan: (req) => plan(req) });
  await model.start();
  const prefix = `cluster-${randomUUID()}:`;
  const env = { ADMIN_TOKEN, SESSION_SECRET: 'cluster-session-secret-0123456789abcdef' };
  nodes = await Promise.all([startNode(model, prefix, undefined, env), startNode(model, prefix, undefined, env), startNode(model, prefix, undefined, env)]);
});

test.after(async () => {
  for (const c of clients) c.kill();
  await Promise.all(nodes.map(stop));
  await model?.close();
});

const ADMIN_TOKEN = 'cluster-admin-token-0123456789';

/** The usage ledger's totals for one conversation, as any node's /admin/usage answers them. */
async function billed(node: Node, conversationId: string) {
  const url = node.url.replace('ws://', 'http://').replace(/\/ws$/, '/admin/usage?group_by=conversation');
  const body = (await (await fetch(url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as {
    rows: Array<{ conversation: string; replies: number; completionTokens: number; estimatedReplies: number; finishReasons: Record<string, number> }>;
  };
  return body.rows.find((r) => r.conversation === conversationId);
}

const strip = (c: TestClient, room: string) => c.events(room).map((f) => JSON.stringify({ ...f, ref: undefined }));

{
  // Without Redis the tests are registered as skipped: the closing line says so.
  const it = available ? test : test.skip;
  it('clients of one room on three nodes see identical events with identical seq', async () => {
    const [a, b, c] = [await client(nodes[0]!), await client(nodes[1]!), await client(nodes[2]!)];
    for (const x of [a, b, c]) {
      x.send({ type: 'join', conversationId: 'same' });
      await x.next('joined');
    }
    b.send({ type: 'send', conversationId: 'same', text: 'hello cluster' });
    for (const x of [a, b, c]) await x.next('reply.end');
    const view = strip(a, 'same');
    assert.ok(view.length > 10);
    assert.equal(strip(b, 'same'), view);
    assert.equal(strip(c, 'same'), view);
    assert.is(replyText(c.frames), TEXT);
    // Presence lists the members of every node.
    await eventually(() => a.frames.some((f) => f.type === 'presence' && f.members.length === 3), 'presence of all three');
  });

  it('a late joiner on another node gets the same snapshot; idempotent send holds across nodes', async () => {
    const a = await client(nodes[0]!);
    a.send({ type: 'send', conversationId: 'late', text: 'q', clientMessageId: 'cm-1' });
    const original = await a.next('message');
    await a.next('reply.end');
    const c = await client(nodes[2]!);
    c.send({ type: 'send', conversationId: 'late', text: 'q', clientMessageId: 'cm-1', ref: 'retry' });
    const echoed = await c.next('message', (m) => m.ref === 'retry');
    assert.is(echoed.message.id, original.message.id);
    const joined = await c.waitFor('joined');
    assert.equal(joined.history.map((m) => m.text), ['q', TEXT]);
  });

  it('cancel on one node stops a reply generating on another; the upstream is aborted', async () => {
    plan = () => ({ text: TEXT, stallAfterTokens: 3 });
    const a = await client(nodes[0]!);
    const c = await client(nodes[2]!);
    c.send({ type: 'join', conversationId: 'cancel-x' });
    await c.next('joined');
    const before = model.requests.length;
    a.send({ type: 'send', conversationId: 'cancel-x', text: 'go' });
    for (let i = 0; i < 3; i++) await c.next('reply.delta');
    c.send({ type: 'cancel', conversationId: 'cancel-x' });
    const end = await c.next('reply.end');
    assert.is(end.finishReason, 'cancelled');
    assert.is((await a.next('reply.end')).finishReason, 'cancelled');
    const req = model.requests[before]!;
    await req.closed;
    assert.ok(req.aborted, 'the generating node aborted its upstream request');
    plan = () => ({ text: TEXT, tokenDelayMs: 15 });
  });

  it('resume on a different node after an abrupt disconnect: nothing lost, nothing doubled', async () => {
    const a = await client(nodes[0]!);
    a.send({ type: 'send', conversationId: 'move', text: 'go' });
    const start = await a.next('reply.start');
    for (let i = 0; i < 8; i++) await a.next('reply.delta');
    a.kill();
    const seen = a.events('move');
    const b = await client(nodes[1]!);
    b.send({ type: 'join', conversationId: 'move', since: seen.at(-1)!.seq });
    await b.next('reply.end');
    const all = [...seen, ...b.events('move')];
    const seqs = all.map((f) => f.seq);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `strictly increasing: ${seqs.join(',')}`);
    assert.is(replyText(all, start.replyId), TEXT);
  });

  it('delete on one node, while another node streams the reply: members on every node are told, the upstream is aborted, and no node writes it again', async () => {
    plan = () => ({ text: TEXT, stallAfterTokens: 3 });
    const owner = await client(nodes[0]!);
    const far = await client(nodes[1]!);
    const third = await client(nodes[2]!);
    owner.send({ type: 'send', conversationId: 'gone-x', text: 'mine', reply: false });
    await owner.next('message');
    for (const x of [far, third]) {
      x.send({ type: 'join', conversationId: 'gone-x' });
      await x.next('joined');
    }
    const before = model.requests.length;
    far.send({ type: 'send', conversationId: 'gone-x', text: 'go' });
    await third.next('reply.delta');
    owner.send({ type: 'delete', conversationId: 'gone-x' });
    for (const x of [owner, far, third]) assert.is((await x.next('left', (f) => f.conversationId === 'gone-x')).reason, 'deleted');
    const req = model.requests[before]!;
    await req.closed;
    assert.ok(req.aborted, 'the node that ran the reply aborted its upstream request');
    third.send({ type: 'join', conversationId: 'gone-x', ref: 'back' });
    const back = await third.answerTo('back');
    assert.ok(back.type === 'error' && back.code === 'not_found', 'every node knows it is gone');
    plan = () => ({ text: TEXT, tokenDelayMs: 15 });
  });

  it('a user taken out on one node loses their sockets on every node', async () => {
    const owner = await client(nodes[0]!);
    const guest = await client(nodes[1]!);
    const welcome = await guest.waitFor('welcome');
    // The same anonymous user on a third node, brought back by its session token.
    const again = await TestClient.connect(nodes[2]!.url, { hello: false });
    clients.push(again);
    again.send({ type: 'hello', token: welcome.sessionToken });
    assert.is((await again.next('welcome')).user.id, welcome.user.id);
    const bystander = await client(nodes[2]!);
    owner.send({ type: 'send', conversationId: 'out-x', text: 'mine', reply: false });
    await owner.next('message');
    for (const x of [guest, again, bystander]) {
      x.send({ type: 'join', conversationId: 'out-x' });
      await x.next('joined');
    }
    owner.send({ type: 'remove', conversationId: 'out-x', userId: welcome.user.id });
    for (const x of [guest, again]) assert.is((await x.next('left', (f) => f.conversationId === 'out-x')).reason, 'removed');
    owner.send({ type: 'send', conversationId: 'out-x', text: 'still here?', reply: false });
    await bystander.next('message', (m) => m.message.text === 'still here?');
    for (const x of [guest, again]) assert.not.ok(x.frames.some((f) => f.type === 'message' && f.message.text === 'still here?'), 'a removed socket hears nothing more');
  });

  it('kill -9 of the generating node: everyone sees the reply end within the lease; the queue moves on; its clients resume elsewhere', async () => {
    plan = (req) => (req.messages.at(-1)!.content === 'first' ? { text: TEXT, stallAfterTokens: 5 } : { text: 'the queued one ran' });
    const victim = nodes[0]!;
    const a = await client(victim);
    const b = await client(nodes[1]!);
    b.send({ type: 'join', conversationId: 'crash' });
    await b.next('joined');
    a.send({ type: 'send', conversationId: 'crash', text: 'first' });
    const start = await b.next('reply.start');
    for (let i = 0; i < 5; i++) await b.next('reply.delta');
    b.send({ type: 'send', conversationId: 'crash', text: 'second' });
    const queued = await b.next('message', (m) => m.message.text === 'second');

    await eventually(() => b.frames.some((f) => f.type === 'presence' && f.members.length === 2), 'presence of both');
    const killedAt = b.frames.length;
    victim.child.kill('SIGKILL');
    const end = await b.next('reply.end', (e) => e.replyId === start.replyId, 10 * NODE_LEASE_MS);
    assert.is(end.finishReason, 'error');
    assert.is(end.error?.code, 'internal');
    const next = await b.next('reply.start', (s) => s.replyId === queued.replyId, 10 * NODE_LEASE_MS);
    const nextEnd = await b.next('reply.end', (e) => e.replyId === next.replyId);
    assert.is(nextEnd.finishReason, 'stop');
    assert.is(replyText(b.frames, next.replyId), 'the queued one ran');
    // The dead node's member drops out of presence once its heartbeat lapses.
    const me = (await b.waitFor('welcome')).user.id;
    const alone = () => b.frames.slice(killedAt).find((f) => f.type === 'presence' && f.members.length === 1);
    await eventually(() => alone() !== undefined, 'presence without the dead node\'s member', 10 * NODE_LEASE_MS);
    const gone = alone();
    assert.equal(gone?.type === 'presence' && gone.members.map((m) => m.id), [me]);

    // The dead node's client reconnects to a live node and catches up from where it was.
    await a.closed;
    const seen = a.events('crash');
    const back = await client(nodes[2]!);
    back.send({ type: 'join', conversationId: 'crash', since: seen.at(-1)!.seq });
    await back.next('reply.end', (e) => e.replyId === next.replyId);
    const all = [...seen, ...back.events('crash')];
    const seqs = all.map((f) => f.seq);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'nothing doubled');
    assert.is(replyText(all, start.replyId), replyText(b.frames, start.replyId), 'the interrupted reply, whole');
    assert.is(replyText(all, next.replyId), 'the queued one ran');

    // Each reply is billed once: the lost one (by the node that ended it, for what it had streamed) and the queued one.
    for (const node of [nodes[1]!, nodes[2]!]) {
      const bill = await billed(node, 'crash');
      assert.equal(bill?.finishReasons, { error: 1, stop: 1 });
      assert.is(bill?.replies, 2);
      assert.ok(bill!.estimatedReplies >= 1, 'the lost reply is counted by the relay');
      assert.ok(bill!.completionTokens >= 5, 'what the lost reply streamed is billed');
    }
    plan = () => ({ text: TEXT, tokenDelayMs: 15 });
  });
}

test.run();

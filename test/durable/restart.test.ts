// The embedded store across a crash: real relay processes (npm start's
// default store) on one data directory, killed with SIGKILL mid-reply and
// started again. What was acknowledged is there; the interrupted reply is
// ended once, as interrupted, with what it had written; the queue runs;
// resuming clients get every event or a clean reset; the ledger holds each
// reply once. And the data directory is one process's only.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalModel, type FaultPlan, type RecordedRequest } from '../../demo/localmodel.js';
import { replyText, TestClient } from '../helpers.js';
import { spawnRelay, startRelayProcess, stop, type Node } from '../process.js';

const ADMIN = 'restart-admin-token-0123456789';
const LONG = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
const PLANS: Record<string, FaultPlan> = {
  stall: { text: LONG, tokenDelayMs: 15, stallAfterTokens: 6 },
  queued: { text: 'the queued reply ran after the restart' },
};
const planOf = (req: RecordedRequest): FaultPlan => PLANS[req.messages.at(-1)?.content ?? ''] ?? { text: 'a complete answer' };

let model: LocalModel;
let dataDir: string;
const nodes: Node[] = [];
const clients: TestClient[] = [];

test.before(async () => {
  model = new LocalModel({ tokenDelayMs: 2, plan: planOf });
  await model.start();
  dataDir = mkdtempSync(join(tmpdir(), 'relay-restart-'));
});
test.after(async () => {
  for (const c of clients) c.kill();
  await Promise.all(nodes.map(stop));
  await model.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function node(env: Record<string, string> = {}): Promise<Node> {
  const n = await startRelayProcess(model, { DATA_DIR: dataDir, ADMIN_TOKEN: ADMIN, ...env });
  nodes.push(n);
  return n;
}

async function client(n: Node): Promise<TestClient> {
  const c = await TestClient.connect(n.url);
  clients.push(c);
  return c;
}

test('kill -9 mid-reply, start again: history, the interrupted reply, the queue, resumes and the ledger are all consistent', async () => {
  const first = await node();
  const c = await client(first);

  // A conversation that was idle when the process died.
  c.send({ type: 'send', conversationId: 'calm', text: 'hello' });
  const calmEnd = await c.next('reply.end', (e) => e.conversationId === 'calm');
  // One with a reply streaming, and one queued behind it.
  c.send({ type: 'send', conversationId: 'busy', text: 'before' });
  await c.next('reply.end', (e) => e.conversationId === 'busy');
  c.send({ type: 'send', conversationId: 'busy', text: 'stall' });
  const stalled = await c.next('reply.start', (e) => e.conversationId === 'busy');
  c.send({ type: 'send', conversationId: 'busy', text: 'queued' });
  const queued = await c.next('message', (m) => m.message.text === 'queued');
  for (let i = 0; i < 6; i++) await c.next('reply.delta', (d) => d.replyId === stalled.replyId);
  const seenText = replyText(c.frames, stalled.replyId);
  const busyEpoch = (await c.waitFor('joined', (j) => j.conversationId === 'busy')).epoch;

  // A second process on the same data directory is refused while the first lives.
  const intruder = spawnRelay(model, { DATA_DIR: dataDir });
  assert.is.not(await intruder.exited, 0);
  assert.match(intruder.output(), /in use by another relay process/);

  first.child.kill('SIGKILL');
  await first.exited;
  const second = await node();
  const back = await client(second);

  // The idle conversation resumes where the client was: same epoch, nothing missed, no reset.
  back.send({ type: 'join', conversationId: 'calm', since: calmEnd.seq, epoch: (await c.waitFor('joined', (j) => j.conversationId === 'calm')).epoch });
  const calm = await back.next('joined', (j) => j.conversationId === 'calm');
  assert.not.ok(calm.reset, 'no reset for a conversation that lost nothing');
  assert.is(calm.seq, calmEnd.seq);

  // The busy one: its members may have seen deltas that never reached the disk, so a resume is a clean reset.
  back.send({ type: 'join', conversationId: 'busy', since: c.events('busy').at(-1)!.seq, epoch: busyEpoch });
  const busy = await back.next('joined', (j) => j.conversationId === 'busy');
  assert.ok(busy.reset, 'a clean reset, never a gap');
  assert.is.not(busy.epoch, busyEpoch);
  // The interrupted reply ended once, as interrupted, with what it had written; then the queued reply ran.
  // Recovery runs as the process starts: the queued reply may have ended before this member joined.
  if (!busy.history.some((m) => m.id === queued.replyId)) await back.waitFor('reply.end', (e) => e.replyId === queued.replyId);
  back.send({ type: 'join', ref: 'again', conversationId: 'busy' });
  const after = await back.next('joined', (j) => j.ref === 'again');
  const history = after.history.map((m) => [m.role, m.role === 'assistant' ? m.finishReason : m.text]);
  assert.equal(history, [
    ['user', 'before'],
    ['assistant', 'stop'],
    ['user', 'stall'],
    ['assistant', 'error'],
    ['user', 'queued'],
    ['assistant', 'stop'],
  ]);
  const interrupted = after.history[3]!;
  assert.is(interrupted.id, stalled.replyId);
  assert.ok(interrupted.text.length > 0 && seenText.startsWith(interrupted.text), `kept what was written: "${interrupted.text}" of "${seenText}"`);
  assert.is(after.history[5]!.text, 'the queued reply ran after the restart');
  const ends = back.frames.filter((f) => f.type === 'reply.end' && f.replyId === stalled.replyId);
  assert.ok(ends.length <= 1, 'the interrupted reply ends once');

  // The ledger: each reply once, the interrupted one estimated.
  const usage = await fetch(second.url.replace('ws://', 'http://').replace(/\/ws$/, '/admin/usage?group_by=conversation'), { headers: { authorization: `Bearer ${ADMIN}` } });
  const rows = ((await usage.json()) as { rows: Array<{ conversation: string; replies: number; estimatedReplies: number; finishReasons: Record<string, number> }> }).rows;
  const byId = new Map(rows.map((r) => [r.conversation, r]));
  assert.equal(byId.get('calm')?.finishReasons, { stop: 1 });
  assert.equal(byId.get('busy')?.finishReasons, { stop: 2, error: 1 });
  assert.ok(byId.get('busy')!.estimatedReplies >= 1);

  // A clean stop, and a third start: nothing is interrupted this time.
  await stop(second);
  const third = await node();
  const last = await client(third);
  last.send({ type: 'join', conversationId: 'busy', since: after.seq, epoch: after.epoch });
  const resumed = await last.next('joined', (j) => j.conversationId === 'busy');
  assert.not.ok(resumed.reset, 'after a clean stop a resume goes on in the same epoch');
  assert.is(resumed.epoch, after.epoch);

  // A clean stop with a reply queued: the queue is kept, and runs when the relay is back.
  last.send({ type: 'send', conversationId: 'later', text: 'stall' });
  await last.next('reply.start', (e) => e.conversationId === 'later');
  last.send({ type: 'send', conversationId: 'later', text: 'queued' });
  const waiting = await last.next('message', (m) => m.conversationId === 'later' && m.message.text === 'queued');
  await stop(third);
  const fourth = await node();
  const watcher = await client(fourth);
  watcher.send({ type: 'join', conversationId: 'later' });
  const later = await watcher.next('joined', (j) => j.conversationId === 'later');
  if (!later.history.some((m) => m.id === waiting.replyId)) await watcher.waitFor('reply.end', (e) => e.replyId === waiting.replyId);
  watcher.send({ type: 'join', ref: 'ran', conversationId: 'later' });
  const ran = await watcher.next('joined', (j) => j.ref === 'ran');
  assert.is(ran.history.find((m) => m.id === waiting.replyId)?.text, 'the queued reply ran after the restart');
});

test('a data directory that cannot be written refuses to start, with the reason', async () => {
  const file = join(dataDir, 'not-a-directory');
  writeFileSync(file, 'x');
  const refused = spawnRelay(model, { DATA_DIR: join(file, 'data') });
  assert.is.not(await refused.exited, 0);
  assert.match(refused.output(), /DATA_DIR .*not-a-directory\/data/);
});

test.run();

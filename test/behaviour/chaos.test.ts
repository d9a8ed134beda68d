// Random interleavings of everything clients do, against one stack whose model
// overlaps, stalls and fails its replies; then the invariants that must hold
// whatever the order was. Seeded: the sequence of actions and the fault plan of
// each upstream request are fixed by CHAOS_SEED (timing is not). On failure the
// seed and the last actions are printed; rerun with CHAOS_SEED=<seed>.
//
// Cast: a few "logical" clients, each a chain of sockets (a killed socket is
// followed by a new one that resumes with `since`), and an observer that joins
// every conversation before anything happens and never leaves until the end,
// so its view is complete and is the reference the others are checked against.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FaultPlan, RecordedRequest } from '../../demo/localmodel.js';
import type { ServerFrame, ServerFrameOf } from '../../shared/protocol.js';
import { eventually, sleep, startStack, type Stack, type TestClient } from '../helpers.js';

const SEED = Number(process.env.CHAOS_SEED ?? 0xc4a05);
const STEPS = Number(process.env.CHAOS_STEPS ?? 160);
const CONVERSATIONS = ['chaos-0', 'chaos-1', 'chaos-2'];
const CLIENTS = 5;
const env = {
  REPLY_GRACE_MS: '150',
  CONVERSATION_IDLE_MS: '300',
  UPSTREAM_IDLE_TIMEOUT_MS: '250', // a stalled reply without keep-alives ends with upstream_timeout
  UPSTREAM_MAX_RETRIES: '0',
  MAX_QUEUED_REPLIES: '3',
  PRESENCE_COALESCE_MS: '20',
  FRAME_RATE_PER_SEC: '1000',
  FRAME_BURST: '1000',
};
/** Error codes a well-behaved client can be answered with here; anything else is a failure. */
const EXPECTED_ERRORS = new Set(['busy', 'rate_limited', 'not_found']);

/** mulberry32: small, fast, good enough to pick actions. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------ the model's behaviour per request

const plans = new Map<number, FaultPlan>();

/** Decided by the seed and the request's arrival number: overlapping, stalling and failing replies. */
function planFor(req: RecordedRequest): FaultPlan {
  const r = prng(SEED ^ Math.imul(req.id, 0x9e3779b1));
  const n = 3 + Math.floor(r() * 30);
  // Unique words, so a reply's text says which request produced it.
  const base: FaultPlan = { text: Array.from({ length: n }, (_, i) => `q${req.id}w${i}`).join(' '), tokenDelayMs: 1 + Math.floor(r() * 5) };
  const k = Math.floor(r() * n);
  const roll = r();
  const plan: FaultPlan =
    roll < 0.42 ? base
    : roll < 0.52 ? { ...base, firstTokenDelayMs: 20 + Math.floor(r() * 120) }
    : roll < 0.64 ? { ...base, stallAfterTokens: k }
    : roll < 0.72 ? { ...base, errorAfterTokens: k }
    : roll < 0.77 ? { ...base, malformedAfterTokens: k }
    : roll < 0.83 ? { ...base, dropAfterTokens: k }
    : roll < 0.88 ? { ...base, httpStatus: r() < 0.5 ? 500 : 429 }
    : roll < 0.93 ? { ...base, omitFinishReason: true }
    : { ...base, writeChunkBytes: 1 + Math.floor(r() * 9) };
  plans.set(req.id, plan);
  return plan;
}

// ------------------------------------------------------------------ logical clients and their views

interface Incarnation {
  client: TestClient;
  /** Frames counted when it was killed; undefined while alive. */
  upTo: number | undefined;
}

interface Logical {
  name: string;
  incarnations: Incarnation[];
  socket: TestClient | undefined;
  /** Conversations this client believes it is a member of (what it resumes after a kill). */
  member: Set<string>;
  /** Refs of `leave` frames whose `left` has not been seen, per conversation. */
  pendingLeave: Map<string, string>;
  sends: Array<{ conversationId: string; clientMessageId: string; text: string }>;
}

type Event = Exclude<Extract<ServerFrame, { seq: number }>, { type: 'joined' }>;
const isEvent = (f: ServerFrame): f is Event => 'seq' in f && f.type !== 'joined';
const inConversation = (f: ServerFrame, id: string) => 'conversationId' in f && f.conversationId === id;

/** Refs of joins sent with `since`: their `joined` (unless reset) is followed by a replay, not a snapshot. */
const sinceJoins = new Set<string>();
/** Replies someone cancelled by id: the only ones whose reply.end may come without a reply.start (cancelled in the queue). */
const cancelledById = new Set<string>();

function view(l: Logical): ServerFrame[] {
  return l.incarnations.flatMap((i) => (i.upTo === undefined ? i.client.frames : i.client.frames.slice(0, i.upTo)));
}

function lastSeq(frames: ServerFrame[], conversationId: string): number | undefined {
  let last: number | undefined;
  for (const f of frames) if (inConversation(f, conversationId) && 'seq' in f) last = Math.max(last ?? 0, f.seq);
  return last;
}

interface Assembled {
  /** Reply text as this client can vouch for it: null where it missed a part. */
  text: Map<string, string | null>;
  ended: Map<string, string | null>;
  problems: string[];
}

/** A client's reply texts, from reply.start or joined.streaming, plus deltas; a snapshot forgets what it cannot vouch for. */
function assemble(frames: ServerFrame[], conversationId: string): Assembled {
  const text = new Map<string, string | null>();
  const ended = new Map<string, string | null>();
  const problems: string[] = [];
  for (const f of frames) {
    if (!inConversation(f, conversationId)) continue;
    if (f.type === 'joined') {
      if (f.ref !== undefined && sinceJoins.has(f.ref) && !f.reset) continue; // a replay follows: nothing missed
      for (const id of text.keys()) if (!ended.has(id)) text.set(id, null);
      if (f.streaming && !ended.has(f.streaming.replyId)) text.set(f.streaming.replyId, f.streaming.text);
      continue;
    }
    if (f.type !== 'reply.start' && f.type !== 'reply.delta' && f.type !== 'reply.end') continue;
    if (ended.has(f.replyId)) problems.push(`${f.type} seq ${f.seq} after the reply.end of ${f.replyId}`);
    if (f.type === 'reply.start') text.set(f.replyId, '');
    else if (f.type === 'reply.delta') {
      const sofar = text.get(f.replyId);
      text.set(f.replyId, sofar === undefined || sofar === null ? null : sofar + (f.text ?? ''));
    } else ended.set(f.replyId, text.get(f.replyId) ?? null);
  }
  return { text, ended, problems };
}

function stripRef(e: Event): Event {
  if (!('ref' in e)) return e;
  const { ref: _ref, ...rest } = e as Event & { ref?: string };
  return rest as Event;
}

// ------------------------------------------------------------------ the test

let stack: Stack | undefined;
test.after(async () => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 10_000)));
  const closed = await Promise.race([stack?.close().then(() => true), timeout]);
  clearTimeout(timer);
  if (closed === false) {
    // Something is still running that shutdown waits for: say so, and do not hang the suite.
    console.error('chaos: stack.close() did not finish within 10 s');
    setTimeout(() => process.exit(1), 500).unref();
  }
});

test(`chaos: ${STEPS} random steps over ${CLIENTS} clients and ${CONVERSATIONS.length} conversations (seed ${SEED})`, async () => {
  const actions: string[] = [];
  try {
    await run(actions);
    if (process.env.CHAOS_VERBOSE) console.log(actions.filter((a) => /quiescent|checked/.test(a)).join('\n'));
  } catch (err) {
    console.error(`\nchaos failed with CHAOS_SEED=${SEED}: ${(err as Error).message}\nthe last actions:\n  ${actions.slice(-40).join('\n  ')}\n`);
    throw err;
  }
});

async function run(actions: string[]): Promise<void> {
  const s = (stack = await startStack({ env, tokenDelayMs: 2, plan: planFor }));
  const rand = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  let refs = 0;
  const ref = (what: string) => `${what}-${++refs}`;
  const log = (what: string) => actions.push(`${actions.length}: ${what}`);

  const observer = await s.connect();
  for (const id of CONVERSATIONS) observer.send({ type: 'join', conversationId: id, ref: `observe-${id}` });
  for (const id of CONVERSATIONS) await observer.waitFor('joined', (j) => j.ref === `observe-${id}`);

  const logical: Logical[] = Array.from({ length: CLIENTS }, (_, i) => ({
    name: `c${i}`,
    incarnations: [],
    socket: undefined,
    member: new Set<string>(),
    pendingLeave: new Map<string, string>(),
    sends: [],
  }));

  async function connect(l: Logical): Promise<TestClient> {
    const socket = await s.connect();
    l.incarnations.push({ client: socket, upTo: undefined });
    l.socket = socket;
    return socket;
  }

  function join(l: Logical, socket: TestClient, conversationId: string, since: number | undefined): void {
    const r = ref(`join-${l.name}`);
    if (since !== undefined) sinceJoins.add(r);
    socket.send({ type: 'join', conversationId, ref: r, ...(since !== undefined ? { since } : {}) });
    l.member.add(conversationId);
    log(`${l.name} join ${conversationId}${since !== undefined ? ` since ${since}` : ''}`);
  }

  function kill(l: Logical): void {
    const inc = l.incarnations.at(-1)!;
    inc.upTo = inc.client.frames.length;
    inc.client.kill();
    l.socket = undefined;
    l.pendingLeave.clear();
    log(`${l.name} killed`);
  }

  /** A reply this client has heard of and not seen end (or, sometimes, any it has heard of). */
  function knownReply(l: Logical, conversationId: string): string | undefined {
    const frames = view(l).filter((f) => inConversation(f, conversationId));
    const ids = new Set<string>();
    for (const f of frames) {
      if (f.type === 'message' && f.replyId) ids.add(f.replyId);
      if (f.type === 'reply.start') ids.add(f.replyId);
    }
    const open = [...ids].filter((id) => !frames.some((f) => f.type === 'reply.end' && f.replyId === id));
    const from = open.length && rand() < 0.8 ? open : [...ids];
    return from.length ? pick(from) : undefined;
  }

  // ---------------------------------------------------------------- the random steps
  for (let step = 0; step < STEPS; step++) {
    const l = pick(logical);
    const conversationId = pick(CONVERSATIONS);
    if (!l.socket) {
      // Reconnect and resume every conversation it was in, from the last seq it saw.
      const socket = await connect(l);
      const frames = view(l);
      log(`${l.name} reconnects`);
      for (const id of l.member) join(l, socket, id, lastSeq(frames, id));
    } else {
      const socket = l.socket;
      const roll = rand() * 10;
      if (roll < 2) {
        const since = lastSeq(view(l), conversationId);
        if (!l.member.has(conversationId) && since !== undefined && rand() < 0.5) {
          // Rejoin from where this socket left: only once its `left` (and whatever preceded it) has arrived.
          const leaving = l.pendingLeave.get(conversationId);
          if (leaving) await socket.waitFor('left', (f) => f.ref === leaving, 5_000);
          l.pendingLeave.delete(conversationId);
          join(l, socket, conversationId, lastSeq(view(l), conversationId));
        } else {
          join(l, socket, conversationId, undefined); // a snapshot, also as a resync while a member
        }
      } else if (roll < 6) {
        const text = `${l.name} says ${step}`;
        const clientMessageId = `${l.name}-${step}`;
        socket.send({ type: 'send', conversationId, text, clientMessageId, ref: ref(`send-${l.name}`) });
        l.sends.push({ conversationId, clientMessageId, text });
        l.member.add(conversationId);
        log(`${l.name} send ${conversationId} ${clientMessageId}`);
      } else if (roll < 6.5) {
        // An idempotent retry of an earlier send.
        const earlier = l.sends.filter((x) => x.conversationId === conversationId);
        if (earlier.length) {
          const { clientMessageId, text } = pick(earlier);
          socket.send({ type: 'send', conversationId, text, clientMessageId, ref: ref(`retry-${l.name}`) });
          l.member.add(conversationId);
          log(`${l.name} retry ${conversationId} ${clientMessageId}`);
        }
      } else if (roll < 8) {
        const replyId = rand() < 0.5 ? knownReply(l, conversationId) : undefined;
        if (replyId) cancelledById.add(replyId);
        socket.send({ type: 'cancel', conversationId, ref: ref(`cancel-${l.name}`), ...(replyId ? { replyId } : {}) });
        log(`${l.name} cancel ${conversationId} ${replyId ?? '(running)'}`);
      } else if (roll < 8.3) {
        socket.send({ type: 'typing', conversationId });
      } else if (roll < 9.3) {
        const r = ref(`leave-${l.name}`);
        socket.send({ type: 'leave', conversationId, ref: r });
        l.member.delete(conversationId);
        l.pendingLeave.set(conversationId, r);
        log(`${l.name} leave ${conversationId}`);
      } else {
        kill(l);
      }
    }
    // Bursts (several frames in one tick, often one TCP read) and short pauses, so everything overlaps.
    if (rand() < 0.6) await sleep(Math.floor(rand() * 25));
  }

  // ---------------------------------------------------------------- everyone but the observer goes
  for (const l of logical) {
    if (!l.socket) continue;
    if (rand() < 0.5) {
      kill(l);
      continue;
    }
    for (const id of l.member) {
      const r = ref(`leave-${l.name}`);
      l.socket.send({ type: 'leave', conversationId: id, ref: r });
      l.pendingLeave.set(id, r);
      log(`${l.name} leave ${id}`);
    }
    l.member.clear();
  }
  for (const l of logical) {
    for (const r of l.pendingLeave.values()) await l.socket!.waitFor('left', (f) => f.ref === r, 5_000);
  }
  // The observer is still there, so nothing is abandoned: every reply runs to its end.
  const starts = () => observer.frames.filter((f): f is ServerFrameOf<'reply.start'> => f.type === 'reply.start');
  const ends = () => new Set(observer.frames.filter((f) => f.type === 'reply.end').map((f) => (f as ServerFrameOf<'reply.end'>).replyId));
  await eventually(() => s.relay.stats().usersWithReplies === 0 && s.model.openRequests === 0, 'every reply ended', 20_000).catch((err: Error) => {
    const asked = observer.frames.flatMap((f) => (f.type === 'message' && f.replyId ? [`${f.conversationId}/${f.replyId}`] : []));
    const started = new Set(starts().map((f) => f.replyId));
    const open = starts().filter((f) => !ends().has(f.replyId)).map((f) => `${f.conversationId}/${f.replyId} (seq ${f.seq})`);
    const waiting = asked.filter((a) => !started.has(a.split('/')[1]!) && !ends().has(a.split('/')[1]!));
    const stuck = s.model.requests.filter((r) => !r.finished && !r.aborted).map((r) => `#${r.id} ${JSON.stringify(plans.get(r.id))}`);
    throw new Error(
      `${err.message}: stats ${JSON.stringify(s.relay.stats())}, open upstream requests ${s.model.openRequests} [${stuck.join('; ')}], ` +
        `started and not ended [${open.join(', ')}], asked for and neither started nor ended [${waiting.join(', ')}]`,
    );
  });
  await eventually(() => starts().every((st) => ends().has(st.replyId)), 'the observer saw every reply.end');
  log(`quiescent: ${s.model.requests.length} upstream requests, ${starts().length} replies`);

  // ---------------------------------------------------------------- an auditor replays every conversation from 0
  const auditor = await s.connect();
  const heads = new Map<string, number>();
  for (const id of CONVERSATIONS) {
    auditor.send({ type: 'join', conversationId: id, since: 0, ref: `audit-${id}` });
    const joined = await auditor.waitFor('joined', (j) => j.ref === `audit-${id}`);
    assert.not.ok(joined.reset, `${id}: since 0 is covered`);
    heads.set(id, joined.seq);
  }
  await eventually(
    () => CONVERSATIONS.every((id) => (lastSeq(auditor.frames.filter(isEvent), id) ?? 0) === heads.get(id)),
    'the auditor got its replays',
  );
  // And the observer's final snapshot: the history every newcomer would see.
  for (const id of CONVERSATIONS) observer.send({ type: 'join', conversationId: id, ref: `final-${id}` });
  const finals = new Map<string, ServerFrameOf<'joined'>>();
  for (const id of CONVERSATIONS) finals.set(id, await observer.waitFor('joined', (j) => j.ref === `final-${id}`));

  // ---------------------------------------------------------------- invariants
  const everyone = [observer, auditor, ...logical.flatMap((l) => l.incarnations.map((i) => i.client))];
  for (const c of everyone) assert.equal(c.invalid, [], 'every server frame passes the schema');
  for (const c of everyone) {
    for (const f of c.frames) if (f.type === 'error') assert.ok(EXPECTED_ERRORS.has(f.code), `unexpected error ${JSON.stringify(f)}`);
  }
  for (const l of logical) {
    for (const i of l.incarnations) {
      if (i.upTo === undefined) assert.is(i.client.ws.readyState, i.client.ws.OPEN, `${l.name}: the server closed a socket nobody killed`);
    }
  }

  let replies = 0;
  let compared = 0;
  for (const id of CONVERSATIONS) {
    const events = observer.frames.filter((f): f is Event => isEvent(f) && f.conversationId === id);
    const bySeq = new Map(events.map((e) => [e.seq, e]));

    // seq strictly increases; at most one reply runs; every start answers a message, in queue order; one end per start.
    const messages = new Map<string, ServerFrameOf<'message'>>(); // by replyId
    const asked: string[] = [];
    const started: string[] = [];
    const finished = new Set<string>();
    const texts = new Map<string, string>();
    const clientIds = new Set<string>();
    let running: string | undefined;
    let prev = 0;
    /** The observer's events around one, for failure messages. */
    const around = (seq: number) =>
      events
        .filter((x) => x.seq > seq - 8 && x.seq <= seq + 2)
        .map((x) => `${x.seq} ${x.type} ${'replyId' in x ? (x.replyId ?? '').slice(0, 8) : ''}${x.type === 'reply.end' ? ` ${x.finishReason}${x.error ? `/${x.error.code}` : ''}` : ''}`)
        .join('; ');
    for (const e of events) {
      assert.ok(e.seq > prev, `${id}: observer seq ${e.seq} after ${prev}`);
      prev = e.seq;
      if (e.type === 'message') {
        const cmid = e.message.clientMessageId;
        if (cmid !== undefined) {
          assert.not.ok(clientIds.has(cmid), `${id}: clientMessageId ${cmid} appended twice`);
          clientIds.add(cmid);
        }
        if (e.replyId) {
          messages.set(e.replyId, e);
          asked.push(e.replyId);
        }
      } else if (e.type === 'reply.start') {
        assert.is(running, undefined, `${id}: ${e.replyId} started while ${running} ran: ${around(e.seq)}`);
        assert.ok(!started.includes(e.replyId), `${id}: ${e.replyId} started twice`);
        assert.not.ok(finished.has(e.replyId), `${id}: ${e.replyId} started after its reply.end: ${around(e.seq)}`);
        assert.is(messages.get(e.replyId)?.message.id, e.inReplyTo, `${id}: ${e.replyId} answers the message that asked for it`);
        running = e.replyId;
        started.push(e.replyId);
        texts.set(e.replyId, '');
      } else if (e.type === 'reply.delta') {
        assert.is(e.replyId, running, `${id}: delta seq ${e.seq} of a reply that is not running: ${around(e.seq)}`);
        texts.set(e.replyId, texts.get(e.replyId)! + (e.text ?? ''));
      } else if (e.type === 'reply.end') {
        assert.not.ok(finished.has(e.replyId), `${id}: ${e.replyId} ended twice: ${around(e.seq)}`);
        finished.add(e.replyId);
        if (e.replyId === running) {
          assert.is(e.finishReason === 'error', e.error !== undefined, `${id}: error exactly when finishReason is error`);
          assert.ok(e.usage, `${id}: usage on the reply.end of a reply that ran`);
          running = undefined;
        } else {
          // A queued reply cancelled by id: its reply.end (cancelled, no usage) and never a reply.start (protocol section 8).
          // With the observer always there, no grace period ever drops the queue.
          const what = `${id}: end seq ${e.seq} of ${e.replyId}, which is not running: ${around(e.seq)}`;
          assert.ok(messages.has(e.replyId) && !started.includes(e.replyId), what);
          assert.is(e.finishReason, 'cancelled', what);
          assert.is(e.usage, undefined, what);
          assert.ok(cancelledById.has(e.replyId), `${what}; nobody cancelled it by id`);
        }
      }
    }
    assert.is(running, undefined, `${id}: a reply never ended`);
    assert.equal(
      started,
      asked.filter((r) => started.includes(r)),
      `${id}: replies start in the order they were asked for`,
    );
    // Every reply asked for ended exactly once: after running, or cancelled in the queue.
    assert.equal(asked.filter((r) => !finished.has(r)), [], `${id}: replies asked for that never ended`);
    assert.equal([...finished].filter((r) => !asked.includes(r)), [], `${id}: replies ended that nobody asked for`);
    replies += started.length;

    // The auditor's replay (deltas coalesced) says the same.
    const audited = auditor.frames.filter((f): f is Event => isEvent(f) && f.conversationId === id);
    const auditText = assemble(auditor.frames, id);
    for (const e of audited) {
      const o = bySeq.get(e.seq);
      if (e.type === 'reply.delta') assert.ok(o?.type === 'reply.delta' && o.replyId === e.replyId, `${id}: replayed delta seq ${e.seq}`);
      else assert.equal(e, stripRef(o!), `${id}: replayed event seq ${e.seq}`);
    }
    assert.equal(new Set(audited.filter((e) => e.type !== 'reply.delta').map((e) => e.seq)), new Set(events.filter((e) => e.type !== 'reply.delta').map((e) => e.seq)));
    for (const r of started) assert.is(auditText.ended.get(r), texts.get(r), `${id}: replayed text of ${r}`);

    // The final history holds every message and every reply that ran, with the observer's text (while it fits).
    const history = finals.get(id)!.history;
    if (history.length < 200) {
      for (const e of events) {
        if (e.type === 'message') assert.is(history.find((m) => m.id === e.message.id)?.text, e.message.text, `${id}: history text of message ${e.message.id}`);
      }
      for (const r of started) {
        const h = history.find((m) => m.id === r);
        assert.is(h?.text, texts.get(r), `${id}: history text of ${r}`);
        const end = events.find((e): e is ServerFrameOf<'reply.end'> => e.type === 'reply.end' && e.replyId === r)!;
        assert.is(h?.finishReason, end.finishReason, `${id}: history finishReason of ${r}`);
      }
      for (const r of finished) if (!started.includes(r)) assert.not.ok(history.some((m) => m.id === r), `${id}: ${r} never ran, so it is not in the history`);
    }
    assert.is(finals.get(id)!.streaming, undefined);

    // Every other client: seqs increase across its sockets, events match the observer's, and every reply
    // it saw end with a text it can vouch for has the observer's text.
    for (const l of logical) {
      const frames = view(l);
      const mine = frames.filter((f): f is Event => isEvent(f) && f.conversationId === id);
      let last = 0;
      for (const e of mine) {
        // An idempotent retry is answered with the original message, original seq included (protocol section 8):
        // an acknowledgement, not a new event, so it is exempt from the ordering (but must still be that event).
        const retryAck = e.type === 'message' && e.ref?.startsWith('retry-') === true && e.seq <= last;
        if (!retryAck) {
          assert.ok(e.seq > last, `${l.name} ${id}: seq ${e.seq} after ${last}`);
          last = e.seq;
        }
        const o = bySeq.get(e.seq);
        if (e.type === 'reply.delta') assert.ok(o?.type === 'reply.delta' && o.replyId === e.replyId, `${l.name} ${id}: delta seq ${e.seq}`);
        else assert.equal(stripRef(e), o && stripRef(o), `${l.name} ${id}: event seq ${e.seq}`);
      }
      const seen = assemble(frames, id);
      assert.equal(seen.problems, [], `${l.name} ${id}`);
      for (const [r, text] of seen.ended) {
        if (text === null) continue;
        assert.is(text, texts.get(r), `${l.name} ${id}: text of ${r}`);
        compared++;
      }
    }
  }
  log(`checked ${replies} replies, ${compared} client views of them`);
  assert.ok(replies >= 10, `the run produced replies (${replies})`);
  assert.ok(compared >= 10, `other clients saw replies end (${compared})`);

  // ---------------------------------------------------------------- everyone leaves while replies run
  s.model.setPlan(() => ({ text: 'never finishes', stallAfterTokens: 1, keepAliveMs: 40 }));
  const last = await s.connect();
  const requestsBefore = s.model.requests.length;
  for (const id of CONVERSATIONS) last.send({ type: 'send', conversationId: id, text: 'one more' });
  last.send({ type: 'send', conversationId: CONVERSATIONS[0]!, text: 'and a queued one' });
  await eventually(
    () => s.model.requests.length === requestsBefore + CONVERSATIONS.length && s.model.requests.slice(requestsBefore).every((r) => r.tokensSent > 0),
    'the last replies are streaming',
  ).catch((err: Error) => {
    const got = last.frames.map((f) => (f.type === 'error' ? `error ${f.code}: ${f.message}` : `${f.type}${'conversationId' in f ? ` ${f.conversationId}` : ''}`));
    throw new Error(`${err.message}; requests ${s.model.requests.length - requestsBefore} new; the sender got: ${got.join(', ')}`);
  });
  const lastRequests = s.model.requests.slice(requestsBefore);
  // Some go with a close frame, some just vanish.
  for (const c of [last, observer, auditor, ...logical.map((l) => l.socket)]) {
    if (!c) continue;
    if (rand() < 0.5) c.kill();
    else c.ws.close(1000);
  }
  for (const l of logical) l.socket = undefined;
  await eventually(() => s.model.openRequests === 0, 'the grace period aborted every upstream request');
  for (const r of lastRequests) assert.ok(r.aborted, `request ${r.id} aborted by the grace period`);
  for (const r of s.model.requests) {
    const dropped = plans.get(r.id)?.dropAfterTokens !== undefined;
    assert.ok(r.finished || r.aborted || dropped, `request ${r.id} finished or aborted (${JSON.stringify(plans.get(r.id))})`);
  }
  await eventually(() => s.relay.stats().sockets === 0, 'no socket is left');
  await eventually(() => s.relay.stats().usersWithReplies === 0, 'no reply slot is held');
  await eventually(() => s.relay.stats().conversations === 0, 'every conversation was forgotten');
  await eventually(() => s.relay.stats().storedConversations === 0, 'the store is empty');
  assert.equal(s.relay.stats(), { sockets: 0, conversations: 0, storedConversations: 0, usersWithReplies: 0 });
}

test.run();

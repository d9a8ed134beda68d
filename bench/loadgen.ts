// A load generator process, forked by bench/run.ts (1–2 of them share the
// clients of a trial). On the orchestrator's commands (over the IPC channel,
// bench/common.ts) it opens the trial's sockets (bench/loadgen-clients.ts),
// starts the replies at the agreed time, and reports what it measured
// (bench/loadgen-trial.ts).
import type { Contender, ToLoadgen, TrialSpec } from './common.js';
import { makeClient, type Client } from './loadgen-clients.js';
import { LOADGEN, Room, tell, Trial } from './loadgen-trial.js';

/** Handshakes in flight at once while connecting (per process). */
const CONNECT_CONCURRENCY = Number(process.env.BENCH_CONNECT_CONCURRENCY ?? 200);

/** Run `fn` over `items`, at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

// ------------------------------------------------------------------ commands

let trial: Trial | undefined;
let slowClient: Client | undefined;
let clients: Client[] = [];
const idle: Client[] = [];

async function prepare(spec: TrialSpec): Promise<void> {
  const t = new Trial(spec);
  trial = t;
  slowClient = undefined;
  let errors = 0;
  let firstError: string | undefined;
  const fail = (err: unknown) => {
    errors++;
    firstError ??= err instanceof Error ? err.message : String(err);
  };
  // Every receiver; the first of each room is its sender.
  const jobs: Array<{ room: Room; sender: boolean }> = [];
  for (const rs of spec.rooms) {
    const room = new Room(rs);
    t.rooms.set(rs.id, room);
    for (let i = 0; i < (spec.target === 'direct' ? 1 : rs.members); i++) jobs.push({ room, sender: i === 0 });
  }
  await pool(jobs, CONNECT_CONCURRENCY, async ({ room, sender }) => {
    const c = makeClient(spec.target, t, spec.url);
    c.room = room;
    clients.push(c);
    try {
      await c.open();
      // The sender joins by sending (as a first message would); the others join first.
      if (!sender) await c.join(room.spec.id);
      room.receivers.push(c);
      if (sender) room.sender = c;
    } catch (err) {
      fail(err);
    }
  });
  if (spec.slowRooms?.length) {
    const c = makeClient(spec.target, t, spec.url);
    c.slow = true;
    clients.push(c);
    try {
      await c.open();
      for (const id of spec.slowRooms) await c.join(id);
      slowClient = c;
    } catch (err) {
      fail(err);
    }
  }
  tell({ ev: 'prepared', loadgen: LOADGEN, clients: clients.length, errors, ...(firstError ? { firstError } : {}) });
}

async function openIdle(target: Contender, url: string, total: number): Promise<void> {
  let errors = 0;
  let firstError: string | undefined;
  const want = Math.max(0, total - idle.length);
  const batch = Array.from({ length: want }, () => makeClient(target, undefined, url));
  await pool(batch, CONNECT_CONCURRENCY, async (c) => {
    try {
      await c.open();
      idle.push(c);
    } catch (err) {
      errors++;
      firstError ??= err instanceof Error ? err.message : String(err);
      c.close();
    }
  });
  tell({ ev: 'idle', loadgen: LOADGEN, open: idle.length, errors, ...(firstError ? { firstError } : {}) });
}

function reset(): void {
  trial?.finish();
  trial = undefined;
  slowClient = undefined;
  for (const c of clients) c.close();
  for (const c of idle) c.close();
  clients = [];
  idle.length = 0;
  tell({ ev: 'reset', loadgen: LOADGEN });
}

process.on('message', (msg: ToLoadgen) => {
  switch (msg.cmd) {
    case 'prepare':
      void prepare(msg.spec);
      return;
    case 'go':
      trial?.go(msg.t0, slowClient);
      return;
    case 'idle':
      void openIdle(msg.target, msg.url, msg.total);
      return;
    case 'reset':
      return reset();
    case 'exit':
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
tell({ ev: 'ready', loadgen: LOADGEN });

// The longest a single client can stall a relay's event loop by feeding the
// tokenizer hostile text, measured as a bystander sees it: a second socket
// pings back to back the whole time, and its slowest round trip is the stall.
//
//   npx tsx bench/loop-delay.ts
//
// Two attacks, each on a fresh relay process (defaults, anonymous, loopback)
// in front of the built-in demo model (in this process):
//   history: 12 messages of 16,000 random CJK characters (no spaces, so the
//            tokenizer sees one huge word each), then "hi", which asks for a
//            reply and makes the relay count the history;
//   pieces:  "hi", answered by two 60,000-character one-word pieces and no
//            usage, so the relay counts the reply itself at its end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { LocalModel } from '../demo/localmodel.js';
import { now } from './common.js';
import { contenderEnv, startServer } from './procs.js';

const HOSTILE_MESSAGES = 12;
const CJK_CHARS = 16_000;
const WORD_CHARS = 60_000;
const IDLE_PINGS = 200;

function randomCjk(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += String.fromCharCode(0x4e00 + Math.floor(Math.random() * (0x9fa5 - 0x4e00 + 1)));
  return s;
}

function randomWord(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += String.fromCharCode(97 + Math.floor(Math.random() * 26));
  return s;
}

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'bench', object: 'chat.completion.chunk', created: 0, model: 'bench', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
/** Two one-word pieces, a finish reason, no usage chunk. */
const hugePieces = () => chunk({ content: randomWord(WORD_CHARS) }) + chunk({ content: randomWord(WORD_CHARS) }) + chunk({}, 'stop') + 'data: [DONE]\n\n';

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('error', reject);
    ws.once('open', () => {
      ws.send(JSON.stringify({ type: 'hello' }));
      ws.once('message', () => resolve(ws));
    });
  });
}

/** Pings back to back until stopped; resolves with the slowest round trip in ms. */
function pingLoop(ws: WebSocket, until: { stop: boolean; count?: number }): Promise<number> {
  return new Promise((resolve) => {
    let worst = 0;
    let sentAt = 0;
    let sent = 0;
    const ping = () => {
      if (until.stop || (until.count !== undefined && sent >= until.count)) {
        ws.off('message', onMessage);
        return resolve(worst);
      }
      sent++;
      sentAt = now();
      ws.send(JSON.stringify({ type: 'ping' }));
    };
    const onMessage = (data: Buffer) => {
      if (!data.toString().includes('"type":"pong"')) return;
      worst = Math.max(worst, now() - sentAt);
      ping();
    };
    ws.on('message', onMessage);
    ping();
  });
}

/** Resolves when `ws` receives the reply.end of `conversationId`. */
function replyEnd(ws: WebSocket, conversationId: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (data: Buffer) => {
      const text = data.toString();
      if (!text.includes('"type":"reply.end"') || !text.includes(`"conversationId":"${conversationId}"`)) return;
      ws.off('message', on);
      resolve();
    };
    ws.on('message', on);
  });
}

type Attack = 'history' | 'pieces';

async function measure(attack: Attack, work: string): Promise<{ idle: number; worst: number; replyMs: number }> {
  const model = new LocalModel({ tokenDelayMs: 1, plan: () => (attack === 'pieces' ? { replay: hugePieces() } : { text: 'ok' }) });
  await model.start();
  const { script, env } = contenderEnv('relay', model.baseURL, 'info');
  const relay = await startServer({ name: `relay-${attack}`, script, env, logFile: join(work, `${attack}.log`), probe: false });
  try {
    const attacker = await open(relay.url);
    const bystander = await open(relay.url);
    const idle = await pingLoop(bystander, { stop: false, count: IDLE_PINGS });
    const until = { stop: false };
    const pinging = pingLoop(bystander, until);
    const conversationId = `loop-delay-${attack}`;
    const ended = replyEnd(attacker, conversationId);
    const startedAt = now();
    if (attack === 'history') {
      for (let i = 0; i < HOSTILE_MESSAGES; i++) {
        attacker.send(JSON.stringify({ type: 'send', conversationId, text: randomCjk(CJK_CHARS), reply: false }));
      }
    }
    attacker.send(JSON.stringify({ type: 'send', conversationId, text: 'hi' }));
    await ended;
    const replyMs = now() - startedAt;
    until.stop = true;
    const worst = await pinging;
    attacker.terminate();
    bystander.terminate();
    return { idle, worst, replyMs };
  } finally {
    await relay.stop();
    await model.close();
  }
}

const work = mkdtempSync(join(tmpdir(), 'loop-delay-'));
try {
  const labels: Record<Attack, string> = {
    history: `${HOSTILE_MESSAGES} messages of ${CJK_CHARS.toLocaleString('en')} random CJK characters, then "hi"`,
    pieces: `a reply of two ${WORD_CHARS.toLocaleString('en')}-character one-word pieces without usage`,
  };
  for (const attack of ['history', 'pieces'] as const) {
    const { idle, worst, replyMs } = await measure(attack, work);
    console.log(`${labels[attack]}:`);
    console.log(`  worst ping round trip of another socket: ${worst.toFixed(0)} ms (idle: ${idle.toFixed(1)} ms); the attack's reply ended after ${replyMs.toFixed(0)} ms`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

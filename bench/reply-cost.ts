// CPU a server spends to open and finish one short reply, warm: N sockets
// each send one 2-token reply per round; the server's CPU over the round
// (from /proc) divided by N. Early rounds show the cold cost (lazy loading,
// unoptimised code, new upstream connections), later ones the steady cost.
//
//   npx tsx bench/reply-cost.ts [--sockets 300] [--rounds 10] [--contenders floor,relay] [--profile FILE]
//
// --profile runs the relay under `node --cpu-prof` and writes FILE, a Markdown
// summary of where the warm rounds spent their CPU.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { now, sendFrame, type WsContender } from './common.js';
import { mainThreadProfile, profileMarkdown, summarize } from './cpuprofile.js';
import { contenderEnv, cpuMs, ownSourceMaps, ROOT, startServer } from './procs.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const SOCKETS = Number(flag('--sockets', '300'));
const ROUNDS = Number(flag('--rounds', '10'));
const CONTENDERS = flag('--contenders', 'floor,relay')
  .split(',')
  .filter((c): c is WsContender => c === 'floor' || c === 'relay');
const PROFILE = flag('--profile', '');

function open(url: string, hello: boolean): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('error', reject);
    ws.once('open', () => {
      if (!hello) return resolve(ws);
      ws.send(JSON.stringify({ type: 'hello' }));
      ws.once('message', () => resolve(ws));
    });
  });
}

/** One reply on `ws`: resolves at its end (or at an error frame, counted as a failure). */
function reply(ws: WebSocket, target: WsContender, conversation: string): Promise<boolean> {
  return new Promise((resolve) => {
    const on = (data: Buffer) => {
      const text = data.toString();
      const failed = text.includes('"type":"error"');
      if (!failed && !text.includes('"type":"reply.end"')) return;
      ws.off('message', on);
      resolve(!failed);
    };
    ws.on('message', on);
    ws.send(sendFrame(target, conversation, 'hello there', 2));
  });
}

const work = mkdtempSync(join(tmpdir(), 'reply-cost-'));
const upstream = await startServer({
  name: 'upstream',
  script: 'bench/upstream.ts',
  env: { PORT: '0', HOST: '127.0.0.1', BENCH_PACE: '1000' },
  logFile: join(work, 'upstream.log'),
  probe: false,
});
try {
  for (const target of CONTENDERS) {
    const { script, env } = contenderEnv(target, upstream.url, 'info');
    const profiling = PROFILE !== '' && target === 'relay';
    const profDir = join(work, 'cpuprof');
    const server = await startServer({
      name: target,
      script,
      env,
      logFile: join(work, `${target}.log`),
      probe: profiling,
      ...(profiling ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] } : {}),
    });
    let warmFromMs = 0;
    let warmToMs = 0;
    let maps: Record<string, unknown> = {};
    try {
      const sockets: WebSocket[] = [];
      for (let i = 0; i < SOCKETS; i++) sockets.push(await open(server.url, target === 'relay'));
      const perReply: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        if (round === Math.floor(ROUNDS / 2)) warmFromMs = now();
        const before = cpuMs(server.pid) ?? 0;
        const ok = await Promise.all(sockets.map((ws, i) => reply(ws, target, `r${round}-${i}`)));
        const us = (((cpuMs(server.pid) ?? 0) - before) * 1000) / SOCKETS;
        perReply.push(us);
        const failed = ok.filter((x) => !x).length;
        console.log(`${target.padEnd(6)} round ${round + 1}: ${us.toFixed(0)} µs of server CPU per reply${failed ? ` (${failed} failed)` : ''}`);
      }
      warmToMs = now();
      for (const ws of sockets) ws.terminate();
      if (profiling) maps = await ownSourceMaps(server, ROOT);
      const warm = perReply.slice(Math.floor(ROUNDS / 2)).sort((a, b) => a - b);
      console.log(`${target.padEnd(6)} warm (median of the last ${warm.length} rounds): ${warm[Math.floor(warm.length / 2)]!.toFixed(0)} µs per reply`);
    } finally {
      await server.stop(profiling ? 'SIGTERM' : 'SIGKILL');
    }
    const prof = profiling ? mainThreadProfile(profDir) : undefined;
    if (prof) {
      const summary = summarize(prof, ROOT, 25, maps, { fromUs: warmFromMs * 1000, toUs: warmToMs * 1000 });
      writeFileSync(
        PROFILE,
        profileMarkdown(summary, 'CPU profile of the relay opening and finishing short replies', [
          `\`npx tsx bench/reply-cost.ts --sockets ${SOCKETS} --rounds ${ROUNDS} --profile FILE\`: the warm rounds only (the last ${ROUNDS - Math.floor(ROUNDS / 2)}), each socket one 2-token reply per round.`,
        ]),
      );
      console.log(`profile: ${PROFILE}`);
    }
  }
} finally {
  await upstream.stop();
  rmSync(work, { recursive: true, force: true });
}

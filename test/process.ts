// A relay as its own process (server/main.ts, as `npm start` runs it), with a
// test's built-in model as its upstream: for what only a real process shows
// (kill -9, restarts, several nodes, locks).
import { spawn, type ChildProcess } from 'node:child_process';
import type { LocalModel } from '../demo/localmodel.js';

const MAIN = new URL('../server/main.ts', import.meta.url).pathname;

export interface Node {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code (null after a signal). */
  exited: Promise<number | null>;
}

/** Start a relay process; resolves once it listens, rejects (with its output) if it exits first. */
export async function startRelayProcess(model: LocalModel, env: Record<string, string>): Promise<Node> {
  const node = spawnRelay(model, env);
  for (let i = 0; i < 600; i++) {
    const m = node.output().match(/"listen":"(ws:\/\/127\.0\.0\.1:\d+\/ws)"/);
    if (m) return { ...node, url: m[1]! };
    if (node.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`relay process did not start:\n${node.output()}`);
}

/** Spawn without waiting: for a process expected to refuse to start. */
export function spawnRelay(model: LocalModel, env: Record<string, string>): Node {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      OPENAI_API_KEY: 'test',
      OPENAI_BASE_URL: model.baseURL,
      OPENAI_MODEL: 'test-model',
      PRESENCE_COALESCE_MS: '10',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { url: '', child, output: () => out, exited };
}

export function stop(node: Node): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return Promise.resolve();
  node.child.kill('SIGTERM');
  return node.exited.then(() => undefined);
}

// The README's nginx recipe in front of two nodes: while one node drains
// (SIGTERM, a reply still running within its grace), no new socket is refused,
// because nginx takes the draining node's 503 to the other one.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalModel } from '../../demo/localmodel.js';
import { eventually, TestClient } from '../helpers.js';
import { freePort, redisAvailable, startNode, stop, type Node } from '../redis.js';

const NGINX = '/usr/sbin/nginx';
const hasNginx = spawnSync(NGINX, ['-v']).status === 0;
const available = hasNginx && (await redisAvailable());
// Without nginx or Redis the test is registered as skipped: the closing line says so.
const it = available ? test : test.skip;

/** The README's recipe, as written, with this test's nodes and a plain loopback listener. */
function recipe(nodes: Node[], port: number): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = readme.match(/```nginx\n([\s\S]*?)```/)?.[1];
  assert.ok(block, 'the README has an nginx block');
  const servers = nodes.map((n) => `    server ${new URL(n.url).host};`).join('\n');
  return block
    .replace(/(upstream relay \{\n(?:\s+\w+;\n)?)(?:\s+server [^\n]+\n)+/, `$1${servers}\n`)
    .replace(/listen 443 ssl;/, `listen 127.0.0.1:${port};`)
    .replace(/^\s*ssl_[^\n]*\n/gm, '');
}

let model: LocalModel | undefined;
let nodes: Node[] = [];
let nginx: ChildProcess | undefined;
const clients: TestClient[] = [];
test.after(async () => {
  for (const c of clients) c.kill();
  nginx?.kill('SIGQUIT');
  for (const n of nodes) n.child.kill('SIGKILL');
  await Promise.all(nodes.map(stop));
  await model?.close();
});

it('a node draining behind nginx: every new socket is served by the other node', async () => {
  model = new LocalModel({ plan: () => ({ text: 'held open', stallAfterTokens: 1 }) });
  await model.start();
  const prefix = `drain-${randomUUID()}:`;
  const env = { SHUTDOWN_GRACE_MS: '600000' };
  nodes = [await startNode(model, prefix, undefined, env), await startNode(model, prefix, undefined, env)];
  const [draining] = nodes as [Node, Node];

  const dir = mkdtempSync(join(tmpdir(), 'relay-nginx-'));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n${recipe(nodes, port)}\n}\n`,
  );
  nginx = spawn(NGINX, ['-c', conf, '-p', dir], { stdio: 'ignore' });
  const viaNginx = `ws://127.0.0.1:${port}/ws`;
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok === true, 'nginx answers');

  // A reply runs on the draining node, so its shutdown waits (the grace is long).
  const asker = await TestClient.connect(draining.url);
  clients.push(asker);
  asker.send({ type: 'send', conversationId: 'drain', text: 'hold' });
  await asker.next('reply.delta');
  draining.child.kill('SIGTERM');
  const health = `http://${new URL(draining.url).host}/healthz`;
  await eventually(async () => (await fetch(health)).status === 503, 'the node drains');

  for (let i = 0; i < 8; i++) {
    const c = await TestClient.connect(viaNginx);
    clients.push(c);
  }
  assert.is(clients.length, 9, 'every socket through nginx was accepted');
});

test.run();

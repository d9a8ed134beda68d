// Operator tools (TOOLS_FILE): the relay offers them with a /ws send, runs a
// call by POSTing its arguments to the tool's endpoint, and records the answer
// as a tool.result every member sees. A tool that times out, fails, answers
// too much or redirects gives the model an error result, never a broken reply.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually, replyText, startStack, type Stack } from '../helpers.js';

/** What the tool endpoints received, and whether the huge answer was cut off before its end. */
const received: Array<{ path: string; body: string }> = [];
let hugeClosedEarly = false;
const HUGE_BYTES = 50 * 1024 * 1024;

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    req.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
  });
}

const tools = createServer((req, res) => {
  void body(req).then((text) => {
    received.push({ path: req.url ?? '', body: text });
    switch (req.url) {
      case '/lookup':
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ output: `found ${text.length} bytes of arguments` }));
      case '/slow':
        return; // never answers
      case '/broken':
        return res.writeHead(500).end('boom');
      case '/redirect':
        return res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      case '/huge': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let sent = 0;
        res.on('close', () => (hugeClosedEarly = sent < HUGE_BYTES));
        const pump = () => {
          while (sent < HUGE_BYTES) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      default:
        return res.writeHead(404).end();
    }
  });
});

function toolsFile(base: string): string {
  const spec = (name: string, path: string, extra: object = {}) => ({
    name,
    description: `the ${name} tool`,
    parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
    url: `${base}${path}`,
    ...extra,
  });
  const file = {
    tools: [
      spec('lookup', '/lookup'),
      spec('slow_tool', '/slow', { timeoutMs: 200 }),
      spec('broken_tool', '/broken'),
      spec('huge_tool', '/huge', { maxOutputBytes: 1024 }),
      spec('moved_tool', '/redirect'),
    ],
  };
  const path = join(mkdtempSync(join(tmpdir(), 'relay-tools-')), 'tools.json');
  writeFileSync(path, JSON.stringify(file));
  return path;
}

let stack: Stack;
test.before(async () => {
  await new Promise<void>((resolve) => tools.listen(0, '127.0.0.1', resolve));
  const { port } = tools.address() as AddressInfo;
  stack = await startStack({ env: { TOOLS_FILE: toolsFile(`http://127.0.0.1:${port}`) } });
});
test.after(async () => {
  await stack.close();
  tools.closeAllConnections();
  await new Promise<void>((resolve) => (tools as Server).close(() => resolve()));
});

let room = 0;
/** Ask for `tool` by name; the relay runs it, the model reads the result: the two members' view of the whole loop. */
async function useTool(tool: string) {
  const asker = await stack.connect();
  const watcher = await stack.connect();
  const conversationId = `optool-${room++}`;
  watcher.send({ type: 'join', conversationId });
  await watcher.next('joined');
  asker.send({ type: 'send', conversationId, text: `please use ${tool}` });
  const first = await asker.next('reply.end', (f) => f.conversationId === conversationId);
  assert.is(first.finishReason, 'tool_calls');
  assert.equal(first.toolCalls!.map((c) => c.name), [tool]);
  const result = await watcher.next('tool.result', () => true, 15_000);
  const final = await watcher.next('reply.end', (f) => f.replyId !== first.replyId, 15_000);
  return { first, result, final, text: replyText(watcher.frames, final.replyId) };
}

test('the operator tools are offered with a send over /ws, and their URLs never leave the server', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'optool-offer', text: 'hello' });
  await c.next('reply.end');
  const offered = stack.model.requests.at(-1)!.tools.map((t) => t.name);
  assert.equal(offered, ['lookup', 'slow_tool', 'broken_tool', 'huge_tool', 'moved_tool']);
  assert.not.match(JSON.stringify(c.frames), /127\.0\.0\.1:\d+\/lookup/);
});

test('a call runs on the relay: the endpoint gets the arguments, every member the result, the model the output', async () => {
  const { first, result, text } = await useTool('lookup');
  const args = first.toolCalls![0]!.arguments;
  assert.equal(received.find((r) => r.path === '/lookup')?.body, args, 'the arguments, as the model wrote them');
  assert.equal([result.author.id, result.isError, result.output], ['relay', false, `found ${args.length} bytes of arguments`]);
  assert.is(text, `The tools answered: lookup: found ${args.length} bytes of arguments.`);
});

const failures: Array<{ tool: string; says: RegExp }> = [
  { tool: 'slow_tool', says: /did not answer within 200 ms/ },
  { tool: 'broken_tool', says: /failed \(HTTP 500\)/ },
  { tool: 'huge_tool', says: /larger than 1024 bytes/ },
  { tool: 'moved_tool', says: /redirect \(HTTP 302\), which is not followed/ },
];
for (const { tool, says } of failures) {
  test(`${tool}: an error result the model reads, and the reply still ends cleanly`, async () => {
    const { result, final, text } = await useTool(tool);
    assert.is(result.isError, true);
    assert.match(result.output, says);
    assert.is(final.finishReason, 'stop');
    assert.match(text, new RegExp(`${tool}: Error: `));
  });
}

test('a 50 MB answer is cut off at the bound: the relay stops reading and closes the connection', async () => {
  await eventually(() => hugeClosedEarly, 'the huge answer was closed before its end');
});

test('a client may not answer the relay’s own calls, nor offer a tool under one of their names', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', ref: 'clash', conversationId: 'optool-clash', text: 'hi', tools: [{ name: 'lookup', parameters: {} }] });
  assert.is((await c.next('error', (e) => e.ref === 'clash')).code, 'bad_frame');
  c.send({ type: 'send', conversationId: 'optool-own', text: 'use slow_tool' });
  const end = await c.next('reply.end');
  c.send({ type: 'tool.result', ref: 'mine', conversationId: 'optool-own', replyId: end.replyId, toolCallId: end.toolCalls![0]!.id, output: 'fake' });
  assert.is((await c.next('error', (e) => e.ref === 'mine')).code, 'forbidden');
});

test.run();

// The AI SDK transport across relay nodes: a chat asked on one node is resumed
// by a new transport connected to another, and gets the whole reply.
import { randomUUID } from 'node:crypto';
import { WebSocketChatTransport, type UIMessage } from 'ai';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalModel } from '../../demo/localmodel.js';
import { NodeWebSocket, textOf } from '../ai-sdk.js';
import { eventually } from '../helpers.js';
import { redisAvailable, startNode, stop, type Node } from '../redis.js';

const TEXT = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
const available = await redisAvailable();
// Without Redis the test is registered as skipped: the closing line says so.
const it = available ? test : test.skip;

let model: LocalModel | undefined;
let nodes: Node[] = [];
const transports: WebSocketChatTransport<UIMessage>[] = [];
test.after(async () => {
  for (const t of transports) t.close();
  await Promise.all(nodes.map(stop));
  await model?.close();
});

const transport = (node: Node) => {
  const t = new WebSocketChatTransport<UIMessage>({ url: node.url.replace(/\/ws$/, '/ai-sdk'), webSocket: NodeWebSocket });
  transports.push(t);
  return t;
};

it('closed mid-reply on one node, resumed on another: the whole reply, every chunk once', async () => {
  model = new LocalModel({ plan: () => ({ text: TEXT, tokenDelayMs: 20 }) });
  await model.start();
  const prefix = `aisdk-${randomUUID()}:`;
  nodes = [await startNode(model, prefix), await startNode(model, prefix)];
  const first = transport(nodes[0]!);
  const stream = await first.sendMessages({
    chatId: 'hop',
    trigger: 'submit-message',
    messageId: undefined,
    abortSignal: undefined,
    messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'tell me' }] }],
  });
  await stream.getReader().read();
  first.close();
  await eventually(() => (model!.requests[0]?.tokensSent ?? 0) > 3, 'the reply goes on');
  const resumed = await transport(nodes[1]!).reconnectToStream({ chatId: 'hop' });
  assert.ok(resumed, 'the reply is active on the other node');
  assert.is(await textOf(resumed), TEXT);
});

test.run();

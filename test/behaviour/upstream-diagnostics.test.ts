// What an operator sees when the upstream fails: one warn line with the HTTP
// status, the provider's error type, code and message (the masked key in it
// redacted), the model and the upstream host; never the key, the prompt or
// the reply. /readyz (READY_CHECK_UPSTREAM) and relay_upstream_up follow the
// outcome of the calls; a cancel is not a failure.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LocalModel } from '../../demo/localmodel.js';
import { startStack, type Stack, writeModelsFile } from '../helpers.js';

const KEY = 'sk-proj-DiagnosticsTestKey0123456789abcd';
const PROMPT = 'PROMPT-TEXT-FROBOZZ';
/** OpenAI's answer to a wrong key, word for word, with the key masked as OpenAI masks it. */
const WRONG_KEY_BODY = {
  error: {
    message: 'Incorrect API key provided: sk-proj-****abcd. You can find your API key at https://platform.openai.com/account/api-keys.',
    type: 'invalid_request_error',
    param: null,
    code: 'invalid_api_key',
  },
};

interface LogLine {
  level: number;
  msg: string;
  conversationId?: string;
  replyId?: string;
  finishReason?: string;
  code?: string;
  upstream?: { model: string; host: string; status?: number; type?: string; code?: string; message?: string; requestId?: string; cause?: string };
}

let stack: Stack;
let refusing: Server;
let refusingPort: number;
let downPort: number;
const lines: string[] = [];
const logged = (): LogLine[] => lines.map((l) => JSON.parse(l) as LogLine);

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function modelsFile(model: LocalModel): string {
  const table = {
    default: 'good',
    models: {
      good: { baseURL: model.baseURL },
      'wrong-key': { baseURL: `http://127.0.0.1:${refusingPort}/v1`, apiKeyEnv: 'DIAG_KEY', upstreamModel: 'gpt-4o-mini' },
      down: { baseURL: `http://127.0.0.1:${downPort}/v1` },
    },
  };
  return writeModelsFile(table);
}

test.before(async () => {
  refusing = createServer((req, res) => {
    req.resume();
    res.writeHead(401, { 'content-type': 'application/json', 'x-request-id': 'req_diag_1' }).end(JSON.stringify(WRONG_KEY_BODY));
  });
  refusingPort = await listen(refusing);
  // A port that was free a moment ago: nothing listens there, so the upstream is down.
  const closed = createServer();
  downPort = await listen(closed);
  await new Promise((r) => closed.close(r));
  stack = await startStack({
    env: (model) => ({
      MODELS_FILE: modelsFile(model),
      DIAG_KEY: KEY,
      UPSTREAM_MAX_RETRIES: '0',
      READY_CHECK_UPSTREAM: 'true',
      READY_UPSTREAM_FAILURES: '2',
      LOG_LEVEL: 'info',
    }),
    logTo: { write: (line: string) => void lines.push(line) },
    plan: (req) => (req.messages.at(-1)?.content.includes('slow') ? { text: 'word '.repeat(200), tokenDelayMs: 20 } : { text: 'fine' }),
  });
});
test.after(async () => {
  await stack.close();
  await new Promise((r) => refusing.close(r));
});

const httpBase = () => stack.url.replace('ws:', 'http:').replace(/\/ws$/, '');

async function ask(conversationId: string, model: string, text = PROMPT) {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId, text, options: { model } });
  return c.next('reply.end');
}

async function metric(name: string, model: string): Promise<number | undefined> {
  const body = await (await fetch(`${httpBase()}/metrics`)).text();
  const m = body.match(new RegExp(`^${name}\\{model="${model}"\\} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

test('a 401 from the upstream: one warn line with status, type, code, redacted message, model and host', async () => {
  const end = await ask('diag-401', 'wrong-key');
  assert.is(end.error?.code, 'upstream_error');
  const line = logged().find((l) => l.replyId === end.replyId && l.msg.startsWith('reply ended'));
  assert.ok(line, 'the reply ended with a log line');
  assert.is(line.level, 40, 'at warn');
  assert.is(line.conversationId, 'diag-401');
  assert.is(line.code, 'upstream_error');
  assert.equal(
    { ...line.upstream },
    {
      model: 'wrong-key',
      host: `127.0.0.1:${refusingPort}`,
      status: 401,
      type: 'invalid_request_error',
      code: 'invalid_api_key',
      message: 'Incorrect API key provided: [redacted]. You can find your API key at https://platform.openai.com/account/api-keys.',
      requestId: 'req_diag_1',
    },
  );
});

test('an upstream that is down: the warn line names the connection failure', async () => {
  const end = await ask('diag-down', 'down');
  assert.is(end.error?.code, 'upstream_error');
  const line = logged().find((l) => l.replyId === end.replyId && l.msg.startsWith('reply ended'))!;
  assert.is(line.level, 40);
  assert.is(line.upstream?.model, 'down');
  assert.is(line.upstream?.host, `127.0.0.1:${downPort}`);
  assert.is(line.upstream?.cause, 'ECONNREFUSED');
  assert.is(line.upstream?.status, undefined);
});

test('/readyz answers 503 once the last replies all failed upstream, relay_upstream_up says which; a reply that works makes it ready again', async () => {
  // The two failures above are the last two replies.
  const down = await fetch(`${httpBase()}/readyz`);
  assert.is(down.status, 503);
  assert.equal(await down.json(), { ok: false, upstream: 'down' });
  assert.is((await fetch(`${httpBase()}/healthz`)).status, 200, 'alive all the same');
  assert.is(await metric('relay_upstream_up', 'wrong-key'), 0);
  assert.is(await metric('relay_upstream_up', 'down'), 0);

  const end = await ask('diag-good', 'good', 'hello');
  assert.is(end.finishReason, 'stop');
  const up = await fetch(`${httpBase()}/readyz`);
  assert.is(up.status, 200);
  assert.equal(await up.json(), { ok: true, upstream: 'up' });
  assert.is(await metric('relay_upstream_up', 'good'), 1);
  const lastSuccess = await metric('relay_upstream_last_success_timestamp_seconds', 'good');
  assert.ok(lastSuccess !== undefined && Math.abs(lastSuccess - Date.now() / 1000) < 60);
});

test('a cancel is not a failure: logged at info, the upstream stays up', async () => {
  const c = await stack.connect();
  c.send({ type: 'send', conversationId: 'diag-cancel', text: 'be slow', options: { model: 'good' } });
  await c.next('reply.delta');
  c.send({ type: 'cancel', conversationId: 'diag-cancel' });
  const end = await c.next('reply.end');
  assert.is(end.finishReason, 'cancelled');
  const line = logged().find((l) => l.replyId === end.replyId && l.msg.startsWith('reply ended'))!;
  assert.is(line.level, 30);
  assert.is(line.upstream, undefined);
  assert.is((await fetch(`${httpBase()}/readyz`)).status, 200);
});

test('the logs never hold the key, its masked form, or the prompt', () => {
  const all = lines.join('');
  for (const secret of [KEY, 'sk-proj', '****abcd', PROMPT]) assert.not.ok(all.includes(secret), `logs must not contain ${secret.slice(0, 12)}`);
});

test.run();

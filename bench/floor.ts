// Contender `floor`: the least a Node relay can do. A bare `ws` server with
// rooms; a `send` opens the upstream stream with plain node:http, and each
// chunk's content is serialized once into a frame Buffer that is written to
// every member of the room. No validation, no history, no limits: the
// practical ceiling for Node, not a product.
//
// Client frames:  {"type":"join","room":R} → {"type":"joined"}
//                 {"type":"send","room":R,"text":T,"maxTokens":N}
// Server frames:  {"type":"reply.delta","text":…} … {"type":"reply.end"}
//
//   UPSTREAM_URL=http://127.0.0.1:P/v1 PORT=0 npx tsx bench/floor.ts   → {"listen":"ws://127.0.0.1:PORT/ws"}
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const UPSTREAM = new URL(process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8081/v1');
const HOST = process.env.HOST ?? '127.0.0.1';
const PORT = Number(process.env.PORT ?? 0);

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
const rooms = new Map<string, Set<WebSocket>>();
const memberOf = new WeakMap<WebSocket, Set<string>>();
const JOINED = Buffer.from('{"type":"joined"}');
const END = Buffer.from('{"type":"reply.end"}');
const TEXT = { binary: false };

function join(ws: WebSocket, room: string): Set<WebSocket> {
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(ws);
  let mine = memberOf.get(ws);
  if (!mine) memberOf.set(ws, (mine = new Set()));
  mine.add(room);
  return members;
}

function broadcast(members: Set<WebSocket>, frame: Buffer): void {
  for (const ws of members) ws.send(frame, TEXT);
}

function stream(room: string, text: string, maxTokens: number): void {
  const members = rooms.get(room);
  if (!members) return;
  const body = JSON.stringify({
    model: 'bench-model',
    messages: [{ role: 'user', content: text }],
    stream: true,
    max_tokens: maxTokens,
    stream_options: { include_usage: true },
  });
  const req = request(
    {
      agent,
      host: UPSTREAM.hostname,
      port: UPSTREAM.port,
      method: 'POST',
      path: `${UPSTREAM.pathname.replace(/\/$/, '')}/chat/completions`,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: 'Bearer bench' },
    },
    (res) => {
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (!event.startsWith('data: ')) continue;
          const data = event.slice(6);
          if (data === '[DONE]') continue;
          const content = (JSON.parse(data) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content;
          if (content) broadcast(members, Buffer.from(`{"type":"reply.delta","text":${JSON.stringify(content)}}`));
        }
      });
      res.on('end', () => broadcast(members, END));
      res.on('error', () => broadcast(members, END));
    },
  );
  req.on('error', () => broadcast(members, END));
  req.end(body);
}

const wss = new WebSocketServer({ host: HOST, port: PORT, path: '/ws', perMessageDeflate: false, clientTracking: false, maxPayload: 65536 });
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    let frame: { type?: string; room?: string; text?: string; maxTokens?: number };
    try {
      frame = JSON.parse(data.toString()) as typeof frame;
    } catch {
      return;
    }
    if (typeof frame.room !== 'string') return;
    if (frame.type === 'join') {
      join(ws, frame.room);
      ws.send(JOINED, TEXT);
    } else if (frame.type === 'send') {
      join(ws, frame.room);
      stream(frame.room, frame.text ?? '', frame.maxTokens ?? 300);
    }
  });
  ws.on('error', () => undefined);
  ws.on('close', () => {
    for (const room of memberOf.get(ws) ?? []) {
      const members = rooms.get(room);
      members?.delete(ws);
      if (members?.size === 0) rooms.delete(room);
    }
  });
});
wss.on('listening', () => {
  const { port } = wss.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listen: `ws://${HOST}:${port}/ws` })}\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

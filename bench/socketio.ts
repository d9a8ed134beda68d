// Contender `socketio`: the relay most teams would write. Socket.IO rooms and
// the openai SDK's stream, nothing clever: join the room, `for await` the
// completion, emit each delta to the room.
//
// Client events:  emit('join', room, ack)    emit('send', {room, text, maxTokens}, ack)
// Server events:  'delta' {text} … 'end' {}
//
//   UPSTREAM_URL=http://127.0.0.1:P/v1 PORT=0 npx tsx bench/socketio.ts   → {"listen":"ws://127.0.0.1:PORT/socket.io"}
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { Server } from 'socket.io';

const HOST = process.env.HOST ?? '127.0.0.1';
const PORT = Number(process.env.PORT ?? 0);
const openai = new OpenAI({ apiKey: 'bench', baseURL: process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8081/v1' });

const http = createServer();
const io = new Server(http, { serveClient: false });

io.on('connection', (socket) => {
  socket.on('join', (room: string, ack?: () => void) => {
    void socket.join(room);
    ack?.();
  });
  socket.on('send', async (msg: { room: string; text: string; maxTokens?: number }, ack?: () => void) => {
    void socket.join(msg.room);
    ack?.();
    try {
      const stream = await openai.chat.completions.create({
        model: 'bench-model',
        messages: [{ role: 'user', content: msg.text }],
        stream: true,
        max_tokens: msg.maxTokens ?? 300,
        stream_options: { include_usage: true },
      });
      for await (const chunk of stream) {
        const text = chunk.choices[0]?.delta?.content;
        if (text) io.to(msg.room).emit('delta', { text });
      }
    } catch (err) {
      io.to(msg.room).emit('failed', { message: err instanceof Error ? err.message : String(err) });
    }
    io.to(msg.room).emit('end', {});
  });
});

http.listen(PORT, HOST, 4096, () => {
  const { port } = http.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listen: `ws://${HOST}:${port}/socket.io` })}\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

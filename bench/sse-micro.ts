// Micro-benchmark: SSE decoding when the upstream writes one event over many
// small TCP writes. The openai 6 SDK's stream decoder (Stream.fromSSEResponse:
// it re-concatenates and rescans its whole pending buffer on every read) versus
// the relay's own linear decoder (server/sse.ts SseDecoder, read the way
// server/upstream.ts reads a body). Both are fed the same bytes through a
// ReadableStream, one read per write, and both JSON.parse every event.
//
//   npx tsx bench/sse-micro.ts            → a table
//   npx tsx bench/sse-micro.ts --json     → one JSON line (used by bench/run.ts)
//   … [MS]                                 time budget per side and case (default 1500)
import { Stream } from 'openai/core/streaming';
import { SseDecoder } from '../server/upstream/sse.js';
import { now } from './common.js';

export interface MicroCase {
  name: string;
  eventBytes: number;
  writeBytes: number;
  events: number;
  sdkMsPerEvent: number;
  relayMsPerEvent: number;
  /** SDK time ÷ relay time: above 1, the relay's decoder is faster. */
  ratio: number;
}

function sseEvent(bytes: number): Uint8Array {
  const head = 'data: {"id":"chatcmpl-micro","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":"';
  const tail = '"},"finish_reason":null}]}\n\n';
  const filler = 'x'.repeat(Math.max(1, bytes - head.length - tail.length));
  return new TextEncoder().encode(head + filler + tail);
}

function slices(events: number, eventBytes: number, writeBytes: number): Uint8Array[] {
  const one = sseEvent(eventBytes);
  const out: Uint8Array[] = [];
  for (let e = 0; e < events; e++) {
    for (let i = 0; i < one.length; i += writeBytes) out.push(one.slice(i, i + writeBytes));
  }
  out.push(new TextEncoder().encode('data: [DONE]\n\n'));
  return out;
}

function body(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else controller.close();
    },
  });
}

async function viaSdk(chunks: Uint8Array[]): Promise<number> {
  const stream = Stream.fromSSEResponse<unknown>(new Response(body(chunks)), new AbortController());
  let n = 0;
  for await (const chunk of stream) if (chunk) n++;
  return n;
}

async function viaRelay(chunks: Uint8Array[]): Promise<number> {
  const decoder = new SseDecoder(16 * 1024 * 1024);
  const reader = body(chunks).getReader();
  let n = 0;
  const take = (events: Array<{ data: string }>) => {
    for (const e of events) if (e.data !== '[DONE]' && JSON.parse(e.data)) n++;
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    take(decoder.push(value));
  }
  take(decoder.end());
  return n;
}

async function time(fn: () => Promise<number>, expect: number, budgetMs: number): Promise<number> {
  const runs: number[] = [];
  const until = now() + budgetMs;
  for (let i = 0; i < 15 && (i < 3 || now() < until); i++) {
    const t = now();
    const n = await fn();
    runs.push(now() - t);
    if (n !== expect) throw new Error(`decoded ${n} events, expected ${expect}`);
  }
  runs.sort((a, b) => a - b);
  return runs[runs.length >> 1]!;
}

export async function runMicro(budgetMsPerSide = 1500): Promise<MicroCase[]> {
  const cases = [
    { name: '1 KB event in 1-byte writes', eventBytes: 1024, writeBytes: 1, events: 20 },
    { name: '64 KB event in 16-byte writes', eventBytes: 64 * 1024, writeBytes: 16, events: 2 },
    { name: 'control: 200 B events, one write each', eventBytes: 200, writeBytes: 200, events: 5000 },
    { name: 'control: 64 KB event in one write', eventBytes: 64 * 1024, writeBytes: 64 * 1024, events: 50 },
  ];
  const out: MicroCase[] = [];
  for (const c of cases) {
    const chunks = slices(c.events, c.eventBytes, c.writeBytes);
    // Warm both paths up first.
    await viaSdk(slices(2, 512, 7));
    await viaRelay(slices(2, 512, 7));
    const sdk = await time(() => viaSdk(chunks), c.events, budgetMsPerSide);
    const relay = await time(() => viaRelay(chunks), c.events, budgetMsPerSide);
    out.push({ ...c, sdkMsPerEvent: sdk / c.events, relayMsPerEvent: relay / c.events, ratio: sdk / relay });
  }
  return out;
}

export function microMarkdown(cases: MicroCase[]): string {
  const f = (x: number) => (x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(3) : x.toFixed(4));
  return [
    '| case | writes per event | openai SDK ms/event | relay SseDecoder ms/event | SDK ÷ relay |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...cases.map(
      (c) =>
        `| ${c.name} | ${Math.ceil(sseEvent(c.eventBytes).length / c.writeBytes)} | ${f(c.sdkMsPerEvent)} | ${f(c.relayMsPerEvent)} | **${c.ratio.toFixed(1)}×** |`,
    ),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const budget = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 1500);
  const cases = await runMicro(budget);
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(cases)}\n`);
  else process.stdout.write(`${microMarkdown(cases)}\n`);
}

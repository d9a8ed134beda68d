// Driving `/ai-sdk` with the `ai` package's own transport from Node.
import { readUIMessageStream, type UIMessage, type UIMessageChunk } from 'ai';
import { WebSocket } from 'ws';

/** Node 20 has no global WebSocket: the transport gets the `ws` one, in the browser's event-handler shape. */
export class NodeWebSocket {
  private readonly ws: WebSocket;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;

  constructor(url: string | URL, protocols?: string | string[]) {
    this.ws = new WebSocket(url, protocols);
    this.ws.on('open', () => this.onopen?.({}));
    this.ws.on('message', (data) => this.onmessage?.({ data }));
    this.ws.on('error', (err) => this.onerror?.(err));
    this.ws.on('close', (code, reason) => this.onclose?.({ code, reason: reason.toString() }));
  }

  get readyState(): number {
    return this.ws.readyState;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  send(data: string | Uint8Array | ArrayBuffer): void {
    this.ws.send(data);
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
}

/** The assistant text a UIMessageChunk stream adds up to, as `useChat` would show it. */
export async function textOf(stream: ReadableStream<UIMessageChunk>): Promise<string> {
  let last: UIMessage | undefined;
  for await (const message of readUIMessageStream({ stream })) last = message;
  return (last?.parts ?? []).map((p) => (p.type === 'text' ? p.text : '')).join('');
}

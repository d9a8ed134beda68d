// A response that streams Server-Sent Events to an HTTP adapter's client (the
// OpenAI API, AG-UI), bounded: a reader that lets too much pile up unsent is
// not reading, and is dropped rather than held in memory.
import type { ServerResponse } from 'node:http';
import type { FollowerOutput } from '../rooms/reply-follower.js';

export class SseResponse {
  /** What a conversation member writing here needs: backpressure and the way out. */
  readonly output: FollowerOutput;
  /** Dropped for falling too far behind (not closed by the client). */
  overflowed = false;

  constructor(
    private readonly res: ServerResponse,
    /** Bytes the response may hold unsent before the reader counts as gone. */
    private readonly limitBytes: number,
    private readonly headers: Record<string, string> = {},
  ) {
    this.output = {
      get backlogged() {
        return res.writableNeedDrain;
      },
      drained: () => (res.writableNeedDrain ? new Promise<void>((resolve) => res.once('drain', () => resolve())) : Promise.resolve()),
      overflow: () => this.drop(),
    };
  }

  get opened(): boolean {
    return this.res.headersSent;
  }

  /** Send the headers, once. */
  open(): void {
    if (this.res.headersSent) return;
    this.res.writeHead(200, { ...this.headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  }

  /** One `data:` event of JSON. */
  data(body: unknown): void {
    this.open();
    this.res.write(`data: ${JSON.stringify(body)}\n\n`);
    if (this.res.writableLength > this.limitBytes) this.drop();
  }

  private drop(): void {
    this.overflowed = true;
    this.res.destroy();
  }

  end(last?: string): void {
    this.open();
    this.res.end(last);
  }
}

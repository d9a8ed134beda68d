// A Server-Sent Events decoder for upstream response bodies. Linear in the
// bytes it reads however the events are fragmented across reads (a partial
// line is kept as pieces and joined once), and bounded: an event larger than
// `maxEventChars` is an error rather than an ever-growing buffer.

export interface SseEvent {
  event: string;
  data: string;
}

export class SseOverflowError extends Error {
  override name = 'SseOverflowError';
}

export class SseDecoder {
  private readonly text = new TextDecoder('utf-8');
  private partial: string[] = [];
  private partialLength = 0;
  /** The event's data lines: the first on its own (nearly every event has one), the rest in `more`. */
  private data: string | undefined;
  private more: string[] = [];
  private dataLength = 0;
  private event = '';
  /** A chunk ended in \r: a \n opening the next one belongs to the same line break. */
  private skipLineFeed = false;

  constructor(private readonly maxEventChars: number) {}

  /**
   * Feed bytes, or text from a stream that already decodes UTF-8 (Node's
   * `setEncoding('utf8')`, the cheaper path); one decoder takes one kind.
   * Returns the events they complete.
   */
  push(chunk: string | Uint8Array): SseEvent[] {
    return this.decode(typeof chunk === 'string' ? chunk : this.text.decode(chunk, { stream: true }));
  }

  /** The body ended: flush what a final line break would have completed. */
  end(): SseEvent[] {
    return this.decode(this.text.decode() + '\n\n');
  }

  private decode(chunk: string): SseEvent[] {
    const events: SseEvent[] = [];
    let start = 0;
    if (this.skipLineFeed && chunk.charCodeAt(0) === 10) start = 1;
    this.skipLineFeed = false;
    // The next \r is looked up again only once passed: most bodies have none, and rescanning the rest of
    // the chunk for every line would be quadratic in a read that carries many events.
    let cr = -2;
    while (start < chunk.length) {
      const lf = chunk.indexOf('\n', start);
      if (cr !== -1 && cr < start) cr = chunk.indexOf('\r', start);
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (end < 0) break;
      let line = chunk.slice(start, end);
      if (this.partial.length) {
        this.partial.push(line);
        line = this.partial.join('');
        this.partial = [];
        this.partialLength = 0;
      }
      start = end + 1;
      if (chunk.charCodeAt(end) === 13) {
        if (start === chunk.length) this.skipLineFeed = true;
        else if (chunk.charCodeAt(start) === 10) start++;
      }
      const event = this.line(line);
      if (event) events.push(event);
    }
    if (start < chunk.length) {
      const rest = chunk.slice(start);
      this.partialLength += rest.length;
      if (this.partialLength + this.dataLength > this.maxEventChars) {
        throw new SseOverflowError(`an upstream event exceeded ${this.maxEventChars} characters`);
      }
      this.partial.push(rest);
    }
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      if (this.data === undefined) {
        this.event = '';
        return undefined;
      }
      const data = this.more.length ? [this.data, ...this.more].join('\n') : this.data;
      const event = { event: this.event, data };
      this.data = undefined;
      if (this.more.length) this.more = [];
      this.dataLength = 0;
      this.event = '';
      return event;
    }
    if (line.charCodeAt(0) === 58) return undefined; // ":" comment, e.g. keep-alives
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') {
      this.dataLength += value.length;
      if (this.dataLength > this.maxEventChars) {
        throw new SseOverflowError(`an upstream event exceeded ${this.maxEventChars} characters`);
      }
      if (this.data === undefined) this.data = value;
      else this.more.push(value);
    } else if (field === 'event') {
      this.event = value;
    }
    return undefined;
  }
}

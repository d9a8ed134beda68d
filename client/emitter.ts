// A tiny typed event emitter that runs in browsers and Node alike (node:events
// would drag a polyfill into the page bundle).

type Listener<T> = (payload: T) => void;

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Subscribe; returns the function that unsubscribes. */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => this.off(name, listener);
  }

  once<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(name, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): void {
    this.listeners.get(name)?.delete(listener);
  }

  protected emit<K extends keyof Events>(name: K, payload: Events[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of [...set] as Listener<Events[K]>[]) {
      try {
        listener(payload);
      } catch (err) {
        // An app bug in one listener must not corrupt the client's state machine
        // half-way through a frame; surface it outside our call stack instead.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  protected hasListeners(name: keyof Events): boolean {
    return (this.listeners.get(name)?.size ?? 0) > 0;
  }
}

/**
 * A bounded async queue behind an async iterator. Producers never block; when
 * the consumer falls `limit` items behind, the iterator fails rather than
 * silently dropping items (the caller chose exactly-once, so loss must be loud).
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void } | undefined;
  private done = false;
  private failure: Error | undefined;

  constructor(
    private readonly limit: number,
    private readonly onReturn: () => void = () => {},
  ) {}

  push(item: T): void {
    if (this.done || this.failure) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: item, done: false });
      return;
    }
    if (this.items.length >= this.limit) {
      this.fail(new Error(`iterator fell more than ${this.limit} items behind`));
      return;
    }
    this.items.push(item);
  }

  /** Replace the newest buffered item (used to coalesce text pieces instead of growing). */
  mergeLast(merge: (last: T) => T, item: T): void {
    if (!this.waiting && this.items.length > 0 && this.items.length >= this.limit / 2) {
      this.items[this.items.length - 1] = merge(this.items[this.items.length - 1]!);
      return;
    }
    this.push(item);
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.onReturn();
    if (this.waiting && this.items.length === 0) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  fail(error: Error): void {
    if (this.done || this.failure) return;
    this.failure = error;
    this.onReturn();
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.reject(error);
    }
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.failure) return Promise.reject(this.failure);
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.items.length = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

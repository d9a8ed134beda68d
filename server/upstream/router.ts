// Where a model's calls go: its route in the model table, one SDK client per
// upstream, and the fallbacks tried when an upstream fails before it answers.
import { setTimeout as delay } from 'node:timers/promises';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { AttachmentKind } from '../attachments/kinds.js';
import { blamesUpstream, RelayError, upstreamFault, worthAnotherUpstream } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ToolSpec } from '../../shared/protocol.js';
import type { Dialect, Turn } from './dialect.js';
import { anthropicDialect } from './dialects/anthropic.js';
import { chatDialect } from './dialects/chat.js';
import { responsesDialect } from './dialects/responses.js';
import { nodeFetch } from './http-fetch.js';
import { UpstreamHealth, type HealthSettings } from './health.js';
import { upstreamHost, type ModelTable, type Route } from './models.js';
import type { DialectName } from './dialect.js';
import { UpstreamError, type Completion, type UpstreamCursor, type UpstreamUsage } from './pieces.js';
import { streamCall, type OnPiece, type StreamLimits } from './stream.js';

/** Tries at stopping a background response, the next one this much later each time. */
const CANCEL_ATTEMPTS = 3;
const CANCEL_RETRY_MS = 250;

export interface UpstreamSettings extends StreamLimits {
  maxRetries: number;
  /** Ask chat.completions upstreams for usage in the stream (`stream_options.include_usage`). */
  includeUsage: boolean;
  /** Keep-alive connections kept open between replies, over all upstreams. */
  maxIdleConnections: number;
  health: HealthSettings;
}

/** One model of the table as the start-up line names it. */
export interface UpstreamSummary {
  /** The name clients use; `*` for any other name (ALLOWED_MODELS=*). */
  model: string;
  upstreamModel: string;
  dialect: DialectName;
  host: string;
}

export interface ModelRequest {
  turns: Turn[];
  tools?: ToolSpec[] | undefined;
  temperature?: number | undefined;
  maxTokens?: number | undefined;
}

export class Upstreams {
  private readonly dialects = new Map<Route, Dialect>();
  private readonly fetch: typeof fetch;
  readonly health: UpstreamHealth;

  constructor(
    private readonly table: ModelTable,
    private readonly settings: UpstreamSettings,
    private readonly deps: { log: Logger; metrics: Metrics },
  ) {
    this.fetch = nodeFetch(settings.maxIdleConnections);
    this.health = new UpstreamHealth(deps.metrics, settings.health);
  }

  get defaultModel(): string {
    return this.table.defaultModel;
  }

  /** The models a client may name, the default first. */
  list(): Array<{ id: string; default?: boolean }> {
    const names = [this.table.defaultModel, ...[...this.table.routes.keys()].filter((n) => n !== this.table.defaultModel)];
    return names.map((id) => (id === this.table.defaultModel ? { id, default: true } : { id }));
  }

  /** Where each model's calls go, the default first. */
  describe(): UpstreamSummary[] {
    const summary = (model: string, r: Route): UpstreamSummary => ({ model, upstreamModel: r.upstreamModel, dialect: r.dialect, host: upstreamHost(r) });
    const named = this.list().map(({ id }) => summary(id, this.table.routes.get(id)!));
    return this.table.passThrough ? [...named, summary('*', this.table.passThrough)] : named;
  }

  /** The host a model's calls go to ('unknown' for a model not offered). */
  hostOf(model: string): string {
    const route = this.table.routes.get(model) ?? this.table.passThrough;
    return route ? upstreamHost(route) : 'unknown';
  }

  allows(model: string): boolean {
    return this.table.routes.has(model) || this.table.passThrough !== undefined;
  }

  /** Does the model take attachments of this kind (the model table's `attachments`)? */
  accepts(model: string, kind: AttachmentKind): boolean {
    return this.routeOf(model).attachments.includes(kind);
  }

  /** The context budget of a model, where its route sets one. */
  contextTokens(model: string): number | undefined {
    return this.routeOf(model).contextTokens;
  }

  /**
   * Stream a call to `model`. When its upstream fails before answering (no
   * connection, 429, 5xx, after the SDK's own retries), each of its fallbacks
   * is tried in turn; nothing has been shown by then, so the reply goes on as
   * if the fallback had been asked first. A failure leaves with its `detail`
   * (model, host, what the upstream said) for the reply's log line. `log` is
   * the reply's, with its ids.
   */
  async stream(
    model: string,
    req: ModelRequest,
    signal: AbortSignal,
    onPiece: OnPiece,
    log: Logger = this.deps.log,
  ): Promise<Completion> {
    const first = this.routeOf(model);
    const chain = [first, ...first.fallbacks.map((name) => this.routeOf(name))];
    for (let i = 0; ; i++) {
      const route = chain[i]!;
      // A name passed through to the upstream (ALLOWED_MODELS=*) is the client's: one label for all of them.
      const label = this.table.routes.has(route.name) ? route.name : '*';
      let completion: Completion;
      try {
        completion = await streamCall(this.dialectOf(route), { model: route.upstreamModel, ...req, extra: route.options, background: route.background }, this.settings, signal, onPiece);
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        err.detail = { model: route.name, host: upstreamHost(route), ...upstreamFault(err.raw, [route.apiKey]) };
        // `internal` is the relay's own failure (a store write from onPiece), not the upstream's.
        const blamed = err.code !== 'internal' && blamesUpstream(err.raw);
        if (blamed) this.health.call(label, false);
        const next = chain[i + 1];
        if (!next || !err.beforeResponse || !worthAnotherUpstream(err.raw)) {
          if (blamed) this.health.reply(false);
          throw err;
        }
        log.warn({ model: route.name, fallback: next.name, code: err.code, upstream: err.detail }, 'upstream failed before answering; trying the fallback');
        this.deps.metrics.upstreamFallbacks.inc({ from: route.name, to: next.name });
        continue;
      }
      // A cancel says nothing about the upstream; a stream that ended without saying how it finished was cut short.
      if (!signal.aborted) {
        const up = completion.finishReason !== undefined;
        this.health.call(label, up);
        this.health.reply(up);
      }
      return { ...completion, servedBy: route.name };
    }
  }

  /** Does the model run its replies as background responses (so a lost node's reply can be re-attached to)? */
  runsInBackground(model: string): boolean {
    return this.routeOf(model).background;
  }

  /**
   * Continue a background response of `model` after `cursor`, as a stream of
   * its own (no fallbacks: the response lives at that upstream or nowhere).
   */
  async reattach(model: string, cursor: UpstreamCursor, signal: AbortSignal, onPiece: OnPiece): Promise<Completion> {
    const route = this.routeOf(model);
    const dialect = this.dialectOf(route);
    const background = dialect.background;
    if (!route.background || !background) throw new RelayError('upstream_error', `model ${model} has no background responses to re-attach to`);
    const resumed: Dialect = { request: (_call, s) => background.reattach(cursor, s), reader: () => dialect.reader(cursor) };
    const completion = await streamCall(resumed, { model: route.upstreamModel, turns: [], background: true }, this.settings, signal, onPiece);
    return { ...completion, servedBy: route.name };
  }

  /**
   * Stop a background response: closing its stream does not. Tried a few
   * times; a failure is logged (the provider may bill on until it ends).
   */
  async cancelBackground(model: string, responseId: string, log: Logger): Promise<void> {
    const route = this.routeOf(model);
    const cancel = route.background ? this.dialectOf(route).background?.cancel : undefined;
    if (!cancel) return;
    for (let attempt = 1; ; attempt++) {
      try {
        return await cancel(responseId);
      } catch (err) {
        log.warn({ attempt, err: err instanceof Error ? err.message : String(err) }, 'cancelling the background response upstream failed');
        if (attempt >= CANCEL_ATTEMPTS) return;
        await delay(CANCEL_RETRY_MS * attempt);
      }
    }
  }

  /** What a reply cost at its model's prices; undefined when the table has none. */
  costOf(model: string, usage: UpstreamUsage): number | undefined {
    const prices = this.table.routes.get(model)?.prices;
    if (!prices) return undefined;
    const cached = Math.min(usage.cachedTokens ?? 0, usage.promptTokens);
    return ((usage.promptTokens - cached) * prices.input + cached * (prices.cachedInput ?? prices.input) + usage.completionTokens * prices.output) / 1e6;
  }

  /** Counts what a reply cost upstream, by the provider's own token count, if the table has prices. */
  charge(model: string, usage: UpstreamUsage): void {
    const dollars = this.costOf(model, usage);
    if (dollars !== undefined) this.deps.metrics.upstreamCost.inc({ model }, dollars);
  }

  /** The dialect a model's calls speak ('unknown' for a name no route serves). */
  dialectName(model: string): string {
    return (this.table.routes.get(model) ?? this.table.passThrough)?.dialect ?? 'unknown';
  }

  private routeOf(model: string): Route {
    const route = this.table.routes.get(model) ?? (this.table.passThrough && { ...this.table.passThrough, name: model, upstreamModel: model });
    if (!route) throw new RelayError('forbidden', `model ${model} is not offered on this server`);
    return route;
  }

  private dialectOf(route: Route): Dialect {
    const key = this.table.routes.get(route.name) ?? this.table.passThrough!;
    let dialect = this.dialects.get(key);
    if (!dialect) {
      dialect = this.create(route);
      this.dialects.set(key, dialect);
    }
    return dialect;
  }

  private create(route: Route): Dialect {
    const common = {
      apiKey: route.apiKey,
      maxRetries: this.settings.maxRetries,
      // Per attempt, until the response begins; an attempt that hears nothing is retried like a failed one.
      timeout: this.settings.idleTimeoutMs,
      // The SDKs' loggers would print raw response lines (model output) on some errors.
      logLevel: 'off' as const,
      fetch: this.fetch,
    };
    if (route.dialect === 'anthropic') {
      // The SDK appends /v1/messages itself; a base URL copied from an OpenAI setup ends in /v1 already.
      return anthropicDialect(new Anthropic({ ...common, baseURL: route.baseURL?.replace(/\/v1\/?$/, '') }));
    }
    const client = new OpenAI({ ...common, baseURL: route.baseURL });
    return route.dialect === 'responses' ? responsesDialect(client) : chatDialect(client, this.settings.includeUsage);
  }
}

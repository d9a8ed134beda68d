// One assistant reply, start to end: build the context, stream the upstream
// completion into reply.delta events, and always finish with exactly one
// reply.end whose finish reason says what really happened.
import type { ConversationSettings, FinishReason, ReplyError, ToolCall, Usage } from '../../shared/protocol.js';
import { buildContext, clientContext, countTokens, type BuiltContext, type ContextMessage } from './context.js';
import { RelayError } from '../errors.js';
import { toolResultId } from '../history/fold.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Fence, LedgerEntry, ReplyEventInput, ReplyJob, Resumable } from '../backend/store.js';
import { billFor } from '../usage/bill.js';
import { UpstreamError, type Completion, type Piece, type UpstreamCursor, type UpstreamDetail } from '../upstream/pieces.js';
import type { Upstreams } from '../upstream/router.js';
import { withFiles } from '../attachments/load.js';
import { describe, type Moderation } from '../moderation/index.js';

export interface ReplySettings {
  systemPrompt: string;
  /** The context budget of a model whose route sets none. */
  contextTokens: number;
  maxReplyMs: number;
}

/** Why a reply's AbortController fired: a RelayError is a failure, anything else a cancel. */
export type AbortReason = 'cancel' | 'grace' | 'shutdown' | RelayError;

export interface ReplyRun {
  upstreams: Upstreams;
  settings: ReplySettings;
  conversationId: string;
  job: ReplyJob;
  /** Read when the reply starts (a queued reply answers the history as it is then, with the conversation's system prompt then). */
  history: () => Promise<{ messages: ContextMessage[]; settings: ConversationSettings }>;
  /** The bytes of an attachment the context carries (undefined once it has expired). */
  readAttachment: (id: string) => Promise<Buffer | undefined>;
  /** Checks the reply as it streams, when the operator turned moderation on. */
  moderation?: Moderation | undefined;
  /** A reply adopted from a lost node: re-attach to its background response where it stood, instead of starting it. */
  resume?: Resumable | undefined;
  /** The one controller of this reply: cancel, grace, shutdown, deadlines and quota all abort through it. */
  controller: AbortController;
  /** Counts completion tokens against the user's quota; false once it is crossed. */
  meter: (tokens: number) => boolean | Promise<boolean>;
  log: Logger;
  metrics: Metrics;
}

/** How a reply ends whose node was lost, when nothing can carry it on. */
export const LOST_NODE_MESSAGE = 'the relay stopped (or lost its node) before this reply finished';

export async function runReply(
  run: ReplyRun,
  /** Writes an event; the reply.end comes with its bill for the usage ledger. */
  append: (event: ReplyEventInput, fence?: Fence, bill?: LedgerEntry) => void | Promise<void>,
): Promise<{ finishReason: FinishReason; usage: Usage; toolCalls: ToolCall[] }> {
  const { upstreams, settings, conversationId, job, history, readAttachment, controller, meter, log, metrics, resume } = run;
  const { replyId } = job;
  // A re-attached reply goes on after the last event its lost node wrote.
  let ordinal = resume ? resume.ordinal + 1 : 0;
  // Once per token: the event and its fence, the cursor in it only for a background response.
  const delta = (piece: Piece, cursor: UpstreamCursor | undefined) =>
    append({ type: 'reply.delta', conversationId, replyId, ...piece }, cursor ? { ordinal: ordinal++, cursor } : { ordinal: ordinal++ });
  const signal = controller.signal;
  const gate = run.moderation?.gate({
    emit: delta,
    cut: (verdict) => controller.abort(new RelayError('moderated', `the reply was stopped by moderation (${describe(verdict)})`)),
  });
  const model = job.options?.model ?? upstreams.defaultModel;
  let context: BuiltContext | undefined;
  const deadline = setTimeout(
    () => controller.abort(new RelayError('upstream_timeout', `the reply took longer than ${settings.maxReplyMs} ms`)),
    settings.maxReplyMs,
  );
  let generated = '';
  // Mid-reply the quota is metered at one token per upstream piece (what chunks nearly always
  // carry), which keeps the tokenizer off the per-token path; the end reconciles exactly.
  let metered = 0;
  const startedAt = performance.now();
  let lastPieceAt = 0;
  let abortedAt = 0;
  signal.addEventListener('abort', () => (abortedAt = performance.now()), { once: true });
  const overQuota = () => controller.abort(new RelayError('quota_exceeded', 'the token quota of this user ran out during the reply'));
  const settle = async (appended: void | Promise<void>, allowed: boolean | Promise<boolean>) => {
    await appended;
    if (!(await allowed)) overQuota();
  };
  let completion: Completion | undefined;
  let failure: RelayError | undefined;
  /** Where the failed upstream call went and what it said, for the operator. */
  let upstream: UpstreamDetail | undefined;
  const onPiece = (piece: Piece, cursor: UpstreamCursor | undefined) => {
    // Pieces that were already in flight when the reply was cancelled are dropped.
    if (signal.aborted) return undefined;
    if (piece.text) generated += piece.text;
    if (piece.reasoning) generated += piece.reasoning;
    if (piece.refusal) generated += piece.refusal;
    if (piece.toolCall?.arguments) generated += piece.toolCall.arguments;
    const now = performance.now();
    if (lastPieceAt) metrics.interToken.observe((now - lastPieceAt) / 1000);
    else metrics.ttft.observe((now - startedAt) / 1000);
    lastPieceAt = now;
    metrics.deltas.inc();
    const appended = gate ? gate.push(piece, cursor) : delta(piece, cursor);
    metered++;
    const allowed = meter(1);
    // A store and limits in this process answer at once: no promise per token then.
    if (appended || allowed instanceof Promise) return settle(appended, allowed);
    if (!allowed) overQuota();
    return undefined;
  };
  const startAndStream = async (): Promise<Completion> => {
    const budget = upstreams.contextTokens(model) ?? settings.contextTokens;
    const conversation = await history();
    context = await buildContext(conversation.settings.systemPrompt ?? settings.systemPrompt, answered(conversation.messages, job), budget);
    const turns = await withFiles(context.messages, { read: readAttachment, accepts: (kind) => upstreams.accepts(model, kind) });
    // The job goes with the start, for whichever node adopts the reply if this one is lost.
    const siblings = job.placeAt?.siblings;
    await append({ type: 'reply.start', conversationId, replyId, inReplyTo: job.inReplyTo, model, ...(siblings ? { siblings } : {}) }, { ordinal: ordinal++, job });
    log.debug({ model, promptTokens: context.promptTokens, messages: context.messages.length }, 'reply started');
    return upstreams.stream(model, { turns, temperature: job.options?.temperature, maxTokens: job.options?.maxTokens, tools: job.tools }, signal, onPiece, log);
  };
  try {
    // Inside the try: a history that cannot be read still ends the reply with its one reply.end.
    completion = resume ? await upstreams.reattach(model, resume.cursor, signal, onPiece) : await startAndStream();
    // The whole reply is checked once more and buffered pieces still held go out if it passes; a stopped one lets nothing more out.
    await (signal.aborted ? gate?.close() : gate?.finish());
  } catch (err) {
    await gate?.close();
    failure = err instanceof RelayError ? err : new RelayError('internal', 'the reply failed unexpectedly');
    if (err instanceof UpstreamError) {
      completion = err.partial;
      upstream = err.detail;
      // The upstream would not take the lost node's reply back (expired, failed): it ends as any lost reply does.
      if (resume && !lastPieceAt) failure = new RelayError('internal', LOST_NODE_MESSAGE);
    } else log.error({ err }, 'reply failed');
  } finally {
    clearTimeout(deadline);
  }

  // The upstream call has returned: its request is closed.
  if (abortedAt) metrics.cancelLatency.observe((performance.now() - abortedAt) / 1000);
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  if (reason instanceof RelayError) failure = reason;
  let finishReason: FinishReason;
  let error: ReplyError | undefined;
  if (failure) {
    // Moderation's cut is the relay's own content filter.
    finishReason = failure.code === 'moderated' ? 'content_filter' : 'error';
    error = { code: failure.code, message: failure.message };
  } else if (signal.aborted) {
    finishReason = 'cancelled';
  } else if (completion?.finishReason) {
    finishReason = completion.finishReason;
  } else {
    finishReason = 'error';
    error = { code: 'upstream_error', message: 'the model API stream ended without a finish reason (truncated)' };
  }

  // Closing a background response's stream does not stop it: one that did not end by itself is stopped upstream too.
  const cursor = completion?.cursor ?? resume?.cursor;
  const stopping = cursor && (signal.aborted || finishReason === 'error') ? upstreams.cancelBackground(completion?.servedBy ?? model, cursor.responseId, log) : undefined;
  // Arguments of a reply that failed or was cancelled may be cut short: only a clean end reports tool calls.
  const toolCalls = finishReason === 'error' || finishReason === 'cancelled' || failure?.code === 'moderated' ? [] : (completion?.toolCalls ?? []);
  // The model that answered: a fallback's name when the one asked for failed before answering.
  const servedBy = completion?.servedBy ?? upstream?.model ?? model;
  let usage: Usage;
  if (completion?.usage) {
    usage = { ...completion.usage, source: 'upstream' };
    upstreams.charge(servedBy, completion.usage);
  } else {
    const completionTokens = countTokens(generated + toolCalls.map((t) => t.name).join(''));
    // No context (its history could not be read): nothing was sent, nothing to bill for the prompt.
    const promptTokens = context?.promptTokens ?? 0;
    usage = { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, source: 'estimated' };
  }
  // What is billed is the upstream's count (or ours): settle the difference with the per-piece meter.
  if (usage.completionTokens > metered) {
    await Promise.resolve()
      .then(() => meter(usage.completionTokens - metered))
      .catch((err: unknown) => log.warn({ err }, 'metering failed'));
  }
  const end: ReplyEventInput = {
    type: 'reply.end',
    conversationId,
    replyId,
    finishReason,
    usage,
    ...(toolCalls.length ? { toolCalls } : {}),
    ...(error ? { error } : {}),
    ...(gate?.verdict?.redact ? { redacted: true } : {}),
  };
  const bill = billFor(upstreams, { conversationId, replyId, userId: job.user.id, keyId: job.keyId, model: servedBy }, { finishReason, usage, error });
  // A reply that never started (its history could not be read) ends like a queued one: unfenced, nothing to fold.
  await (ordinal > 0 ? append(end, { ordinal: ordinal++ }, bill) : append(end, undefined, bill));
  metrics.replies.inc({ finish_reason: finishReason });
  metrics.completionTokens.inc({ source: usage.source }, usage.completionTokens);
  if (error && error.code.startsWith('upstream')) metrics.upstreamErrors.inc({ code: error.code });
  if (error?.code.startsWith('upstream')) {
    // The operator's one line on why: status, the provider's error and message, model and host (never key, prompt or text).
    upstream ??= { model, host: upstreams.hostOf(model), message: error.message };
    log.warn({ finishReason, code: error.code, completionTokens: usage.completionTokens, upstream }, 'reply ended: the upstream failed');
  } else {
    log.info({ finishReason, code: error?.code, completionTokens: usage.completionTokens }, 'reply ended');
  }
  await stopping;
  // Only a reply that ended asking for tools waits for their results.
  return { finishReason, usage, toolCalls: finishReason === 'tool_calls' ? toolCalls : [] };
}

/** What a reply answers: the client's own context, or the history up to its message (a queued reply answers its own message, not the ones sent while it waited). */
export function answered(history: ContextMessage[], job: Pick<ReplyJob, 'inReplyTo' | 'context'>): ContextMessage[] {
  if (job.context) return clientContext(job.context);
  const upTo = history.findIndex((m) => m.id === job.inReplyTo);
  if (upTo < 0) return history;
  // A step of a tool loop answers a reply, and the results of its calls, which history holds after it.
  const results = history.slice(upTo + 1).filter((m) => m.turn.role === 'tool' && m.id.startsWith(toolResultId(job.inReplyTo, '')));
  return [...history.slice(0, upTo + 1), ...results];
}

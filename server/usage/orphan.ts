// The bill of a reply whose node was lost mid-stream: the node that ends it
// for everyone bills what the log shows was generated, counted by the relay's
// tokenizer, and the prompt that reply would have sent. The asker is read from
// history (the API key it came through, if any, went with the lost node).
import type { ReplyError } from '../../shared/protocol.js';
import type { LedgerEntry, Store } from '../backend/store.js';
import { rootOf } from '../history/fold.js';
import { buildContext, countTokens } from '../reply/context.js';
import { answered, type ReplySettings } from '../reply/reply.js';
import type { Upstreams } from '../upstream/router.js';
import { billFor } from './bill.js';

export interface OrphanDeps {
  store: Store;
  upstreams: Upstreams;
  settings: ReplySettings;
}

export async function orphanBill(deps: OrphanDeps, conversationId: string, replyId: string, error: ReplyError): Promise<LedgerEntry> {
  const { store, upstreams, settings } = deps;
  const snap = await store.log.snapshot(conversationId);
  const streaming = snap.streaming?.replyId === replyId ? snap.streaming : undefined;
  const model = streaming?.model ?? upstreams.defaultModel;
  const { root } = rootOf(new Map(snap.history.map((m) => [m.id, m])), streaming?.inReplyTo);
  const calls = (streaming?.toolCalls ?? []).map((c) => c.name + c.arguments).join('');
  const completionTokens = streaming ? countTokens(streaming.text + (streaming.reasoning ?? '') + (streaming.refusal ?? '') + calls) : 0;
  let promptTokens = 0;
  if (streaming?.inReplyTo) {
    const budget = upstreams.contextTokens(model) ?? settings.contextTokens;
    promptTokens = (await buildContext(settings.systemPrompt, answered(await store.log.context(conversationId), { inReplyTo: streaming.inReplyTo }), budget)).promptTokens;
  }
  const usage = { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, source: 'estimated' as const };
  return billFor(upstreams, { conversationId, replyId, userId: root?.author?.id ?? 'unknown', model }, { finishReason: 'error', usage, error });
}

// The bill of a reply whose node was lost mid-stream: the node that ends it
// for everyone bills what the log shows was generated, counted by the relay's
// tokenizer, and the prompt that reply would have sent. The asker is the job's,
// where the store kept it, else read from history (then the API key it came
// through, if any, went with the lost node).
import type { ReplyError } from '../../shared/protocol.js';
import type { LedgerEntry, ReplyJob, Store } from '../backend/store.js';
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

/** `asked`: the job that asked for the reply, where the store kept it (who to bill, under which key). */
export async function orphanBill(deps: OrphanDeps, conversationId: string, replyId: string, error: ReplyError, asked?: ReplyJob): Promise<LedgerEntry> {
  const { store, upstreams, settings } = deps;
  const snap = await store.log.snapshot(conversationId);
  const streaming = snap.streaming?.replyId === replyId ? snap.streaming : undefined;
  const model = streaming?.model ?? asked?.options?.model ?? upstreams.defaultModel;
  const { root } = rootOf(new Map(snap.history.map((m) => [m.id, m])), streaming?.inReplyTo);
  const calls = (streaming?.toolCalls ?? []).map((c) => c.name + c.arguments).join('');
  const completionTokens = streaming ? countTokens(streaming.text + (streaming.reasoning ?? '') + (streaming.refusal ?? '') + calls) : 0;
  let promptTokens = 0;
  if (streaming?.inReplyTo) {
    const budget = upstreams.contextTokens(model) ?? settings.contextTokens;
    const conversation = await store.log.context(conversationId);
    const systemPrompt = conversation.settings.systemPrompt ?? settings.systemPrompt;
    promptTokens = (await buildContext(systemPrompt, answered(conversation.messages, { inReplyTo: streaming.inReplyTo }), budget)).promptTokens;
  }
  const usage = { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, source: 'estimated' as const };
  const userId = asked?.user.id ?? root?.author?.id ?? 'unknown';
  return billFor(upstreams, { conversationId, replyId, userId, keyId: asked?.keyId, model }, { finishReason: 'error', usage, error });
}

// What a send becomes before it is written: the model it may ask for, its
// files claimed, its text moderated, the reply slot taken; then the message
// and the job that will answer it. Whatever refuses it throws before any of
// it is kept (the slot is the caller's to give back if the write fails).
import { randomUUID } from 'node:crypto';
import type { Attachment, ClientFrameOf, ConversationSettings, ToolSpec, User, UserMessage } from '../../shared/protocol.js';
import type { AttachmentStore, ClientMessage, ReplyJob } from '../backend/store.js';
import { claimAttachments, referenceAttachments } from '../attachments/claim.js';
import { RelayError } from '../errors.js';
import type { Moderation } from '../moderation/index.js';
import type { UserLimits } from '../session/limits.js';
import type { Upstreams } from '../upstream/router.js';
import { optionsFor } from '../history/changes.js';

export interface AdmitDeps {
  attachments: AttachmentStore;
  upstreams: Upstreams;
  moderation: Moderation | undefined;
  userLimits: UserLimits;
}

export interface SendExtras {
  tools: ToolSpec[] | undefined;
  /** The conversation's settings: the reply's model and options where the send names none. */
  settings: ConversationSettings;
  /** An edit keeps the files of the message it edits (claimed when that was sent). */
  attachments?: Attachment[] | undefined;
  /** The client's own context (the OpenAI HTTP API) and the API key the reply is counted under. */
  context?: ClientMessage[];
  keyId?: string;
}

export async function admitSend(
  deps: AdmitDeps,
  conversationId: string,
  user: User,
  frame: ClientFrameOf<'send'>,
  extras: SendExtras,
): Promise<{ message: UserMessage; job: ReplyJob | undefined }> {
  const { upstreams, userLimits } = deps;
  const options = optionsFor(extras.settings, frame.options);
  const model = options?.model;
  const wantsReply = frame.reply ?? true;
  if (wantsReply && model && !upstreams.allows(model)) throw new RelayError('forbidden', `model ${model} is not allowed on this server`);
  const attachments = frame.attachments?.length
    ? await claimAttachments(deps.attachments, upstreams, frame.attachments, { userId: user.id, conversationId, model: model ?? upstreams.defaultModel })
    : extras.attachments;
  await deps.moderation?.checkMessage(frame.text, attachments, (id) => deps.attachments.data(id));
  const messageId = randomUUID();
  let job: ReplyJob | undefined;
  if (wantsReply) {
    await userLimits.startReply(user.id);
    const { tools, context, keyId } = extras;
    job = { replyId: randomUUID(), inReplyTo: messageId, user, options, ...(tools ? { tools } : {}), ...(context ? { context } : {}), ...(keyId ? { keyId } : {}) };
  }
  if (attachments && !extras.attachments) await referenceAttachments(deps.attachments, attachments, conversationId);
  const message: UserMessage = {
    id: messageId,
    role: 'user',
    author: user,
    text: frame.text,
    createdAt: Date.now(),
    ...(frame.clientMessageId ? { clientMessageId: frame.clientMessageId } : {}),
    ...(extras.tools ? { tools: extras.tools } : {}),
    ...(attachments ? { attachments } : {}),
  };
  return { message, job };
}

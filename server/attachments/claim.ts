// What a send's `attachments` become in its message: each id checked to be a
// live file of the sender's, of a kind the answering model takes; once the
// send is sure to go through, readable by the conversation's members.
import type { Attachment } from '../../shared/protocol.js';
import type { AttachmentStore } from '../backend/store.js';
import { RelayError } from '../errors.js';
import type { Upstreams } from '../upstream/router.js';
import { kindOf } from './kinds.js';

/** Conversations one file may be sent into: its readers are checked against each. */
export const MAX_REFERENCES = 64;

export interface Claim {
  userId: string;
  conversationId: string;
  /** The model that will answer (the default when the send names none). */
  model: string;
}

export async function claimAttachments(store: AttachmentStore, upstreams: Upstreams, ids: readonly string[], claim: Claim): Promise<Attachment[]> {
  const attachments: Attachment[] = [];
  for (const id of new Set(ids)) {
    const record = await store.get(id);
    if (!record) throw new RelayError('not_found', `attachment ${id} does not exist or has expired`);
    if (record.userId !== claim.userId) throw new RelayError('forbidden', `attachment ${id} was uploaded by someone else`);
    const kind = kindOf(record.mediaType);
    if (!kind || !upstreams.accepts(claim.model, kind)) {
      throw new RelayError('unsupported_attachment', `model ${claim.model} does not take ${record.mediaType} attachments`);
    }
    const refs = await store.referencedBy(id);
    if (refs.length >= MAX_REFERENCES && !refs.includes(claim.conversationId)) {
      throw new RelayError('bad_frame', `attachment ${id} is already in ${MAX_REFERENCES} conversations; upload it again`);
    }
    const { mediaType, bytes, name } = record;
    attachments.push({ id, mediaType, bytes, ...(name !== undefined ? { name } : {}) });
  }
  return attachments;
}

/** Before the message is written: a member who sees it may fetch its files at once. */
export async function referenceAttachments(store: AttachmentStore, attachments: readonly Attachment[], conversationId: string): Promise<void> {
  for (const a of attachments) await store.reference(a.id, conversationId);
}

// The wire protocol of the `ai` SDK's WebSocketChatTransport, as the relay
// speaks it on `/ai-sdk`: client frames (send, resume, abort) and server
// frames (start, chunk, end, no-active, error), each with the requestId it
// answers; chunks are the SDK's UIMessageChunks the relay produces.
import { z } from 'zod';
import { ConversationId, frameCaps } from './protocol.js';

const RequestId = z.string().min(1).max(frameCaps.idChars);
const Strings = z.record(z.string(), z.string());

/** A UI message as the transport sends it; the relay reads the text parts of the newest user message. */
const UIMessage = z.looseObject({
  id: z.string().max(frameCaps.idChars),
  role: z.enum(['system', 'user', 'assistant']),
  parts: z.array(z.looseObject({ type: z.string(), text: z.string().optional() })).max(1_000),
});

export const AiSdkClientFrame = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('send'),
    requestId: RequestId,
    id: ConversationId,
    trigger: z.enum(['submit-message', 'regenerate-message']),
    messageId: z.string().max(frameCaps.idChars).optional(),
    messages: z.array(UIMessage).max(1_000),
    headers: Strings,
    body: z.record(z.string(), z.unknown()),
    metadata: z.unknown().optional(),
  }),
  z.object({
    type: z.literal('resume'),
    requestId: RequestId,
    id: ConversationId,
    lastSequence: z.number().int().nonnegative().optional(),
    headers: Strings,
    body: z.record(z.string(), z.unknown()),
    metadata: z.unknown().optional(),
  }),
  z.object({ type: z.literal('abort'), requestId: RequestId }),
]);
export type AiSdkClientFrame = z.infer<typeof AiSdkClientFrame>;
export type AiSdkClientFrameOf<T extends AiSdkClientFrame['type']> = Extract<AiSdkClientFrame, { type: T }>;

/** The UIMessageChunks the relay sends (a subset of the SDK's). */
export const UIMessageChunk = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), messageId: z.string().optional() }),
  z.object({ type: z.literal('start-step') }),
  z.object({ type: z.literal('text-start'), id: z.string() }),
  z.object({ type: z.literal('text-delta'), id: z.string(), delta: z.string() }),
  z.object({ type: z.literal('text-end'), id: z.string() }),
  z.object({ type: z.literal('reasoning-start'), id: z.string() }),
  z.object({ type: z.literal('reasoning-delta'), id: z.string(), delta: z.string() }),
  z.object({ type: z.literal('reasoning-end'), id: z.string() }),
  z.object({ type: z.literal('finish-step') }),
  z.object({ type: z.literal('finish'), finishReason: z.enum(['stop', 'length', 'content-filter', 'tool-calls', 'error', 'other']).optional() }),
  z.object({ type: z.literal('error'), errorText: z.string() }),
  z.object({ type: z.literal('abort'), reason: z.string().optional() }),
]);
export type UIMessageChunk = z.infer<typeof UIMessageChunk>;

export const AiSdkServerFrame = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), requestId: z.string() }),
  z.object({ type: z.literal('chunk'), requestId: z.string(), sequence: z.number().int().nonnegative(), chunk: UIMessageChunk }),
  z.object({ type: z.literal('end'), requestId: z.string() }),
  z.object({ type: z.literal('no-active'), requestId: z.string() }),
  z.object({ type: z.literal('error'), requestId: z.string(), errorText: z.string().optional() }),
]);
export type AiSdkServerFrame = z.infer<typeof AiSdkServerFrame>;

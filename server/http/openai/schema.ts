// The part of OpenAI's `POST /v1/chat/completions` body the relay reads.
// Unknown fields are ignored, as OpenAI-compatible servers do.
import { z } from 'zod';

/** Text content, as a string or as text parts (other part types are refused). */
const Content = z.union([
  z.string(),
  z.array(z.object({ type: z.literal('text'), text: z.string() })).transform((parts) => parts.map((p) => p.text).join('')),
]);

const Message = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: Content }),
  /** The newer name of a system message. */
  z.object({ role: z.literal('developer'), content: Content }),
  z.object({ role: z.literal('user'), content: Content, name: z.string().optional() }),
  z.object({ role: z.literal('assistant'), content: Content.nullish() }),
]);

export const ChatRequest = z.object({
  model: z.string().min(1).max(128),
  messages: z.array(Message).min(1).max(1_000),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  max_tokens: z.number().int().min(1).max(131_072).nullish(),
  max_completion_tokens: z.number().int().min(1).max(131_072).nullish(),
});
export type ChatRequest = z.infer<typeof ChatRequest>;

// The part of AG-UI's `RunAgentInput` the relay reads. Unknown fields are
// ignored, as AG-UI servers do; `state`, `context` and `forwardedProps` are
// accepted and not used (the conversation is the state).
import { z } from 'zod';

const Id = z.string().min(1).max(256);

/** Text content, as a string or as input parts of which only text is taken (attachments are refused). */
const UserContent = z.union([
  z.string(),
  z.array(z.object({ type: z.literal('text'), text: z.string() })).transform((parts) => parts.map((p) => p.text).join('')),
]);

const ToolCall = z.object({ id: Id, type: z.literal('function'), function: z.object({ name: z.string(), arguments: z.string() }) });

const Message = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), id: Id, content: z.string() }),
  z.object({ role: z.literal('developer'), id: Id, content: z.string() }),
  z.object({ role: z.literal('user'), id: Id, content: UserContent }),
  z.object({ role: z.literal('assistant'), id: Id, content: z.string().nullish(), toolCalls: z.array(ToolCall).nullish() }),
  z.object({ role: z.literal('tool'), id: Id, content: z.string(), toolCallId: Id, error: z.string().nullish() }),
  // What a UI shows besides the conversation; the relay keeps its own record of the thread.
  z.object({ role: z.literal('reasoning'), id: Id }),
  z.object({ role: z.literal('activity'), id: Id }),
]);
export type AgUiMessage = z.infer<typeof Message>;

const Tool = z.object({ name: z.string(), description: z.string().optional(), parameters: z.record(z.string(), z.unknown()).optional() });

export const RunAgentInput = z.object({
  threadId: z.string().min(1).max(256),
  runId: Id,
  messages: z.array(Message).min(1).max(1_000),
  tools: z.array(Tool).max(64).optional(),
});
export type RunAgentInput = z.infer<typeof RunAgentInput>;

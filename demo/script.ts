// What the local model will say, decided before a byte is written and in no
// dialect's terms: the dialects only encode it, and faults only pick where to cut it.
import { countTokens } from '../server/reply/context.js';
import type { FaultPlan, ToolCall, Turn } from './faultplan.js';
import { describeFiles } from './files.js';

const TOKEN_RE = /\s*[\p{L}\p{N}_']+|\s*[^\s\p{L}\p{N}_']/gu;

/** Word-ish pieces whose concatenation is exactly `text`. */
export function splitTokens(text: string): string[] {
  const pieces: string[] = text.match(TOKEN_RE) ?? [];
  // The regex cannot match trailing whitespace; keep it so nothing is lost.
  const rest = text.slice(pieces.join('').length);
  if (rest) pieces.push(rest);
  return pieces;
}

const TEMPLATES: string[] = [
  `I'm the relay's built-in demo model — there is no real language model behind this reply. Here is what just happened:

- The relay forwarded your message to a local, OpenAI-compatible server.
- That server is streaming this text back one token at a time.
- Each token crosses the WebSocket as soon as it arrives.

Set OPENAI_API_KEY and restart the relay to talk to a real model instead.`,
  `This answer comes from the built-in demo model, so I can't actually think about it — but I can show you how streaming feels. Every word you see arrived as its own chunk, paced like a real model at roughly forty tokens per second. Try stopping a reply halfway, or open a second tab in the same room and watch both update. When you want real answers, set OPENAI_API_KEY and restart the server; the relay will pass your messages to OpenAI.`,
  `Thanks for the message! I'm a stand-in that runs entirely on your machine — the relay's built-in demo model. A few things worth trying while you're here:

1. Send a long message and watch the **Markdown** render as it streams.
2. Cancel a reply mid-sentence; the upstream request stops too.
3. Reload the page and see the conversation come back.

Setting OPENAI_API_KEY relays everything to a real model. Until then, à bientôt from demo mode.`,
];

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  // Raw FNV is badly spread modulo small numbers (most prompts picked the same template); mix the bits.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

/** The deterministic demo reply to a prompt. */
export function demoReply(prompt: string): string {
  const flat = prompt.replace(/\s+/g, ' ').trim();
  const quote = flat.length > 60 ? `${flat.slice(0, 57).trimEnd()}…` : flat;
  const intro = quote ? `You said: “${quote}”` : 'You sent an empty message.';
  return `${intro}\n\n${TEMPLATES[fnv1a(flat) % TEMPLATES.length]}`;
}

/** A run of output of one kind: a reasoning summary/thinking block, the text, or one tool call. */
export type Part = { kind: 'reasoning'; pieces: string[] } | { kind: 'text'; pieces: string[] } | { kind: 'tool'; call: ToolCall; pieces: string[] };

export interface Reply {
  n: number; // the request's record id, so ids differ between responses
  model: string;
  created: number; // unix seconds, one timestamp for every event of a response
  parts: Part[]; // in streaming order: reasoning, text, tool calls
  truncated: boolean; // the token budget cut the reply
  finish: 'stop' | 'length' | 'tool_calls';
  inputTokens: number;
  outputTokens: number; // reasoning, text and argument pieces
  reasoningTokens: number;
}

/** The reply to `messages` under `plan`, cut to `budget` reasoning/text pieces. */
export function planReply(n: number, model: string, messages: Turn[], plan: FaultPlan, budget: number): Reply {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const files = lastUser?.files?.length ? `${describeFiles(lastUser.files)}\n\n` : '';
  const text = plan.text ?? (plan.toolCalls ? '' : files + demoReply(lastUser?.content ?? ''));
  const allReasoning = splitTokens(plan.reasoning ?? '');
  const allContent = splitTokens(text);
  const reasoning = allReasoning.slice(0, budget);
  const content = allContent.slice(0, Math.max(0, budget - reasoning.length));
  const truncated = reasoning.length + content.length < allReasoning.length + allContent.length;
  const calls = truncated ? [] : (plan.toolCalls ?? []);

  const parts: Part[] = [];
  if (reasoning.length) parts.push({ kind: 'reasoning', pieces: reasoning });
  // An empty answer is still a (blank) message; beside reasoning or tool calls it is left out.
  if (content.length || (!reasoning.length && !calls.length)) parts.push({ kind: 'text', pieces: content });
  for (const call of calls) parts.push({ kind: 'tool', call, pieces: splitTokens(call.arguments) });

  return {
    n,
    model,
    created: Math.floor(Date.now() / 1000),
    parts,
    truncated,
    finish: truncated ? 'length' : calls.length ? 'tool_calls' : 'stop',
    inputTokens: messages.reduce((sum, m) => sum + countTokens(m.content) + 4 + (m.toolCalls ?? []).reduce((n, c) => n + countTokens(c.name + c.arguments), 0), 0),
    outputTokens: parts.reduce((sum, p) => sum + p.pieces.length, 0),
    reasoningTokens: reasoning.length,
  };
}

export const textOf = (part: Part): string => part.pieces.join('');

// How the demo model uses the tools a request offers, when the plan leaves the
// reply to the model: deterministic, so a test (or a person trying the relay) can
// predict every call and every answer from the conversation alone.
import { isRecord } from '../server/upstream/pieces.js';
import type { FaultPlan, OfferedTool, ToolCall, Turn } from './faultplan.js';

const MAX_ARGUMENT_CHARS = 40;
const MAX_RESULT_CHARS = 200;
// A tool the model reaches for unnamed, when the user asks about the time.
const TIME_TOOL = 'current_time';

/** The first `max` characters, counted as code points so that no emoji is cut in half. */
const clip = (text: string, max: number): string => [...text].slice(0, max).join('');

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `word` stands whole in `text`, whatever the case; `_` counts as part of a word, so `get_time` is not `time`. */
const mentions = (text: string, word: string): boolean => new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(word)}(?![\\p{L}\\p{N}_])`, 'iu').test(text);

/**
 * Arguments for `tool` as JSON text: each required property of its schema set to the user's text,
 * clipped; optional ones are left out, as a model leaves out what it was not told (filling a time
 * zone with "use current_time" would only make the tool refuse it). Crude, but valid against a
 * schema of string properties, and visibly from the user's words.
 */
export function argumentsFor(tool: OfferedTool, userText: string): string {
  const properties = tool.parameters?.properties;
  const names = isRecord(properties) ? Object.keys(properties) : [];
  const required = tool.parameters?.required;
  const filled = Array.isArray(required) ? names.filter((n) => required.includes(n)) : [];
  const value = clip(userText.trim(), MAX_ARGUMENT_CHARS);
  return JSON.stringify(Object.fromEntries(filled.map((n) => [n, value])));
}

/** The calls a user turn asks for: every offered tool it names, in the order offered, or the time tool when it asks about the time. */
function callsFor(userText: string, tools: OfferedTool[]): Array<Omit<ToolCall, 'id'>> {
  const offered = tools.filter((t, i) => tools.findIndex((u) => u.name === t.name) === i);
  const named = offered.filter((t) => mentions(userText, t.name));
  if (named.length) return named.map((t) => ({ name: t.name, arguments: argumentsFor(t, userText) }));
  const timeTool = offered.find((t) => t.name === TIME_TOOL);
  if (timeTool && mentions(userText, 'time')) return [{ name: TIME_TOOL, arguments: argumentsFor(timeTool, userText) }];
  return [];
}

/** The answer to a turn of tool results: what each result of the latest round said, in order. */
export function continuationText(messages: Turn[]): string {
  const lastAssistant = messages.findLastIndex((m) => m.role === 'assistant');
  const calls = messages.flatMap((m) => m.toolCalls ?? []);
  const said = messages
    .slice(lastAssistant + 1)
    .filter((m) => m.role === 'tool')
    .map((m) => {
      // A result whose call is not in the context is still reported, under its id.
      const name = calls.findLast((c) => c.id === m.toolCallId)?.name ?? m.toolCallId ?? 'tool';
      const content = clip(m.content, MAX_RESULT_CHARS);
      return m.isError ? `${name} failed: ${content}` : `${name}: ${content}`;
    });
  return `The tools answered: ${said.join('; ')}.`;
}

/**
 * What the model says of its own accord about tools, as plan fields to lay over `plan`: tool calls
 * when the last turn is the user's and names offered tools, a sentence when the last turn is a tool
 * result, nothing otherwise. A plan that scripts the reply (text, toolCalls or replay) wins.
 */
export function toolUse(messages: Turn[], tools: OfferedTool[], plan: FaultPlan, nextCallId: () => string): Pick<FaultPlan, 'text' | 'toolCalls'> {
  if (plan.text !== undefined || plan.toolCalls !== undefined || plan.replay !== undefined) return {};
  const last = messages.at(-1);
  if (last?.role === 'tool') return { text: continuationText(messages) };
  if (last?.role !== 'user' || !tools.length) return {};
  const calls = callsFor(last.content, tools);
  return calls.length ? { toolCalls: calls.map((c) => ({ id: nextCallId(), ...c })) } : {};
}

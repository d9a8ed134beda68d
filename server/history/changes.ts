// What a `switch` or a `configure` does to a conversation, the same on every
// backend: the event it writes, and the leaf and settings after it. A
// configure sets the fields it names and clears those it sets to null.
import type { ConversationSettings, SendOptions } from '../../shared/protocol.js';
import { RelayError } from '../errors.js';
import type { EventInput, Roles, SettingsPatch, StateChange } from '../backend/store.js';
import { activePath, newestDescendant } from './branches.js';
import type { HistoryEntry } from './fold.js';

/** What a conversation keeps beside history: the end of its active path, and its own settings. */
export interface TreeState {
  leaf: string | undefined;
  settings: ConversationSettings;
  /** The user whose message or configure created the conversation (none: written before owners). */
  owner: string | undefined;
  roles: Roles;
}

/** Roles one conversation keeps at most (each a user the owner named). */
export const ROLES_KEPT = 1_000;

/** Who an event makes the owner of a conversation that has none: the author of its first message, configure or switch. */
export function creatorOf(event: EventInput): string | undefined {
  if (event.type === 'message') return event.message.author.id;
  if (event.type === 'settings' || event.type === 'switch' || event.type === 'role') return event.author.id;
  return undefined;
}

/** The event a change writes, and the state it leaves. */
export function applyChange(conversationId: string, entries: readonly HistoryEntry[], state: TreeState, change: StateChange): { input: EventInput; state: TreeState } {
  const base = { conversationId, author: change.author };
  if (change.type === 'role') {
    const roles = { ...state.roles, [change.userId]: change.role };
    if (Object.keys(roles).length > ROLES_KEPT) throw new RelayError('rate_limited', `a conversation keeps at most ${ROLES_KEPT} roles`);
    return { input: { type: 'role', ...base, userId: change.userId, role: change.role }, state: { ...state, roles } };
  }
  if (change.type === 'settings') {
    const settings = applySettings(state.settings, change.patch);
    return { input: { type: 'settings', ...base, settings, createdAt: Date.now() }, state: { ...state, settings } };
  }
  if (!entries.some((h) => h.message.id === change.messageId)) throw new RelayError('not_found', `no message ${change.messageId} in this conversation`);
  const leaf = newestDescendant(entries, change.messageId);
  return { input: { type: 'switch', ...base, messageId: change.messageId, history: activePath(entries, leaf) }, state: { ...state, leaf } };
}

function pick<T>(value: T | null | undefined, was: T | undefined): T | undefined {
  return value === null ? undefined : (value ?? was);
}

export function applySettings(current: ConversationSettings, patch: SettingsPatch): ConversationSettings {
  const next: ConversationSettings = {
    title: pick(patch.title, current.title),
    visibility: pick(patch.visibility, current.visibility),
    systemPrompt: pick(patch.systemPrompt, current.systemPrompt),
    model: pick(patch.model, current.model),
    temperature: pick(patch.temperature, current.temperature),
    maxTokens: pick(patch.maxTokens, current.maxTokens),
  };
  // Unset fields are left out, so the settings read the same after a round trip through JSON.
  for (const key of Object.keys(next) as Array<keyof ConversationSettings>) if (next[key] === undefined) delete next[key];
  return next;
}

/** A reply's options: the sender's own, else the conversation's. */
export function optionsFor(settings: ConversationSettings, options: SendOptions | undefined): SendOptions | undefined {
  const { model, temperature, maxTokens } = settings;
  const merged: SendOptions = { ...(model ? { model } : {}), ...(temperature !== undefined ? { temperature } : {}), ...(maxTokens ? { maxTokens } : {}), ...options };
  return Object.keys(merged).length ? merged : undefined;
}

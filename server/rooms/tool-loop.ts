// Tool round trips: a reply that ends with tool calls waits for their
// results; each accepted result is a `tool.result` event; when the last call
// of a reply is answered, the continuation is queued with it, in one store
// step, as a new reply that answers that reply. Everything a step needs (the
// calls, who asked, the tools offered, which step it is) is read from the
// conversation's history, so any node can take a result; the node that ran the
// reply keeps the timer that answers the calls nobody answered.
import { randomUUID } from 'node:crypto';
import type { ClientFrameOf, HistoryMessage, ToolCall, User } from '../../shared/protocol.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { EntryInput, ReplyJob, Store, StoredEvent, Submission } from '../backend/store.js';
import type { OperatorTools } from '../tools/operator-tools.js';
import { rootOf } from '../history/fold.js';

export interface ToolLoopSettings {
  /** Replies one user message may lead to through tool calls, itself included. */
  maxSteps: number;
  resultTimeoutMs: number;
}

export interface ToolLoopDeps {
  conversationId: string;
  store: Store;
  settings: ToolLoopSettings;
  operatorTools: OperatorTools;
  log: Logger;
  /** Hand an accepted result to every member, and start the continuation if it may start now. */
  accepted(stored: StoredEvent, job: ReplyJob | undefined, start: boolean, origin: Origin | undefined): Promise<void>;
  /** The user's limits, as for a send: a continuation is a reply like any other. */
  reserve(userId: string): Promise<void>;
  release(userId: string): Promise<void>;
  /** Runs a task in the conversation's order of state changes (the timer's answers too). */
  serial<T>(task: () => Promise<T>): Promise<T>;
}

/** The socket a result came from, and its frame's ref: its echo carries the ref. */
export interface Origin {
  connectionId: string;
  ref: string | undefined;
}

/** Who answers a call the relay answers itself (a timeout, a cancel). */
export const RELAY_AUTHOR: User = { id: 'relay', name: 'relay' };

const CANCELLED = 'the tool call was cancelled';

/** What writing results did: the first one's event, and the continuation they queued. */
interface Recorded {
  first: StoredEvent | undefined;
  continuation: string | undefined;
}

/** One reply's calls and what is known of them, as history tells it. */
interface Step {
  reply: HistoryMessage;
  /** The user message the loop began with. */
  root: HistoryMessage;
  /** Replies of the loop so far, this one included. */
  steps: number;
  answered: Set<string>;
}

export class ToolLoop {
  /** The replies this node ran that wait for results, with the timer that gives up on them. */
  private readonly waiting = new Map<string, NodeJS.Timeout>();

  constructor(private readonly deps: ToolLoopDeps) {}

  /** A reply this node ran has ended: if it called tools, the relay runs its own, and the results are awaited, for a while. */
  ended(replyId: string, toolCalls: readonly ToolCall[]): void {
    if (toolCalls.length === 0) return;
    for (const call of toolCalls) if (this.deps.operatorTools.has(call.name)) void this.runOperatorTool(replyId, call);
    const timer = setTimeout(() => {
      this.waiting.delete(replyId);
      const output = `no result within ${this.deps.settings.resultTimeoutMs} ms`;
      this.deps.serial(() => this.answerRest(replyId, output, true)).catch((err: unknown) => this.deps.log.warn({ err, replyId }, 'answering timed-out tool calls failed'));
    }, this.deps.settings.resultTimeoutMs);
    this.waiting.set(replyId, timer);
  }

  /** The relay runs one of its own tools; the outcome, a failure too, is the call's result. */
  private async runOperatorTool(replyId: string, call: ToolCall): Promise<void> {
    const outcome = await this.deps.operatorTools.call(call.name, call.arguments);
    await this.deps
      .serial(async () => {
        const step = await this.step(replyId);
        if (!step || step.answered.has(call.id)) return;
        await this.record(step, [{ toolCallId: call.id, ...outcome }], RELAY_AUTHOR, undefined, true);
      })
      .catch((err: unknown) => this.deps.log.warn({ err, replyId, tool: call.name }, 'recording an operator tool result failed'));
  }

  /**
   * A member's result for one call. Only the member who asked may answer, each
   * call once. With the result, the id of the continuation it queued, if it was
   * the last open call.
   */
  async answer(user: User, frame: ClientFrameOf<'tool.result'>, origin: Origin): Promise<Recorded & { first: StoredEvent }> {
    const step = await this.step(frame.replyId);
    const call = step?.reply.toolCalls!.find((c) => c.id === frame.toolCallId);
    if (!step || !call) throw new RelayError('not_found', `reply ${frame.replyId} has no tool call ${frame.toolCallId}`);
    if (this.deps.operatorTools.has(call.name)) throw new RelayError('forbidden', `the relay answers calls of its own tool ${call.name}`);
    if (step.root.author?.id !== user.id) throw new RelayError('forbidden', 'only the member who asked may answer its tool calls');
    if (step.answered.has(frame.toolCallId)) throw new RelayError('not_found', `tool call ${frame.toolCallId} is already answered`);
    const result = { toolCallId: frame.toolCallId, output: frame.output, isError: frame.isError ?? false };
    const recorded = await this.record(step, [result], user, origin, true);
    if (!recorded.first) throw new RelayError('not_found', `tool call ${frame.toolCallId} is already answered`);
    return { ...recorded, first: recorded.first };
  }

  /** The calls of a reply still waiting for results; undefined when it is no step of a tool loop. */
  async open(replyId: string): Promise<Set<string> | undefined> {
    const step = await this.step(replyId);
    return step && new Set(step.reply.toolCalls!.map((c) => c.id).filter((id) => !step.answered.has(id)));
  }

  /** Cancel ends a loop that waits: its open calls are answered as cancelled, and no continuation runs. */
  async cancel(replyId: string | undefined): Promise<boolean> {
    const target = replyId ?? (await this.lastWaiting());
    if (!target) return false;
    return this.answerRest(target, CANCELLED, false);
  }

  dispose(): void {
    for (const timer of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
  }

  /** Every open call of a reply answered with `output` as an error; true if there were any. */
  private async answerRest(replyId: string, output: string, continues: boolean): Promise<boolean> {
    clearTimeout(this.waiting.get(replyId));
    this.waiting.delete(replyId);
    const step = await this.step(replyId);
    if (!step) return false;
    const open = step.reply.toolCalls!.filter((c) => !step.answered.has(c.id));
    if (open.length === 0) return false;
    const results = open.map((c) => ({ toolCallId: c.id, output, isError: true }));
    try {
      await this.record(step, results, RELAY_AUTHOR, undefined, continues);
    } catch (err) {
      // The user may not start another reply now (quota, rate): the calls are still answered, and the loop ends.
      if (!(err instanceof RelayError) || !continues) throw err;
      this.deps.log.info({ replyId, code: err.code }, 'the tool loop ends: its continuation may not run');
      await this.record(step, results, RELAY_AUTHOR, undefined, false);
    }
    return true;
  }

  /**
   * Write results; the one that answers the last open call carries the
   * continuation, when the loop goes on. `first` is undefined if the first
   * result had been written before (another answer won).
   */
  private async record(step: Step, results: Array<{ toolCallId: string; output: string; isError: boolean }>, author: User, origin: Origin | undefined, continues: boolean): Promise<Recorded> {
    const { store, conversationId } = this.deps;
    const answered = new Set(step.answered);
    let first: StoredEvent | undefined;
    let continuation: string | undefined;
    for (const [i, result] of results.entries()) {
      answered.add(result.toolCallId);
      const last = answered.size === step.reply.toolCalls!.length;
      const job = continues && last && step.steps < this.deps.settings.maxSteps ? this.continuation(step) : undefined;
      if (job) await this.deps.reserve(job.user.id);
      const entry: EntryInput = { type: 'tool.result', conversationId, replyId: step.reply.id, ...result, author, createdAt: Date.now() };
      const submission = await store.submit(conversationId, entry, job).catch(async (err: unknown) => {
        if (job) await this.deps.release(job.user.id);
        throw err;
      });
      const stored = await this.settle(submission, job, i === 0 ? origin : undefined);
      if (i === 0) first = stored;
      if (stored && job) continuation = job.replyId;
      if (last) this.forget(step.reply.id);
    }
    return { first, continuation };
  }

  private async settle(submission: Submission, job: ReplyJob | undefined, origin: Origin | undefined): Promise<StoredEvent | undefined> {
    if (submission.kind !== 'appended' && job) await this.deps.release(job.user.id);
    if (submission.kind === 'duplicate') return undefined;
    if (submission.kind === 'queue-full') throw new RelayError('busy', 'the reply queue of this conversation is full; send the result again');
    await this.deps.accepted(submission.stored, job, submission.start, origin);
    return submission.stored;
  }

  private forget(replyId: string): void {
    clearTimeout(this.waiting.get(replyId));
    this.waiting.delete(replyId);
  }

  /** The next reply of the loop: it answers the reply whose calls were answered, with the tools of the message that began it. */
  private continuation(step: Step): ReplyJob {
    const { root, reply } = step;
    const last = step.steps + 1 >= this.deps.settings.maxSteps;
    return {
      replyId: randomUUID(),
      inReplyTo: reply.id,
      user: root.author!,
      ...(reply.model ? { options: { model: reply.model } } : {}),
      // The last step offers no tools, so the model has to answer in words.
      ...(root.tools && !last ? { tools: root.tools } : {}),
      step: step.steps,
    };
  }

  /** The reply `replyId` as a step of a tool loop, if it is one that called tools. */
  private async step(replyId: string): Promise<Step | undefined> {
    const { history } = await this.deps.store.log.snapshot(this.deps.conversationId);
    const byId = new Map(history.map((m) => [m.id, m]));
    const reply = byId.get(replyId);
    if (reply?.role !== 'assistant' || !reply.toolCalls?.length || reply.finishReason !== 'tool_calls') return undefined;
    const { root, hops } = rootOf(byId, reply.inReplyTo);
    if (!root) return undefined;
    const answered = new Set(history.filter((m) => m.role === 'tool' && m.replyId === replyId).map((m) => m.toolCallId!));
    return { reply, root, steps: hops + 1, answered };
  }

  /** The newest reply that still waits for tool results, if any. */
  private async lastWaiting(): Promise<string | undefined> {
    const { history } = await this.deps.store.log.snapshot(this.deps.conversationId);
    const reply = history.findLast((m) => m.role === 'assistant');
    if (!reply || reply.finishReason !== 'tool_calls' || !reply.toolCalls?.length) return undefined;
    const answered = new Set(history.filter((m) => m.role === 'tool' && m.replyId === reply.id).map((m) => m.toolCallId));
    return reply.toolCalls.some((c) => !answered.has(c.id)) ? reply.id : undefined;
  }
}

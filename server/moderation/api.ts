// The moderation API (OpenAI's `POST /v1/moderations`, or any server that
// speaks it): one call per check, judged by the operator's categories and
// threshold. A call that fails or times out is judged by MODERATION_FAIL_MODE:
// `open` lets the text through, `closed` treats it as flagged.
import OpenAI from 'openai';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

export interface ModerationPolicy {
  model: string;
  timeoutMs: number;
  failMode: 'open' | 'closed';
  /** Only these categories count; undefined: any the API flags. */
  categories: readonly string[] | undefined;
  /** A score at or above this flags its category; undefined: the API's own verdict. */
  threshold: number | undefined;
}

export interface Verdict {
  flagged: boolean;
  /** The categories that flagged it (`unavailable` when the API failed and the fail mode is closed). */
  categories: string[];
}

/** Text, or text with images (as data URLs), as the API takes them. */
export type ModerationInput = string | Array<{ type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } }>;

/** What is being checked, for the metrics: a user message, a window of a reply, or a whole reply at its end. */
export type CheckKind = 'input' | 'window' | 'whole';

export const PASS: Verdict = { flagged: false, categories: [] };

type Result = OpenAI.Moderations.Moderation;

export class ModerationApi {
  constructor(
    private readonly client: OpenAI,
    private readonly policy: ModerationPolicy,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  async check(input: ModerationInput, kind: CheckKind): Promise<Verdict> {
    const started = performance.now();
    let verdict: Verdict;
    try {
      const answer = await this.client.moderations.create({ model: this.policy.model, input }, { timeout: this.policy.timeoutMs, maxRetries: 0 });
      verdict = this.judge(answer.results);
      for (const category of verdict.categories) this.metrics.moderationFlags.inc({ category });
    } catch (err) {
      // Never the text: only that the call failed, and what the fail mode made of it.
      this.log.warn({ err: err instanceof Error ? err.message : String(err), kind, failMode: this.policy.failMode }, 'moderation check failed');
      this.metrics.moderationChecks.inc({ kind, outcome: 'failed' });
      return this.policy.failMode === 'open' ? PASS : { flagged: true, categories: ['unavailable'] };
    } finally {
      this.metrics.moderationLatency.observe({ kind }, (performance.now() - started) / 1000);
    }
    this.metrics.moderationChecks.inc({ kind, outcome: verdict.flagged ? 'flagged' : 'pass' });
    return verdict;
  }

  private judge(results: readonly Result[]): Verdict {
    const flagged = new Set<string>();
    const { categories, threshold } = this.policy;
    for (const r of results) {
      const scores: Record<string, number | undefined> = { ...r.category_scores };
      for (const [category, hit] of Object.entries(r.categories)) {
        if (categories && !categories.includes(category)) continue;
        const score = scores[category] ?? 0;
        if (threshold === undefined ? hit === true : score >= threshold) flagged.add(category);
      }
    }
    return { flagged: flagged.size > 0, categories: [...flagged] };
  }
}

// Moderation, when the operator turns it on (MODERATION_BASE_URL): a user
// message (with its images) is checked before anything goes upstream, and
// each reply streams through a sliding-window gate (gate.ts).
import OpenAI from 'openai';
import type { Attachment } from '../../shared/protocol.js';
import { ConfigError, type Config } from '../config.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { kindOf } from '../attachments/kinds.js';
import { fileText } from '../attachments/load.js';
import { nodeFetch } from '../upstream/http-fetch.js';
import { dataUrl } from '../upstream/dialect.js';
import { ModerationApi, type ModerationInput, type Verdict } from './api.js';
import { ReplyGate, type GateOutput, type WindowSettings } from './gate.js';

export class Moderation {
  constructor(
    private readonly api: ModerationApi,
    private readonly window: WindowSettings,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Refuses (`moderated`) a message whose text, text files or images are
   * flagged; nothing of it has gone upstream yet. PDFs are not checked (the
   * moderation API takes text and images only). One image per check, as
   * moderation APIs take.
   */
  async checkMessage(text: string, attachments: readonly Attachment[] | undefined, read: (id: string) => Promise<Buffer | undefined>): Promise<void> {
    const texts = [text];
    const inputs: ModerationInput[] = [];
    for (const a of attachments ?? []) {
      const kind = kindOf(a.mediaType);
      const data = kind === 'image' || kind === 'text' ? await read(a.id) : undefined;
      if (data && kind === 'text') texts.push(fileText(data, a.name ?? a.id));
      if (data && kind === 'image') inputs.push([{ type: 'image_url', image_url: { url: dataUrl({ mediaType: a.mediaType, data }) } }]);
    }
    // At once, not one after another: the conversation's other sends wait behind this one.
    const verdicts = await Promise.all([texts.join('\n\n'), ...inputs].map((input) => this.api.check(input, 'input')));
    const flagged = verdicts.find((v) => v.flagged);
    if (flagged) throw new RelayError('moderated', `the message was refused by moderation (${describe(flagged)})`);
  }

  /** The gate one reply's pieces go through. */
  gate(out: GateOutput): ReplyGate {
    return new ReplyGate(this.api, this.window, out, this.metrics);
  }
}

export function describe(verdict: Verdict): string {
  return verdict.categories.join(', ');
}

/** The moderation settings, checked at start (before anything is opened). */
export function checkModeration(config: Config, demoBaseURL: string | undefined): void {
  if (config.MODERATION_BASE_URL === 'demo' && !demoBaseURL) throw new ConfigError('invalid configuration: MODERATION_BASE_URL=demo needs the built-in demo model');
  if (config.MODERATION_STEP_TOKENS > config.MODERATION_WINDOW_TOKENS) {
    throw new ConfigError('invalid configuration: MODERATION_STEP_TOKENS must not exceed MODERATION_WINDOW_TOKENS (windows must overlap or touch)');
  }
}

/** Moderation as configured (checked by checkModeration), or undefined when MODERATION_BASE_URL is unset. `demoBaseURL`: where `demo` points. */
export function createModeration(config: Config, demoBaseURL: string | undefined, metrics: Metrics, log: Logger): Moderation | undefined {
  const base = config.MODERATION_BASE_URL;
  if (!base) return undefined;
  if (base !== 'demo' && !config.MODERATION_API_KEY) {
    log.warn({ failMode: config.MODERATION_FAIL_MODE }, 'MODERATION_API_KEY is not set: a moderation API that wants a key refuses every check, and those count as the fail mode says');
  }
  // The relay's keep-alive fetch, reading each verdict whole: the SDK's default fetch costs far more CPU per check.
  const client = new OpenAI({
    baseURL: base === 'demo' ? demoBaseURL : base,
    apiKey: config.MODERATION_API_KEY ?? 'none',
    fetch: nodeFetch(config.UPSTREAM_MAX_IDLE_CONNECTIONS, { buffered: true }),
    // The SDK's logger would print raw response lines on some errors.
    logLevel: 'off',
  });
  const api = new ModerationApi(
    client,
    { model: config.MODERATION_MODEL, timeoutMs: config.MODERATION_TIMEOUT_MS, failMode: config.MODERATION_FAIL_MODE, categories: config.MODERATION_CATEGORIES, threshold: config.MODERATION_THRESHOLD },
    metrics,
    log.child({ part: 'moderation' }),
  );
  return new Moderation(api, { mode: config.MODERATION_MODE, windowTokens: config.MODERATION_WINDOW_TOKENS, stepTokens: config.MODERATION_STEP_TOKENS }, metrics);
}

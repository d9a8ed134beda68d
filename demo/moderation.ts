// The demo model's `POST /v1/moderations` (OpenAI's shape): a verdict from a
// fixed list of made-up words, so moderation can be tried offline and tested
// exactly. No ordinary text is flagged; these are:
//   "zorblax"       violence
//   "snarfle blat"  harassment (the two words together; either alone passes)
//   "grimbly"       hate
// Images in the input are read as nothing: they always pass.
import { isRecord } from '../server/upstream/pieces.js';

export const DEMO_FLAGGED: Readonly<Record<string, string>> = { zorblax: 'violence', 'snarfle blat': 'harassment', grimbly: 'hate' };

/** OpenAI's moderation categories (omni-moderation). */
export const MODERATION_CATEGORIES = [
  'harassment',
  'harassment/threatening',
  'hate',
  'hate/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
];

const FLAGGED_SCORE = 0.97;
const CLEAN_SCORE = 0.0001;

/** Each listed phrase, matched as whole words with any run of whitespace between them. */
const PATTERNS = Object.entries(DEMO_FLAGGED).map(([phrase, category]) => ({
  category,
  re: new RegExp(`(?<![\\p{L}\\p{N}])${phrase.split(' ').join('\\s+')}(?![\\p{L}\\p{N}])`, 'iu'),
}));

function verdict(text: string): object {
  const hit = new Set(PATTERNS.filter((p) => p.re.test(text)).map((p) => p.category));
  return {
    flagged: hit.size > 0,
    categories: Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, hit.has(c)])),
    category_scores: Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, hit.has(c) ? FLAGGED_SCORE : CLEAN_SCORE])),
  };
}

/** The texts to judge: one per string of a string input, or one for a list of content parts. */
function texts(input: unknown): string[] | undefined {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) return undefined;
  if (input.every((i) => typeof i === 'string')) return input;
  return [input.map((p) => (isRecord(p) && p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join(' ')];
}

let count = 0;

/** The answer to a moderation request body: 200 with results, or 400 for an input it cannot read. */
export function moderate(body: unknown): { status: number; json: object } {
  const input = isRecord(body) ? texts(body.input) : undefined;
  if (!input) return { status: 400, json: { error: { message: "'input' must be a string, a list of strings or a list of content parts", type: 'invalid_request_error', param: 'input', code: null } } };
  const model = isRecord(body) && typeof body.model === 'string' ? body.model : 'omni-moderation-latest';
  return { status: 200, json: { id: `modr-demo${++count}`, model, results: input.map(verdict) } };
}

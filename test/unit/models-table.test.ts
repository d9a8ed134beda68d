// The model table: the environment shortcut for one upstream, and MODELS_FILE
// with its checks at start (a mistake in the file stops the server with a
// message that names it, never a first reply that fails).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, parseConfig } from '../../server/config.js';
import { loadModelTable, shortcutHasKey, upstreamHost } from '../../server/upstream/models.js';

const dir = mkdtempSync(join(tmpdir(), 'relay-table-'));
let files = 0;
function file(content: unknown): string {
  const path = join(dir, `models-${files++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function table(env: Record<string, string>) {
  return loadModelTable(parseConfig(env), env);
}

function refused(env: Record<string, string>, mentions: RegExp): void {
  try {
    table(env);
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as Error).message, mentions);
    return;
  }
  assert.unreachable('the table was accepted');
}

test('without MODELS_FILE: OPENAI_MODEL and ALLOWED_MODELS, all on the one upstream of the environment', () => {
  const t = table({ OPENAI_MODEL: 'gpt-a', ALLOWED_MODELS: 'gpt-b, gpt-c', OPENAI_BASE_URL: 'http://up.example/v1', OPENAI_API_KEY: 'k1' });
  assert.is(t.defaultModel, 'gpt-a');
  assert.equal([...t.routes.keys()], ['gpt-a', 'gpt-b', 'gpt-c']);
  const b = t.routes.get('gpt-b')!;
  assert.equal([b.dialect, b.baseURL, b.apiKey, b.upstreamModel], ['chat', 'http://up.example/v1', 'k1', 'gpt-b']);
  assert.is(t.passThrough, undefined);
  assert.ok(table({ ALLOWED_MODELS: '*' }).passThrough, 'ALLOWED_MODELS=* lets any name through');
});

test('UPSTREAM_DIALECT=anthropic takes the ANTHROPIC_* variables, the OPENAI_* ones as a fallback', () => {
  const t = table({ UPSTREAM_DIALECT: 'anthropic', OPENAI_MODEL: 'claude-x', ANTHROPIC_API_KEY: 'ak', ANTHROPIC_BASE_URL: 'http://a.example' });
  const route = t.routes.get('claude-x')!;
  assert.equal([route.dialect, route.baseURL, route.apiKey], ['anthropic', 'http://a.example', 'ak']);
  assert.ok(shortcutHasKey(parseConfig({ UPSTREAM_DIALECT: 'anthropic', ANTHROPIC_API_KEY: 'ak' })));
  assert.not.ok(shortcutHasKey(parseConfig({ UPSTREAM_DIALECT: 'anthropic' })), 'no key: the demo model answers');
  refused({ UPSTREAM_DIALECT: 'gemini' }, /UPSTREAM_DIALECT/);
});

test('MODELS_FILE: routes with their dialect, key variable, upstream name, budget, options and fallbacks', () => {
  const path = file({
    default: 'b',
    models: {
      a: { dialect: 'responses', baseURL: 'http://r.example/v1', apiKeyEnv: 'KEY_A', upstreamModel: 'gpt-5', contextTokens: 32000, options: { reasoning: { effort: 'low' } } },
      b: { fallbacks: ['a'], prices: { input: 0.15, output: 0.6, cachedInput: 0.075 } },
    },
  });
  const t = table({ MODELS_FILE: path, KEY_A: 'secret-a' });
  assert.is(t.defaultModel, 'b');
  const a = t.routes.get('a')!;
  assert.equal([a.dialect, a.apiKey, a.upstreamModel, a.contextTokens], ['responses', 'secret-a', 'gpt-5', 32000]);
  assert.equal(a.options, { reasoning: { effort: 'low' } });
  const b = t.routes.get('b')!;
  assert.equal([b.dialect, b.upstreamModel, b.fallbacks], ['chat', 'b', ['a']]);
  assert.equal(b.prices, { input: 0.15, output: 0.6, cachedInput: 0.075 });
});

test("the host a route's calls go to, for the log and the start-up line: never a path or credentials", () => {
  assert.is(upstreamHost({ dialect: 'chat', baseURL: 'https://user:secret@llm.example:8443/v1' }, {}), 'llm.example:8443');
  assert.is(upstreamHost({ dialect: 'chat', baseURL: undefined }, {}), 'api.openai.com');
  assert.is(upstreamHost({ dialect: 'anthropic', baseURL: undefined }, {}), 'api.anthropic.com');
  // Without a base URL of its own, the SDK reads its environment variable.
  assert.is(upstreamHost({ dialect: 'responses', baseURL: undefined }, { OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' }), '127.0.0.1:11434');
});

test('MODELS_FILE mistakes stop the start with a message naming them', () => {
  refused({ MODELS_FILE: join(dir, 'missing.json') }, /MODELS_FILE .*missing\.json/);
  refused({ MODELS_FILE: file('{ not json') }, /MODELS_FILE/);
  refused({ MODELS_FILE: file({ models: {} }) }, /lists no model/);
  refused({ MODELS_FILE: file({ models: { a: { dialect: 'gemini' } } }) }, /models\.a\.dialect/);
  refused({ MODELS_FILE: file({ models: { a: { apiKey: 'inline' } } }) }, /models\.a/);
  refused({ MODELS_FILE: file({ models: { a: { apiKeyEnv: 'NOT_SET_ANYWHERE' } } }) }, /NOT_SET_ANYWHERE/);
  refused({ MODELS_FILE: file({ models: { a: { fallbacks: ['b'] } } }) }, /falls back to b/);
  refused({ MODELS_FILE: file({ models: { a: { fallbacks: ['a'] } } }) }, /falls back to a/);
  refused({ MODELS_FILE: file({ models: { a: { fallbacks: ['b', 'c', 'd', 'e'] }, b: {}, c: {}, d: {}, e: {} } }) }, /fallbacks/);
  refused({ MODELS_FILE: file({ default: 'z', models: { a: {} } }) }, /default model z/);
  refused({ MODELS_FILE: file({ models: { a: {} } }), ALLOWED_MODELS: 'b' }, /ALLOWED_MODELS/);
});

test.run();

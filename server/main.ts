// `npm start`: read the environment, start the built-in demo model when no
// API key is set, serve until SIGTERM/SIGINT, then shut down gracefully.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { LayoutError } from './backend/redis/keys.js';
import { ConfigError, parseConfig, type Config } from './config.js';
import { DEMO_TOOLS, LocalModel } from '../demo/localmodel.js';
import { operatorTools } from './tools/operator-tools.js';
import { createLogger, flushLogs } from './log.js';
import { shortcutHasKey } from './upstream/models.js';
import { startRelay } from './http/relay.js';

function loadConfig(): Config {
  try {
    if (existsSync('.env')) process.loadEnvFile('.env');
    return parseConfig(process.env);
  } catch (err) {
    const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`chat-relay: ${message}\n`);
    process.exit(2);
  }
}

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL);
process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));

let demo: LocalModel | undefined;
const demoAnswers = !shortcutHasKey(config);
if (demoAnswers || config.MODERATION_BASE_URL === 'demo') {
  // The demo speaks every dialect, so UPSTREAM_DIALECT can be tried without a key too; it moderates from a word list.
  demo = new LocalModel({ tokenDelayMs: config.LOCAL_MODEL_TOKEN_DELAY_MS });
  await demo.start();
}
if (demo && demoAnswers) {
  const keyName = config.UPSTREAM_DIALECT === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY';
  log.warn(
    { upstream: demo.baseURL, dialect: config.UPSTREAM_DIALECT },
    `${keyName} is not set: replies come from the built-in DEMO model (set ${keyName} to relay to a real one)`,
  );
}

const relay = await startRelay(config, {
  log,
  ...(demo ? { demoBaseURL: demo.baseURL } : {}),
  ...(demo && demoAnswers ? { upstreamBaseURL: demo.baseURL, upstreamApiKey: 'demo', model: process.env.OPENAI_MODEL ?? 'relay-demo-1' } : {}),
  // With the demo model and no TOOLS_FILE, its example tool shows a whole tool round trip from the page.
  ...(demo && demoAnswers && !config.TOOLS_FILE ? { operatorTools: operatorTools(DEMO_TOOLS.map(({ path: _, ...tool }) => ({ ...tool, url: demo!.toolURL(tool.name) }))) } : {}),
}).catch((err: unknown) => {
  if (!(err instanceof ConfigError) && !(err instanceof LayoutError)) throw err;
  process.stderr.write(`chat-relay: ${err.message}\n`);
  process.exit(2);
});
// One line that says where to point a browser and a client, and where replies come from.
const upstreams = relay.upstreams.map(({ model, host, dialect }) => ({ model, host, dialect }));
const source = demoAnswers
  ? `the built-in demo model (${relay.upstreams.map((u) => u.model).join(', ')})`
  : relay.upstreams.map((u) => `${u.model} at ${u.host}`).join(', ');
const kept = config.REDIS_URL ? 'in Redis' : config.STORE === 'sqlite' ? `in ${resolve(config.DATA_DIR)}` : 'in memory only (gone on restart)';
log.info(
  { page: relay.pageURL, listen: relay.url, health: new URL('/healthz', relay.pageURL).href, upstreams, demo: demoAnswers },
  `relay listening: page ${relay.pageURL}, WebSocket ${relay.url}; replies from ${source}; conversations kept ${kept}`,
);

/** How long the last log lines may take to reach stdout: a reader that stopped reading does not keep the process up. */
const LOG_FLUSH_MS = 1_000;

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  // npm forwards the terminal's Ctrl-C, so one Ctrl-C can arrive twice: a repeat is not a hurry.
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  await relay.close();
  await demo?.close();
  log.info('bye');
  await flushLogs(log, LOG_FLUSH_MS);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

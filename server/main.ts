// `npm start`: read the environment, start the built-in demo model when no
// API key is set, serve until SIGTERM/SIGINT, then shut down gracefully.
import { existsSync } from 'node:fs';
import { LayoutError } from './backend/redis/keys.js';
import { ConfigError, parseConfig, type Config } from './config.js';
import { DEMO_TOOLS, LocalModel } from '../demo/localmodel.js';
import { operatorTools } from './tools/operator-tools.js';
import { createLogger } from './log.js';
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
if (!shortcutHasKey(config)) {
  // The demo speaks every dialect, so UPSTREAM_DIALECT can be tried without a key too.
  demo = new LocalModel({ tokenDelayMs: config.LOCAL_MODEL_TOKEN_DELAY_MS });
  await demo.start();
  const keyName = config.UPSTREAM_DIALECT === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY';
  log.warn(
    { upstream: demo.baseURL, dialect: config.UPSTREAM_DIALECT },
    `${keyName} is not set: replies come from the built-in DEMO model (set ${keyName} to relay to a real one)`,
  );
}

const relay = await startRelay(config, {
  log,
  ...(demo ? { upstreamBaseURL: demo.baseURL, upstreamApiKey: 'demo', model: process.env.OPENAI_MODEL ?? 'relay-demo-1' } : {}),
  // With the demo model and no TOOLS_FILE, its example tool shows a whole tool round trip from the page.
  ...(demo && !config.TOOLS_FILE ? { operatorTools: operatorTools(DEMO_TOOLS.map(({ path: _, ...tool }) => ({ ...tool, url: demo!.toolURL(tool.name) }))) } : {}),
}).catch((err: unknown) => {
  if (!(err instanceof ConfigError) && !(err instanceof LayoutError)) throw err;
  process.stderr.write(`chat-relay: ${err.message}\n`);
  process.exit(2);
});
log.info({ listen: relay.url, health: `http://${config.HOST}:${relay.port}/healthz` }, 'relay listening');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  await relay.close();
  await demo?.close();
  log.info('bye');
  log.flush();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

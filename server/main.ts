// `npm start`: read the environment, start the built-in demo model when no
// API key is set, serve until SIGTERM/SIGINT, then shut down gracefully.
import { existsSync } from 'node:fs';
import { LayoutError } from './backend/redis/keys.js';
import { ConfigError, parseConfig, type Config } from './config.js';
import { LocalModel } from '../demo/localmodel.js';
import { createLogger } from './log.js';
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
if (!config.OPENAI_API_KEY) {
  demo = new LocalModel({ tokenDelayMs: config.LOCAL_MODEL_TOKEN_DELAY_MS });
  await demo.start();
  log.warn(
    { upstream: demo.baseURL },
    'OPENAI_API_KEY is not set: replies come from the built-in DEMO model (set OPENAI_API_KEY to relay to a real one)',
  );
}

const relay = await startRelay(config, {
  log,
  ...(demo ? { upstreamBaseURL: demo.baseURL, upstreamApiKey: 'demo', model: process.env.OPENAI_MODEL ?? 'relay-demo-1' } : {}),
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

// The HTTP server: /healthz, the WebSocket upgrade at /ws, the heartbeat, and
// shutdown. Wires config into the modules that do the work.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { closeCodes } from '../../shared/codes.js';
import { AuthError, createAuthenticator, type Authenticator } from '../session/auth.js';
import { createBackend, type StoreWrapper } from '../backend/index.js';
import { checkExposure, type Config } from '../config.js';
import { Connection } from '../session/connection.js';
import { warmTokenizer } from '../reply/context.js';
import { Conversations } from '../rooms/conversations.js';
import { Metrics } from '../metrics.js';
import { ConnectionGate, Throttle } from '../session/limits.js';
import type { Logger } from '../log.js';
import { handleAdminKeys } from './api-keys.js';
import { handleOpenAI, type OpenAIDeps } from './openai/routes.js';
import { handleAgUi, type AgUiDeps } from './ag-ui/routes.js';
import { handleAdminUsage } from './admin-usage.js';
import { handleAdminUsers } from './admin-users.js';
import { Invites } from '../rooms/invites.js';
import { UsageReport } from '../usage/report.js';
import { withCostQuota } from '../usage/cost-quota.js';
import { AiSdkConnection } from './ai-sdk/connection.js';
import { servePage } from './page.js';
import { handleAttachments, UploadsInFlight, type AttachmentDeps } from '../attachments/routes.js';
import { allowedTypes } from '../attachments/kinds.js';
import { checkModeration, createModeration } from '../moderation/index.js';
import { loadModelTable } from '../upstream/models.js';
import { Upstreams, type UpstreamSummary } from '../upstream/router.js';
import { loadOperatorTools, OperatorTools, type OperatorTool } from '../tools/operator-tools.js';

export interface RelayOptions {
  log: Logger;
  /** Where the environment's one upstream is (the built-in demo model, a test's); defaults to config.OPENAI_BASE_URL. */
  upstreamBaseURL?: string;
  /** Defaults to config.OPENAI_API_KEY. */
  upstreamApiKey?: string;
  model?: string;
  /** The environment MODELS_FILE keys are read from; defaults to process.env. */
  env?: Record<string, string | undefined>;
  auth?: Authenticator;
  /** The relay's own tools, instead of TOOLS_FILE (the demo model's example tool). */
  operatorTools?: OperatorTool[];
  /** The built-in demo model, where MODERATION_BASE_URL=demo sends its checks. */
  demoBaseURL?: string;
  /** Wrap the store (tests inject faults with it, on any backend). */
  wrapStore?: StoreWrapper;
}

export interface RelayStats {
  sockets: number;
  conversations: number;
  storedConversations: number;
  usersWithReplies: number;
}

export interface Relay {
  readonly port: number;
  /** The WebSocket endpoint, ws://host:port/ws. */
  readonly url: string;
  /** The chat page, http://host:port/. */
  readonly pageURL: string;
  /** Where each model's calls go, the default first. */
  readonly upstreams: UpstreamSummary[];
  stats(): RelayStats;
  /** Stop accepting, end every reply (each still gets its reply.end), close sockets with 1001. */
  close(graceMs?: number): Promise<void>;
}

/** Compare a presented credential in constant time. */
function sameSecret(presented: string | undefined, expected: string): boolean {
  const a = Buffer.from(presented ?? '');
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startRelay(config: Config, opts: RelayOptions): Promise<Relay> {
  const log = opts.log;
  if (!opts.auth && checkExposure(config) === 'anonymous-exposed') {
    log.warn({ host: config.HOST }, 'ANONYMOUS MODE ON A PUBLIC ADDRESS: anyone who can reach this port can use the upstream API key');
  }
  if (!opts.auth && config.REDIS_URL && !config.AUTH_JWT_SECRET && !config.AUTH_JWT_PUBLIC_KEY && !config.SESSION_SECRET) {
    log.warn('anonymous mode on several nodes without SESSION_SECRET: a session token from one node is unknown to the others (set the same SESSION_SECRET on every node)');
  }
  warmTokenizer();
  const attachmentTypes = allowedTypes(config.ATTACHMENT_TYPES);
  checkModeration(config, opts.demoBaseURL);
  const table = loadModelTable(config, opts.env ?? process.env, { baseURL: opts.upstreamBaseURL, apiKey: opts.upstreamApiKey, model: opts.model });
  const backend = await createBackend(config, log, opts.wrapStore);
  const { store, bus } = backend;
  const usage = new UsageReport(store.ledger, { tokenQuota: config.TOKEN_QUOTA, costQuotaUsd: config.COST_QUOTA_USD, windowMs: config.TOKEN_QUOTA_WINDOW_MS });
  const userLimits = config.COST_QUOTA_USD ? withCostQuota(backend.userLimits, usage) : backend.userLimits;
  const connections = new Set<Connection>();
  const metrics: Metrics = new Metrics({
    sockets: () => connections.size,
    conversations: (): number => conversations.size,
    activeReplies: () => [...conversations.all()].filter((c) => c.busy).length,
    queuedReplies: async () => {
      let queued = 0;
      for (const c of conversations.all()) queued += (await store.replies.state(c.id)).queued;
      return queued;
    },
    maxMemberLag: () => Math.max(0, ...[...connections].map((c) => c.lag)),
    disk: () => backend.disk?.(),
  });
  const moderation = createModeration(config, opts.demoBaseURL, metrics, log);
  const upstreams = new Upstreams(
    table,
    {
      maxRetries: config.UPSTREAM_MAX_RETRIES,
      includeUsage: config.UPSTREAM_INCLUDE_USAGE,
      idleTimeoutMs: config.UPSTREAM_IDLE_TIMEOUT_MS,
      maxEventChars: config.UPSTREAM_MAX_EVENT_BYTES,
      maxIdleConnections: config.UPSTREAM_MAX_IDLE_CONNECTIONS,
      health: { failures: config.READY_UPSTREAM_FAILURES, retryMs: config.READY_UPSTREAM_RETRY_MS },
    },
    { log, metrics },
  );
  const conversations: Conversations = new Conversations({
    store,
    attachments: backend.attachments,
    moderation,
    bus,
    upstreams,
    invites: new Invites(config.SESSION_SECRET),
    operatorTools: new OperatorTools(opts.operatorTools ?? (config.TOOLS_FILE ? loadOperatorTools(config.TOOLS_FILE) : [])),
    userLimits,
    typingThrottle: new Throttle(config.TYPING_MIN_INTERVAL_MS),
    settings: {
      systemPrompt: config.SYSTEM_PROMPT,
      contextTokens: config.CONTEXT_TOKENS,
      maxReplyMs: config.REPLY_MAX_MS,
      graceMs: config.REPLY_GRACE_MS,
      idleMs: config.CONVERSATION_IDLE_MS,
      presenceCoalesceMs: config.PRESENCE_COALESCE_MS,
      tools: { maxSteps: config.MAX_TOOL_STEPS, resultTimeoutMs: config.TOOL_RESULT_TIMEOUT_MS },
      leaseRenewMs: backend.leaseMs ? Math.floor(backend.leaseMs / 3) : 0,
      keepQueueOnShutdown: backend.leaseMs > 0 || backend.disk !== undefined,
      cancelPolicy: config.CANCEL_POLICY,
      autoTitle: config.AUTO_TITLE,
    },
    log,
    metrics,
    adoptEveryMs: backend.leaseMs ? Math.floor(backend.leaseMs / 2) : 0,
  });
  // Replies a stopped process left behind (the embedded store after a restart): the interrupted ones end for everyone, the queued ones run.
  for (const id of backend.recoverable()) {
    conversations.get(id).checkCluster().catch((err: unknown) => log.error({ err, conversationId: id }, 'recovering a conversation failed'));
  }
  const allowedOrigins = config.ALLOWED_ORIGINS ? new Set(config.ALLOWED_ORIGINS) : undefined;
  const gate = new ConnectionGate(config.MAX_CONNECTIONS, config.MAX_CONNECTIONS_PER_IP, config.CONNECTIONS_PER_IP_PER_MINUTE);
  const auth =
    opts.auth ??
    createAuthenticator(config.AUTH_JWT_SECRET, config.AUTH_JWT_PUBLIC_KEY, { issuer: config.AUTH_JWT_ISSUER, audience: config.AUTH_JWT_AUDIENCE }, config.SESSION_SECRET);
  const connectionSettings = {
    helloTimeoutMs: config.HELLO_TIMEOUT_MS,
    maxConversations: config.MAX_CONVERSATIONS,
    sendBufferLimitBytes: config.SEND_BUFFER_LIMIT_BYTES,
    highWaterBytes: config.SLOW_CONSUMER_HIGH_WATER_BYTES,
    frameRatePerSec: config.FRAME_RATE_PER_SEC,
    frameBurst: config.FRAME_BURST,
    frameAbuseStrikes: config.FRAME_ABUSE_STRIKES,
    limits: {
      maxFrameBytes: config.MAX_FRAME_BYTES,
      maxConversations: config.MAX_CONVERSATIONS,
      maxActiveReplies: config.MAX_ACTIVE_REPLIES,
      maxQueuedReplies: config.MAX_QUEUED_REPLIES,
      maxTextChars: config.MAX_TEXT_CHARS,
      frameRatePerSec: config.FRAME_RATE_PER_SEC,
      frameBurst: config.FRAME_BURST,
      maxAttachmentBytes: config.MAX_ATTACHMENT_BYTES,
      attachmentTypes: [...attachmentTypes],
    },
    models: upstreams.list(),
  };
  const openai: OpenAIDeps = {
    conversations,
    auth,
    apiKeys: store.apiKeys,
    upstreams,
    maxTextChars: config.MAX_TEXT_CHARS,
    maxBodyBytes: config.MAX_HTTP_BODY_BYTES,
    sendBufferLimitBytes: config.SEND_BUFFER_LIMIT_BYTES,
    accepting: () => accepting,
    clientIp: (req) => clientIp(req),
    log,
  };
  const agUi: AgUiDeps = {
    conversations,
    auth,
    apiKeys: store.apiKeys,
    maxTextChars: config.MAX_TEXT_CHARS,
    maxBodyBytes: config.MAX_HTTP_BODY_BYTES,
    sendBufferLimitBytes: config.SEND_BUFFER_LIMIT_BYTES,
    allowedOrigins,
    accepting: () => accepting,
    clientIp: (req) => clientIp(req),
    log: log.child({ transport: 'ag-ui' }),
  };
  const attachments: AttachmentDeps = {
    attachments: backend.attachments,
    meta: (id) => store.log.meta(id),
    isDeleted: (id) => store.isDeleted(id),
    auth,
    apiKeys: store.apiKeys,
    userLimits,
    settings: { maxBytes: config.MAX_ATTACHMENT_BYTES, ttlMs: config.ATTACHMENT_TTL_MS, types: attachmentTypes },
    allowedOrigins,
    accepting: () => accepting,
    clientIp: (req) => clientIp(req),
    log: log.child({ transport: 'attachments' }),
  };
  const uploadsInFlight = new UploadsInFlight(config.MAX_ATTACHMENT_BYTES);
  const aiSdkSettings = {
    maxRequests: config.MAX_CONVERSATIONS,
    maxTextChars: config.MAX_TEXT_CHARS,
    sendBufferLimitBytes: config.SEND_BUFFER_LIMIT_BYTES,
    frameRatePerSec: config.FRAME_RATE_PER_SEC,
    frameBurst: config.FRAME_BURST,
  };
  const aiSdkConnections = new Set<AiSdkConnection>();
  let accepting = true;

  const wss = new WebSocketServer({ noServer: true, maxPayload: config.MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
  const http = createServer(handleRequest);
  http.on('upgrade', handleUpgrade);

  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      // Alive as long as it answers.
      res.writeHead(accepting ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: accepting }));
      return;
    }
    if (path === '/readyz') {
      // Ready while it accepts sockets, its store answers and (when asked to check) the upstream is not down.
      const upstream = config.READY_CHECK_UPSTREAM ? (upstreams.health.down() ? 'down' : 'up') : undefined;
      const ok = accepting && backend.ready() && upstream !== 'down';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify(upstream ? { ok, upstream } : { ok }));
      return;
    }
    if (path === '/metrics') {
      if (config.METRICS_TOKEN && !sameSecret(req.headers.authorization, `Bearer ${config.METRICS_TOKEN}`)) {
        res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
        return;
      }
      metrics.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(body);
        },
        (err: unknown) => {
          log.error({ err }, 'metrics failed');
          res.writeHead(500).end();
        },
      );
      return;
    }
    if (handleOpenAI(req, res, openai)) return;
    if (handleAgUi(req, res, agUi)) return;
    if (handleAttachments(req, res, attachments, uploadsInFlight)) return;
    const admin = path === '/admin/usage' ? handleAdminUsage : path === '/admin/keys' || path?.startsWith('/admin/keys/') ? handleAdminKeys : undefined;
    const adminToken = config.ADMIN_TOKEN;
    if (path?.startsWith('/admin/users/') && adminToken) {
      const deps = { store, attachments: backend.attachments, conversations };
      return void handleAdminUsers(req, res, deps, (t) => sameSecret(t, adminToken)).catch((err: unknown) => {
        log.error({ err }, 'admin endpoint failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    }
    // Without ADMIN_TOKEN there is no admin API at all.
    if (admin && adminToken) {
      return void admin(req, res, store, (t) => sameSecret(t, adminToken)).catch((err: unknown) => {
        log.error({ err }, 'admin endpoint failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    }
    if (servePage(req, res, { sourceMaps: config.PAGE_SOURCE_MAPS })) return;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'not found' }));
  }

  function refuse(socket: Duplex, status: number, text: string): void {
    log.info({ status }, 'upgrade refused');
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }

  function clientIp(req: IncomingMessage): string {
    const direct = req.socket.remoteAddress ?? 'unknown';
    if (!config.TRUST_PROXY) return direct;
    // The last hop is the one our own proxy added; earlier ones are the client's word.
    const forwarded = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',');
    return hops.at(-1)?.trim() || direct;
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/ws' && path !== '/ai-sdk') return refuse(socket, 404, 'Not Found');
    if (!accepting) return refuse(socket, 503, 'Service Unavailable');
    // Cross-site WebSocket hijacking: a browser on another site sends its Origin; refuse before the socket exists.
    const origin = req.headers.origin;
    if (allowedOrigins && origin !== undefined && !allowedOrigins.has(origin)) return refuse(socket, 403, 'Forbidden');
    const ip = clientIp(req);
    const admission = gate.admit(ip);
    if (admission === 'server-full') return refuse(socket, 503, 'Service Unavailable');
    if (admission === 'too-many-per-ip') return refuse(socket, 429, 'Too Many Requests');
    let released = false;
    const release = () => {
      if (!released) gate.release(ip);
      released = true;
    };
    socket.once('close', release);
    if (path === '/ai-sdk') return upgradeAiSdk(req, socket, head, release);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new Connection(
        ws,
        {
          conversations,
          auth,
          usage,
          settings: connectionSettings,
          log,
          metrics,
          onClose: (c) => {
            connections.delete(c);
            release();
          },
        },
        socket instanceof Socket ? socket : undefined,
      );
      connections.add(connection);
    });
  }

  /** The AI SDK transport sends no hello: its token comes in the URL (`params: {token}`), checked before the socket exists. */
  function upgradeAiSdk(req: IncomingMessage, socket: Duplex, head: Buffer, release: () => void): void {
    const token = new URL(req.url ?? '/', 'http://relay').searchParams.get('token') ?? undefined;
    auth.authenticate(token).then(
      (identity) =>
        wss.handleUpgrade(req, socket, head, (ws) => {
          const connection = new AiSdkConnection(ws, identity, conversations, aiSdkSettings, log.child({ transport: 'ai-sdk' }), () => {
            aiSdkConnections.delete(connection);
            release();
          });
          aiSdkConnections.add(connection);
        }),
      (err: unknown) => {
        if (!(err instanceof AuthError)) log.error({ err }, 'ai-sdk upgrade failed');
        refuse(socket, 401, 'Unauthorized');
      },
    );
  }

  // One timer for every socket's heartbeat rather than one per socket.
  const heartbeat = setInterval(() => {
    for (const c of connections) c.heartbeat();
    for (const c of aiSdkConnections) c.heartbeat();
  }, config.PING_INTERVAL_MS);
  // Forget the per-IP and per-user counters that have nothing left to remember.
  const sweeper = setInterval(() => {
    gate.sweep();
    userLimits.sweep();
  }, 60_000);
  sweeper.unref();

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.PORT, config.HOST, () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;

  async function close(graceMs = config.SHUTDOWN_GRACE_MS): Promise<void> {
    if (!accepting) return;
    accepting = false;
    clearInterval(heartbeat);
    clearInterval(sweeper);
    // Running replies may finish within the grace; then they are cancelled and write their reply.end.
    const running = Promise.all([...conversations.all()].map((c) => c.idle));
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([running, new Promise((r) => (graceTimer = setTimeout(r, graceMs)))]);
    clearTimeout(graceTimer);
    await Promise.all([...conversations.all()].map((c) => c.shutdown().catch((err: unknown) => log.warn({ err }, 'shutdown of a conversation failed'))));
    await Promise.all([...conversations.all()].map((c) => c.idle));
    for (const c of connections) c.close(closeCodes.goingAway, 'server shutting down');
    for (const c of aiSdkConnections) c.close(closeCodes.goingAway, 'server shutting down');
    conversations.close();
    await new Promise<void>((resolve) => {
      http.close(() => resolve());
      http.closeAllConnections();
    });
    await backend.close();
  }

  return {
    port,
    url: `ws://${host}:${port}/ws`,
    pageURL: `http://${host}:${port}/`,
    upstreams: upstreams.describe(),
    stats: () => ({
      sockets: connections.size,
      conversations: conversations.size,
      storedConversations: store.log.size(),
      usersWithReplies: userLimits.usersWithReplies(),
    }),
    close,
  };
}

// Process plumbing for the orchestrator: start a server process and find the
// URL it logs, ask the preloaded probe about its memory, read CPU and RSS from
// /proc, and drive the load generators over IPC.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Contender, FromLoadgen, ProbeMaps, ProbeReply, ToLoadgen } from './common.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const PROBE = pathToFileURL(join(ROOT, 'bench', 'probe.mjs')).href;
const CLK_TCK = 100; // getconf CLK_TCK on Linux

// ------------------------------------------------------------------ /proc

/** utime + stime of a process, in ms; undefined once it is gone. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Whole-machine CPU jiffies: busy and total (from /proc/stat). */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

// ------------------------------------------------------------------ servers

export interface ServerProc {
  name: string;
  child: ChildProcess;
  pid: number;
  url: string;
  logFile: string;
  exited: Promise<number | null>;
  probe(cmd: 'mark' | 'mem', gc?: boolean): Promise<ProbeReply | undefined>;
  /** Source maps of the given module URLs, from inside the process. */
  sourceMaps(urls: string[]): Promise<Record<string, unknown>>;
  /** SIGKILL (default) or SIGTERM and wait for the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  script: string;
  env: Record<string, string | undefined>;
  logFile: string;
  /** Node flags before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Working directory (default: the repository); `--import tsx` resolves from here. */
  cwd?: string;
  probe?: boolean;
  timeoutMs?: number;
  /** A directory made for this process alone (relay-sqlite's DATA_DIR): removed once it has exited, however it ended. */
  removeOnExit?: string;
}

export async function startServer(o: StartOptions): Promise<ServerProc> {
  const fd = openSync(o.logFile, 'a');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...o.env })) if (v !== undefined) env[k] = v;
  if (o.probe !== false) env.NODE_OPTIONS = `--expose-gc --import=${PROBE}`;
  else delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), '--import', 'tsx', o.script], {
    cwd: o.cwd ?? ROOT,
    env,
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      // Before anyone awaiting the exit (stop()) goes on: a stopped process has left nothing behind.
      if (o.removeOnExit) rmSync(o.removeOnExit, { recursive: true, force: true });
      resolve(code);
    }),
  );
  // An orchestrator that exits first (Ctrl-C, a failed run, even mid start-up) takes the server and its directory with it.
  const orphaned = () => {
    child.kill('SIGKILL');
    if (o.removeOnExit) rmSync(o.removeOnExit, { recursive: true, force: true });
  };
  process.once('exit', orphaned);
  void exited.then(() => process.off('exit', orphaned));
  let dead = false;
  void exited.then(() => (dead = true));
  const tail = () => (existsSync(o.logFile) ? readFileSync(o.logFile, 'utf8').split('\n').slice(-15).join('\n') : '');

  let probeId = 0;
  const waiting = new Map<number, (r: ProbeReply & Partial<ProbeMaps>) => void>();
  child.on('message', (m: unknown) => {
    const r = m as ProbeReply & Partial<ProbeMaps>;
    if (r && typeof r.probe === 'number') {
      waiting.get(r.probe)?.(r);
      waiting.delete(r.probe);
    }
  });
  child.on('error', () => undefined);

  function ask(msg: object): Promise<(ProbeReply & Partial<ProbeMaps>) | undefined> {
    if (dead || !child.connected) return Promise.resolve(undefined);
    const id = ++probeId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(undefined);
      }, 10_000);
      waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      child.send({ probe: id, ...msg }, (err) => {
        if (err) {
          clearTimeout(timer);
          waiting.delete(id);
          resolve(undefined);
        }
      });
    });
  }

  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  let url: string | undefined;
  while (!url) {
    if (dead) throw new Error(`${o.name} exited during start-up:\n${tail()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${o.name} did not log its listen URL in time:\n${tail()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
    const text = existsSync(o.logFile) ? readFileSync(o.logFile, 'utf8') : '';
    for (const line of text.split('\n')) {
      if (!line.includes('"listen"')) continue;
      try {
        const parsed = JSON.parse(line) as { listen?: string };
        if (parsed.listen) url = parsed.listen;
      } catch {
        /* a partial line */
      }
    }
  }

  return {
    name: o.name,
    child,
    pid: child.pid!,
    url,
    logFile: o.logFile,
    exited,
    async sourceMaps(urls) {
      const r = await ask({ cmd: 'sourcemaps', urls });
      return r?.maps ?? {};
    },
    probe(cmd, gc = false) {
      return ask({ cmd, gc });
    },
    async stop(signal = 'SIGKILL', timeoutMs = 20_000) {
      if (dead) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** The code a relay process runs: copied whole for a bench run, hashed to name it. */
export const RELAY_DIRS = ['server', 'shared', 'demo'];

/** Every .ts file under `dir` (relative paths, sorted), subfolders included. */
export function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((n) => n.endsWith('.ts'))
    .sort();
}

/** The source maps of the relay's own modules (server/ and shared/ under `root`), as `server` loaded them. */
export function ownSourceMaps(server: ServerProc, root: string): Promise<Record<string, unknown>> {
  const urls = ['server', 'shared'].flatMap((d) => tsFiles(join(root, d)).map((n) => pathToFileURL(join(root, d, n)).href));
  return server.sourceMaps(urls);
}

// ------------------------------------------------------------------ the relay's own moderation metrics

/** What a relay's `/metrics` says about moderation so far (counters and histogram sums only grow: subtract two readings). */
export interface ModerationCounters {
  /** Checks by what was checked: input (a user message), window (of a streaming reply), whole (a reply at its end). */
  input: number;
  window: number;
  whole: number;
  failed: number;
  flagged: number;
  /** relay_moderation_check_seconds: the round trip of a check as the relay sees it. */
  checkSec: number;
  checkCount: number;
  /** relay_moderation_held_seconds: how long buffered pieces were held back. */
  heldSec: number;
  heldCount: number;
}

/** Reads the moderation series of a relay's Prometheus `/metrics` (served on its WebSocket port); undefined if it does not answer. */
export async function moderationCounters(wsUrl: string): Promise<ModerationCounters | undefined> {
  let text: string;
  try {
    const res = await fetch(new URL('/metrics', wsUrl.replace(/^ws/, 'http')), { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) return undefined;
    text = await res.text();
  } catch {
    return undefined;
  }
  const c: ModerationCounters = { input: 0, window: 0, whole: 0, failed: 0, flagged: 0, checkSec: 0, checkCount: 0, heldSec: 0, heldCount: 0 };
  for (const line of text.split('\n')) {
    const m = /^(relay_moderation_\w+?)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, labels = '', raw] = m;
    const v = Number(raw);
    if (!Number.isFinite(v)) continue;
    const label = (k: string) => new RegExp(`(?:^|,)${k}="([^"]*)"`).exec(labels)?.[1];
    if (name === 'relay_moderation_checks_total') {
      const kind = label('kind');
      if (kind === 'input' || kind === 'window' || kind === 'whole') c[kind] += v;
      if (label('outcome') === 'failed') c.failed += v;
      if (label('outcome') === 'flagged') c.flagged += v;
    } else if (name === 'relay_moderation_check_seconds_sum') c.checkSec += v;
    else if (name === 'relay_moderation_check_seconds_count') c.checkCount += v;
    else if (name === 'relay_moderation_held_seconds_sum') c.heldSec += v;
    else if (name === 'relay_moderation_held_seconds_count') c.heldCount += v;
  }
  return c;
}

// ------------------------------------------------------------------ load generators

export class Loadgen {
  readonly child: ChildProcess;
  private readonly inbox: FromLoadgen[] = [];
  private readonly waiters: Array<{ ev: FromLoadgen['ev']; resolve: (m: FromLoadgen) => void }> = [];
  readonly exited: Promise<void>;

  constructor(readonly id: number) {
    this.child = fork(join(ROOT, 'bench', 'loadgen.ts'), [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, LOADGEN_ID: String(id), NODE_OPTIONS: '' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.on('message', (m: FromLoadgen) => {
      const i = this.waiters.findIndex((w) => w.ev === m.ev);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else this.inbox.push(m);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(msg: ToLoadgen): void {
    this.child.send(msg);
  }

  /** The next message of kind `ev` (queued or still to come). */
  next<E extends FromLoadgen['ev']>(ev: E, timeoutMs: number): Promise<Extract<FromLoadgen, { ev: E }>> {
    const i = this.inbox.findIndex((m) => m.ev === ev);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Extract<FromLoadgen, { ev: E }>);
    return new Promise((resolve, reject) => {
      const w = { ev, resolve: (m: FromLoadgen) => (clearTimeout(timer), resolve(m as Extract<FromLoadgen, { ev: E }>)) };
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(w);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new Error(`load generator ${this.id}: no "${ev}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Drop stale messages (e.g. a late result after a timeout). */
  flush(): void {
    this.inbox.length = 0;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface ContenderSpec {
  script: string;
  env: Record<string, string | undefined>;
  /** relay-sqlite's fresh DATA_DIR, made by contenderEnv(): pass it to startServer() as `removeOnExit`. */
  dataDir?: string;
}

/**
 * relay-moderated's moderation: buffered, on the relay's default window and step (named here, so the
 * report can say what a piece waits for even if the relay's defaults change).
 */
export const MODERATION = { mode: 'buffered', windowTokens: 200, stepTokens: 50 } as const;

/**
 * How each contender is started: its script and environment, with the relay's limits out of the way.
 * The relay's store is always named: left unset it would be SQLite in ./data of the working directory.
 * relay-sqlite gets a new empty DATA_DIR on every call (one process per data directory, and no state
 * carried from one trial into the next). relay-moderated is relay (memory store, same limits) with
 * buffered moderation checked against the bench upstream's `POST /v1/moderations`.
 */
export function contenderEnv(target: Contender, upstreamUrl: string, relayLogLevel = 'info', relayRedis = ''): ContenderSpec {
  const common = { PORT: '0', HOST: '127.0.0.1' };
  if (target === 'floor') return { script: 'bench/floor.ts', env: { ...common, UPSTREAM_URL: upstreamUrl } };
  if (target === 'socketio') return { script: 'bench/socketio.ts', env: { ...common, UPSTREAM_URL: upstreamUrl } };
  const sqlite = target === 'relay-sqlite';
  const moderated = target === 'relay-moderated';
  const dataDir = sqlite ? mkdtempSync(join(tmpdir(), 'chat-relay-bench-data-')) : undefined;
  return {
    script: 'server/main.ts',
    ...(dataDir ? { dataDir } : {}),
    env: {
      ...common,
      STORE: sqlite ? 'sqlite' : 'memory',
      // undefined drops a DATA_DIR inherited from the shell (startServer skips undefined values); '' would be refused.
      DATA_DIR: dataDir,
      OPENAI_API_KEY: 'bench',
      OPENAI_BASE_URL: upstreamUrl,
      OPENAI_MODEL: 'bench-model',
      LOG_LEVEL: relayLogLevel,
      // Every limit out of the way: the bench measures the relay's cost, not its policy.
      FRAME_RATE_PER_SEC: '100000',
      FRAME_BURST: '100000',
      FRAME_ABUSE_STRIKES: '100000',
      MAX_CONNECTIONS: '100000',
      MAX_CONNECTIONS_PER_IP: '100000',
      CONNECTIONS_PER_IP_PER_MINUTE: '100000000',
      REPLIES_PER_MINUTE: '100000',
      MAX_ACTIVE_REPLIES: '1000',
      MAX_QUEUED_REPLIES: '16',
      MAX_CONVERSATIONS: '1000',
      TOKEN_QUOTA: '0',
      SHUTDOWN_GRACE_MS: '0',
      // Not ours to inherit from the shell: this is a one-node, anonymous, loopback relay (on Redis only when asked).
      // REDIS_URL would take precedence over STORE, so relay-sqlite never gets it.
      REDIS_URL: sqlite ? '' : relayRedis,
      REDIS_PREFIX: `bench-${process.pid}-${Date.now()}:`,
      AUTH_JWT_SECRET: '',
      AUTH_JWT_PUBLIC_KEY: '',
      ALLOWED_ORIGINS: '',
      TRUST_PROXY: 'false',
      // Moderation only for relay-moderated; undefined drops whatever the shell has, so the rest are the relay's defaults
      // (fail open, 5 s timeout, every category, the API's own verdict).
      MODERATION_BASE_URL: moderated ? upstreamUrl : undefined,
      MODERATION_MODE: moderated ? MODERATION.mode : undefined,
      MODERATION_WINDOW_TOKENS: moderated ? String(MODERATION.windowTokens) : undefined,
      MODERATION_STEP_TOKENS: moderated ? String(MODERATION.stepTokens) : undefined,
      // Any key: the bench upstream reads none, and without one the relay warns that a real API would refuse every check.
      MODERATION_API_KEY: moderated ? 'bench' : undefined,
      MODERATION_MODEL: undefined,
      MODERATION_FAIL_MODE: undefined,
      MODERATION_TIMEOUT_MS: undefined,
      MODERATION_CATEGORIES: undefined,
      MODERATION_THRESHOLD: undefined,
      METRICS_TOKEN: undefined,
    },
  };
}

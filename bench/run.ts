// `npm run bench`: the relay against a floor and a Socket.IO relay, on
// loopback, all fed by one paced local upstream (bench/upstream.ts), driven by
// 1–2 load generator processes (bench/loadgen.ts). Every contender is its own
// process, started fresh for each trial; repetitions alternate contenders
// (floor, socketio, relay, relay-sqlite, relay-moderated, floor, …) and the
// report gives medians. relay is the relay with its in-memory store,
// relay-sqlite the same code on its SQLite store (a fresh DATA_DIR per
// process), relay-moderated the in-memory relay with buffered moderation
// (checked against the bench upstream's POST /v1/moderations).
//
//   npm run bench                 the default run (~25 minutes on 2 cores)
//   npm run bench -- --quick      a smoke run (~5 minutes, one repetition)
//   npm run bench -- --help       every flag
//
// Results: bench/results/latest.{json,md} (and <mode>.{json,md}), plus
// bench/results/profile-relay.md from a `node --cpu-prof` run of the relay.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Histogram, isRelay, now, sleep, type Contender, type RoomSpec, type Target, type TrialResult } from './common.js';
import { mainThreadProfile, profileMarkdown, summarize, type ProfileSummary } from './cpuprofile.js';
import {
  contenderEnv,
  cpuMs,
  Loadgen,
  machineCpu,
  MODERATION,
  moderationCounters,
  ownSourceMaps,
  RELAY_DIRS,
  ROOT,
  rssBytes,
  startServer,
  tsFiles,
  type ModerationCounters,
  type ServerProc,
} from './procs.js';
import { parseOptions, STEADY_AFTER_RAMP_MS, type Options } from './options.js';
import { renderMarkdown } from './report-markdown.js';
import type { BenchReport, IdleMetrics, TrialMetrics } from './report.js';
import type { MicroCase } from './sse-micro.js';

// ------------------------------------------------------------------ the run

const started = now();
function log(msg: string): void {
  const s = Math.round((now() - started) / 1000);
  process.stderr.write(`[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${msg}\n`);
}

/** bench/upstream.ts's `GET /stats`: ticker health since the last reset, and counters that only grow. */
interface UpstreamStats {
  tickLateMax: number;
  tickWorkMax: number;
  tickWorkMean: number;
  ticksSkipped: number;
  open: number;
  moderationRequests?: number;
  moderationReplyRequests?: number;
}

const fmt = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

class Bench {
  readonly work = mkdtempSync(join(tmpdir(), 'chat-relay-bench-'));
  upstream!: ServerProc;
  loadgens: Loadgen[] = [];
  private seq = 0;

  constructor(readonly o: Options) {}

  /**
   * The relay's code as it was when the run started. Other people edit server/ while a run goes on;
   * every relay process of one run must be the same code, so it runs from this copy.
   */
  readonly snapshot = join(this.work, 'relay');
  relayVersion: { commit: string; dirty: string[]; sha256: string } = { commit: '?', dirty: [], sha256: '?' };

  private takeSnapshot(): void {
    mkdirSync(this.snapshot, { recursive: true });
    const hash = createHash('sha256');
    for (const dir of RELAY_DIRS) {
      cpSync(join(ROOT, dir), join(this.snapshot, dir), { recursive: true });
      for (const name of tsFiles(join(this.snapshot, dir))) hash.update(name).update(readFileSync(join(this.snapshot, dir, name)));
    }
    for (const file of ['package.json', 'tsconfig.json']) cpSync(join(ROOT, file), join(this.snapshot, file));
    symlinkSync(join(ROOT, 'node_modules'), join(this.snapshot, 'node_modules'), 'dir');
    const git = (args: string[]) => {
      try {
        return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trimEnd();
      } catch {
        return '';
      }
    };
    this.relayVersion = {
      commit: git(['rev-parse', '--short', 'HEAD']).trim() || '?',
      dirty: git(['status', '--porcelain', '--', ...RELAY_DIRS]).split('\n').filter(Boolean),
      sha256: hash.digest('hex').slice(0, 12),
    };
  }

  async start(): Promise<void> {
    this.takeSnapshot();
    log(
      `relay code: commit ${this.relayVersion.commit}${this.relayVersion.dirty.length ? ` + ${this.relayVersion.dirty.length} uncommitted change(s)` : ''}, ` +
        `server/+shared/+demo/ sha256 ${this.relayVersion.sha256} (copied to ${this.snapshot})`,
    );
    this.upstream = await startServer({
      name: 'upstream',
      script: 'bench/upstream.ts',
      env: { PORT: '0', HOST: '127.0.0.1', BENCH_PACE: String(this.o.pace), BENCH_DEFAULT_TOKENS: '300' },
      logFile: join(this.work, 'upstream.log'),
    });
    log(`upstream ${this.upstream.url} (pid ${this.upstream.pid}), work dir ${this.work}`);
    await this.spawnLoadgens();
  }

  private async spawnLoadgens(): Promise<void> {
    for (const lg of this.loadgens) await lg.kill();
    this.loadgens = Array.from({ length: this.o.loadgens }, (_, i) => new Loadgen(i));
    await Promise.all(this.loadgens.map((lg) => lg.next('ready', 30_000)));
  }

  async close(): Promise<void> {
    for (const lg of this.loadgens) await lg.kill();
    await this.upstream?.stop();
  }

  startContender(target: Contender, nodeArgs: string[] = []): Promise<ServerProc> {
    const { script, env, dataDir } = contenderEnv(target, this.upstream.url, this.o.relayLogLevel, this.o.relayRedis);
    const relay = isRelay(target);
    return startServer({
      name: target,
      script: relay ? join(this.snapshot, script) : script,
      ...(relay ? { cwd: this.snapshot } : {}),
      ...(dataDir ? { removeOnExit: dataDir } : {}),
      env,
      nodeArgs,
      logFile: join(this.work, `${target}-${++this.seq}.log`),
    });
  }

  async upstreamStats(reset = false): Promise<UpstreamStats> {
    const base = this.upstream.url.replace(/\/v1$/, '');
    const res = await fetch(`${base}/stats${reset ? '?reset=1' : ''}`);
    return (await res.json()) as UpstreamStats;
  }

  async resetLoadgens(): Promise<void> {
    try {
      for (const lg of this.loadgens) lg.send({ cmd: 'reset' });
      await Promise.all(this.loadgens.map((lg) => lg.next('reset', 60_000)));
      for (const lg of this.loadgens) lg.flush();
    } catch (err) {
      log(`load generators did not reset (${(err as Error).message}); restarting them`);
      await this.spawnLoadgens();
    }
  }

  /** One trial: fresh contender process, rooms prepared, then every reply started over the ramp. */
  async trial(p: {
    workload: string;
    target: Target;
    level: number;
    rep: number;
    rooms: number;
    members: number;
    seconds: number;
    phase?: string;
    /** The slow-consumer test: one extra member in every room, which stops reading at 40 % of the reply. */
    slow?: boolean;
    warmup?: boolean;
    nodeArgs?: string[];
    /** Runs after the measurements, before the contender is stopped. */
    beforeStop?: (server: ServerProc) => Promise<void>;
    stopWith?: NodeJS.Signals;
  }): Promise<TrialMetrics> {
    const o = this.o;
    const tWall = now();
    const tokens = Math.max(1, Math.round(p.seconds * o.pace));
    const server = p.target === 'direct' ? undefined : await this.startContender(p.target, p.nodeArgs);
    const url = server?.url ?? this.upstream.url;
    const trialId = `t${++this.seq}`;
    const rooms: RoomSpec[] = Array.from({ length: p.rooms }, (_, i) => ({ id: `${trialId}-r${i}`, index: i, members: p.members }));
    // A contender that falls behind is cut off here; what it had not delivered by then counts as not delivered.
    const deadlineMs = o.rampMs + p.seconds * 1000 + Math.max(3000, p.seconds * 500);
    const pauseAtMs = o.rampMs + p.seconds * 300;
    const slowSpec = p.slow
      ? {
          slowPauseAtMs: pauseAtMs,
          // B stops before the first reply ends: reply ends have costs of their own (history, usage) that are not the slow member's doing.
          split: { aFrom: o.rampMs + 500, aTo: pauseAtMs, bFrom: pauseAtMs + 1000, bTo: p.seconds * 1000 - 300 },
          ...(o.slowPad ? { tokenPad: o.slowPad } : {}),
        }
      : {};
    // Steady state: every stream has opened and the start burst has been worked off; no reply has ended yet.
    const steady = { aFrom: o.rampMs + STEADY_AFTER_RAMP_MS, aTo: p.seconds * 1000 - 300 };
    const steadySpec = !p.slow && steady.aTo > steady.aFrom ? { split: steady } : {};
    const L = this.loadgens.length;
    let prepareErrors = 0;
    let firstError: string | undefined;
    const results: TrialResult[] = [];
    let rssMax = 0;
    const series: Array<[number, number]> = [];
    let cpu0: { server?: number; upstream?: number; lgs: Array<number | undefined>; machine: { busy: number; total: number } } | undefined;
    let t0 = 0;
    let ustats: UpstreamStats | undefined;
    let ustats0: UpstreamStats | undefined;
    // relay-moderated's own view of its checks (kinds, failures, round trip, hold), read before and after the window.
    const moderated = p.target === 'relay-moderated';
    let mod0: ModerationCounters | undefined;
    let mod1: ModerationCounters | undefined;
    let mem: Awaited<ReturnType<ServerProc['probe']>>;
    let cpu1: typeof cpu0;
    try {
      if (server) await this.warmServer(server.url, p.target, p.members);
      this.loadgens.forEach((lg, k) =>
        lg.send({
          cmd: 'prepare',
          spec: {
            trialId,
            target: p.target,
            url,
            rooms: rooms.filter((r) => r.index % L === k),
            totalRooms: rooms.length,
            tokens,
            rampMs: o.rampMs,
            deadlineMs,
            ...slowSpec,
            ...steadySpec,
            ...(p.slow && k === 0 ? { slowRooms: rooms.map((r) => r.id) } : {}),
          },
        }),
      );
      const prepared = await Promise.all(this.loadgens.map((lg) => lg.next('prepared', 240_000)));
      for (const r of prepared) {
        prepareErrors += r.errors;
        firstError ??= r.firstError;
      }
      // Let join-time traffic (presence frames) settle out of the window.
      await sleep(p.members > 1 ? 400 : 150);
      if (server && moderated) mod0 = await moderationCounters(server.url);
      ustats0 = await this.upstreamStats(true);
      await server?.probe('mark');
      cpu0 = {
        ...(server ? { server: cpuMs(server.pid) } : {}),
        upstream: cpuMs(this.upstream.pid),
        lgs: this.loadgens.map((lg) => cpuMs(lg.pid)),
        machine: machineCpu(),
      };
      t0 = now() + 30;
      for (const lg of this.loadgens) lg.send({ cmd: 'go', t0 });
      const sampler = server
        ? setInterval(() => {
            const rss = rssBytes(server.pid);
            if (rss === undefined) return;
            rssMax = Math.max(rssMax, rss);
            series.push([Math.round(now() - t0) / 1000, Math.round(rss / 1048576)]);
          }, 250)
        : undefined;
      try {
        results.push(...(await Promise.all(this.loadgens.map((lg) => lg.next('result', deadlineMs + 60_000)))).map((m) => m.result));
      } finally {
        clearInterval(sampler);
      }
      cpu1 = {
        ...(server ? { server: cpuMs(server.pid) } : {}),
        upstream: cpuMs(this.upstream.pid),
        lgs: this.loadgens.map((lg) => cpuMs(lg.pid)),
        machine: machineCpu(),
      };
      if (server) {
        const rss = rssBytes(server.pid);
        if (rss !== undefined) series.push([Math.round(now() - t0) / 1000, Math.round(rss / 1048576)]);
      }
      ustats = await this.upstreamStats();
      if (server && moderated) mod1 = await moderationCounters(server.url);
      // After the window: a full GC, so heapUsed is what the contender still holds (history, logs, sockets).
      mem = await server?.probe('mem', true);
      if (server && p.beforeStop) await p.beforeStop(server);
    } finally {
      await server?.stop(p.stopWith ?? 'SIGKILL');
      await this.resetLoadgens();
    }

    const latency = new Histogram();
    const ttft = new Histogram();
    const latencyA = new Histogram();
    const latencyB = new Histogram();
    let tok = 0;
    let frames = 0;
    let expected = 0;
    let errors = prepareErrors;
    let closedEarly = 0;
    let timedOut = 0;
    let tEnd = t0;
    let slowFrames = 0;
    let slowTokens = 0;
    let slowFramesAfter = 0;
    let slowTokensAfter = 0;
    let slowBytesAfter = 0;
    let slowCloseCode: number | undefined;
    for (const r of results) {
      latency.merge(r.latency);
      ttft.merge(r.ttft);
      if (r.latencyA) latencyA.merge(r.latencyA);
      if (r.latencyB) latencyB.merge(r.latencyB);
      tok += r.tokens;
      frames += r.frames;
      expected += r.expectedTokens;
      errors += r.errors;
      closedEarly += r.closedEarly;
      timedOut += r.roomsTimedOut;
      tEnd = Math.max(tEnd, r.endedAt);
      firstError ??= r.firstError;
      slowFrames += r.slowFrames;
      slowTokens += r.slowTokens;
      slowFramesAfter += r.slowFramesAfter;
      slowTokensAfter += r.slowTokensAfter;
      slowBytesAfter += r.slowBytesAfter;
      slowCloseCode ??= r.slowCloseCode;
    }
    const windowSec = Math.max(1e-3, (tEnd - t0) / 1000);
    const serverCpuSec = cpu0?.server !== undefined && cpu1?.server !== undefined ? (cpu1.server - cpu0.server) / 1000 : undefined;
    const lgCpu = cpu0 && cpu1 ? this.loadgens.reduce((s, _, i) => s + ((cpu1!.lgs[i] ?? 0) - (cpu0!.lgs[i] ?? 0)), 0) / 1000 : undefined;
    const upCpu = cpu0?.upstream !== undefined && cpu1?.upstream !== undefined ? (cpu1.upstream - cpu0.upstream) / 1000 : undefined;
    // In % of one core (0–100 × cores), like the per-process figures.
    const cores = cpus().length;
    const machineBusyPct =
      cpu0 && cpu1 ? (100 * cores * (cpu1.machine.busy - cpu0.machine.busy)) / Math.max(1, cpu1.machine.total - cpu0.machine.total) : undefined;
    const oursPct = ((serverCpuSec ?? 0) + (upCpu ?? 0) + (lgCpu ?? 0)) * 100 / windowSec;
    const foreignCpuPct = machineBusyPct !== undefined ? Math.max(0, machineBusyPct - oursPct) : undefined;
    const m: TrialMetrics = {
      workload: p.workload,
      target: p.target,
      level: p.level,
      rep: p.rep,
      ...(p.phase ? { phase: p.phase } : {}),
      rooms: p.rooms,
      members: p.members,
      tokensPerStream: tokens,
      windowStartMs: t0,
      windowEndMs: tEnd,
      windowSec,
      tokens: tok,
      expectedTokens: expected,
      deliveredPct: expected ? (100 * tok) / expected : 0,
      frames,
      tokensPerSec: tok / windowSec,
      framesPerSec: frames / windowSec,
      latencyP50: latency.percentile(50),
      latencyP99: latency.percentile(99),
      latencyMax: latency.count ? latency.max : undefined,
      ...(!p.slow && latencyA.count ? { steadyP50: latencyA.percentile(50), steadyP99: latencyA.percentile(99) } : {}),
      ttftP50: ttft.percentile(50),
      ttftP99: ttft.percentile(99),
      ...(serverCpuSec !== undefined
        ? {
            serverCpuSec,
            serverCpuPct: (100 * serverCpuSec) / windowSec,
            tokensPerCpuSec: serverCpuSec > 0 ? tok / serverCpuSec : undefined,
            framesPerCpuSec: serverCpuSec > 0 ? frames / serverCpuSec : undefined,
          }
        : {}),
      ...(server ? { rssMaxMb: rssMax / 1048576, heapEndMb: mem ? mem.heapUsed / 1048576 : undefined, elu: mem?.elu } : {}),
      upstreamCpuPct: upCpu !== undefined ? (100 * upCpu) / windowSec : undefined,
      loadgenCpuPct: lgCpu !== undefined ? (100 * lgCpu) / windowSec : undefined,
      machineBusyPct,
      foreignCpuPct,
      upstreamTickLateMaxMs: ustats?.tickLateMax,
      upstreamTickWorkMeanMs: ustats?.tickWorkMean,
      upstreamTicksSkipped: ustats?.ticksSkipped,
      ...(moderated ? moderationMetrics(p.rooms, ustats0, ustats, mod0, mod1) : {}),
      errors,
      closedEarly,
      roomsTimedOut: timedOut,
      ...(firstError ? { firstError } : {}),
      ...(p.slow
        ? {
            rssSeries: series,
            slow: {
              pauseAtSec: pauseAtMs / 1000,
              padBytes: o.slowPad,
              frames: slowFrames,
              tokens: slowTokens,
              framesAfter: slowFramesAfter,
              tokensAfter: slowTokensAfter,
              bytesAfter: slowBytesAfter,
              closeCode: slowCloseCode,
              readingP50: latencyA.percentile(50),
              readingP99: latencyA.percentile(99),
              pausedP50: latencyB.percentile(50),
              pausedP99: latencyB.percentile(99),
              rssAtPauseMb: series.filter(([t]) => t <= pauseAtMs / 1000).at(-1)?.[1],
            },
          }
        : {}),
      wallSec: (now() - tWall) / 1000,
    };
    const slowNote = m.slow
      ? `  reading p99 ${fmt(m.slow.readingP99, 1)} → paused p99 ${fmt(m.slow.pausedP99, 1)} ms, slow socket ${m.slow.closeCode ?? 'open'}`
      : '';
    const modNote =
      m.moderationChecksPerReply !== undefined
        ? `  checks/reply ${fmt(m.moderationChecksPerReply, 2)}, held mean ${fmt(m.moderationHeldMeanMs, 0)} ms, check mean ${fmt(m.moderationCheckMeanMs, 2)} ms` +
          `${m.moderationFailed ? `, ${m.moderationFailed} failed` : ''}`
        : '';
    log(
      `${p.warmup ? 'warm-up: ' : ''}${p.workload} ${p.level}${p.phase ? ` ${p.phase}` : ''} rep ${p.rep} ${p.target.padEnd(12)} ` +
        `${fmt(m.tokensPerSec / 1000)}k tok/s  p50 ${fmt(m.latencyP50, 2)} p99 ${fmt(m.latencyP99, 1)} (steady ${fmt(m.steadyP99, 1)}) ms  ttft ${fmt(m.ttftP50, 1)} ms  ` +
        `cpu ${fmt(m.serverCpuPct, 0)}%  rss ${fmt(m.rssMaxMb, 0)} MB  delivered ${fmt(m.deliveredPct, 1)}%` +
        `${errors ? `  errors ${errors} (${firstError})` : ''}${slowNote}${modNote}  [${fmt(m.wallSec, 1)} s]`,
    );
    return m;
  }

  /**
   * A fresh process runs cold code (lazy module loading, V8 not yet optimising, no upstream connections);
   * a long-running server is warm. Serve short replies in batches first, the same for every contender:
   * measured on the relay, its CPU per reply stops falling after a few hundred.
   */
  private async warmServer(url: string, target: Target, members: number): Promise<void> {
    const lg = this.loadgens[0]!;
    const batch = 100;
    for (let done = 0; done < this.o.warmReplies; done += batch) {
      const id = `w${++this.seq}`;
      const n = Math.min(batch, this.o.warmReplies - done);
      const rooms = Array.from({ length: n }, (_, i) => ({ id: `${id}-r${i}`, index: i, members: Math.min(members, 4) }));
      lg.send({ cmd: 'prepare', spec: { trialId: id, target, url, rooms, totalRooms: rooms.length, tokens: 8, rampMs: 100, deadlineMs: 10_000 } });
      await lg.next('prepared', 30_000);
      lg.send({ cmd: 'go', t0: now() });
      await lg.next('result', 40_000);
      await this.resetLoadgens();
    }
  }

  /** Idle sockets: memory per connection at each level, one process ramped through the levels. */
  async idle(target: Contender, rep: number): Promise<IdleMetrics[]> {
    const server = await this.startContender(target);
    const out: IdleMetrics[] = [];
    try {
      await sleep(300);
      const base = await server.probe('mem', true);
      const rss0 = rssBytes(server.pid) ?? 0;
      const heap0 = base?.heapUsed ?? 0;
      const L = this.loadgens.length;
      for (const level of this.o.idle) {
        const t = now();
        this.loadgens.forEach((lg, k) => lg.send({ cmd: 'idle', target, url: server.url, total: Math.floor(level / L) + (k < level % L ? 1 : 0) }));
        const replies = await Promise.all(this.loadgens.map((lg) => lg.next('idle', 300_000)));
        const connectSec = (now() - t) / 1000;
        const open = replies.reduce((n, r) => n + r.open, 0);
        const errors = replies.reduce((n, r) => n + r.errors, 0);
        // A quiet second: what the open sockets cost while nobody speaks.
        await sleep(300);
        const c0 = cpuMs(server.pid);
        const q0 = now();
        await sleep(1500);
        const c1 = cpuMs(server.pid);
        const idleCpuPct = c0 !== undefined && c1 !== undefined ? ((c1 - c0) / (now() - q0)) * 100 : undefined;
        const mem = await server.probe('mem', true);
        const rss = rssBytes(server.pid) ?? 0;
        const m: IdleMetrics = {
          target,
          rep,
          level,
          open,
          errors,
          ...(replies.find((r) => r.firstError) ? { firstError: replies.find((r) => r.firstError)!.firstError } : {}),
          connectSec,
          rssMb: rss / 1048576,
          baseRssMb: rss0 / 1048576,
          rssPerConnKb: open ? (rss - rss0) / open / 1024 : undefined,
          heapUsedMb: mem ? mem.heapUsed / 1048576 : undefined,
          heapPerConnKb: mem && open ? (mem.heapUsed - heap0) / open / 1024 : undefined,
          idleCpuPct,
        };
        out.push(m);
        log(
          `idle ${level} rep ${rep} ${target.padEnd(12)} open ${open}${errors ? ` errors ${errors} (${m.firstError})` : ''}  ` +
            `rss ${fmt(m.rssMb, 0)} MB (${fmt(m.rssPerConnKb, 1)} KB/conn)  heap ${fmt(m.heapUsedMb, 0)} MB (${fmt(m.heapPerConnKb, 1)} KB/conn)  ` +
            `idle cpu ${fmt(idleCpuPct, 1)}%  connect ${fmt(connectSec, 1)} s`,
        );
        if (open < level * 0.95) {
          log(`idle: only ${open} of ${level} sockets open; not going higher for ${target}`);
          break;
        }
      }
    } finally {
      await server.stop();
      await this.resetLoadgens();
    }
    return out;
  }

  async profile(): Promise<{ summary: ProfileSummary; trial: TrialMetrics } | undefined> {
    const dir = join(this.work, 'cpuprof');
    mkdirSync(dir, { recursive: true });
    let maps: Record<string, unknown> = {};
    const slow = this.o.profileWorkload === 'slow';
    const trial = await this.trial({
      workload: 'profile',
      target: 'relay',
      level: slow ? this.o.slowRooms : this.o.profileStreams,
      rep: 1,
      rooms: slow ? this.o.slowRooms : this.o.profileStreams,
      members: slow ? this.o.roomSize : 1,
      seconds: slow ? this.o.slowSeconds : this.o.profileSeconds,
      slow,
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
      stopWith: 'SIGTERM',
      beforeStop: async (server) => {
        maps = await ownSourceMaps(server, this.snapshot);
      },
    });
    const main = mainThreadProfile(dir);
    if (!main) {
      log('profile: the relay wrote no .cpuprofile');
      return undefined;
    }
    // Only the measured window: not start-up (module loading), connecting, or shutdown.
    const window = { fromUs: trial.windowStartMs * 1000, toUs: trial.windowEndMs * 1000 };
    return { summary: summarize(main, this.snapshot, 15, maps, window), trial };
  }

  async micro(): Promise<MicroCase[] | undefined> {
    try {
      const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/sse-micro.ts', '--json', String(this.o.microMs)], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 300_000,
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      return JSON.parse(out.trim().split('\n').at(-1)!) as MicroCase[];
    } catch (err) {
      log(`micro-benchmark failed: ${(err as Error).message}`);
      return undefined;
    }
  }
}

/**
 * One relay-moderated trial's checks: the upstream's count of `POST /v1/moderations` over the window (one reply per
 * room), and the relay's own metrics for the same window (kinds, failures, the round trip, how long pieces were held).
 */
function moderationMetrics(
  replies: number,
  u0: UpstreamStats | undefined,
  u1: UpstreamStats | undefined,
  m0: ModerationCounters | undefined,
  m1: ModerationCounters | undefined,
): Partial<TrialMetrics> {
  const out: Partial<TrialMetrics> = {};
  if (u0?.moderationRequests !== undefined && u1?.moderationRequests !== undefined) {
    out.moderationChecks = u1.moderationRequests - u0.moderationRequests;
    out.moderationChecksPerReply = out.moderationChecks / Math.max(1, replies);
  }
  if (m0 && m1) {
    out.moderationWindowChecksPerReply = (m1.window - m0.window) / Math.max(1, replies);
    out.moderationFailed = m1.failed - m0.failed;
    out.moderationFlagged = m1.flagged - m0.flagged;
    const checks = m1.checkCount - m0.checkCount;
    if (checks > 0) out.moderationCheckMeanMs = ((m1.checkSec - m0.checkSec) * 1000) / checks;
    const held = m1.heldCount - m0.heldCount;
    if (held > 0) out.moderationHeldMeanMs = ((m1.heldSec - m0.heldSec) * 1000) / held;
  }
  return out;
}

async function main(): Promise<void> {
  // `--render results.json [out.md]`: rebuild the Markdown of a saved run.
  if (process.argv[2] === '--render') {
    const file = process.argv[3]!;
    const md = renderMarkdown(JSON.parse(readFileSync(file, 'utf8')) as BenchReport);
    writeFileSync(process.argv[4] ?? file.replace(/\.json$/, '.md'), md);
    return;
  }
  const o = parseOptions(process.argv.slice(2));
  mkdirSync(o.out, { recursive: true });
  const bench = new Bench(o);
  // The output folder stays out of the report: it names no path of the machine it ran on.
  const { out: _out, ...reportedOptions } = o;
  const report: BenchReport = {
    meta: {
      mode: o.mode,
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? '',
      memoryGb: Math.round(totalmem() / 2 ** 30),
      loadavgAtStart: loadavg(),
      ulimitNofile: (() => {
        try {
          return execFileSync('bash', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
        } catch {
          return '?';
        }
      })(),
      options: reportedOptions,
      ...(o.contenders.includes('relay-moderated') ? { moderation: { ...MODERATION } } : {}),
      durationSec: 0,
      note: o.note,
    },
    trials: [],
    idle: [],
  };
  const stop = async () => {
    await bench.close().catch(() => undefined);
    process.exit(130);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  const has = (w: string) => o.workloads.includes(w);
  try {
    if (has('micro')) {
      log('micro-benchmark: SSE decoding, openai SDK vs server/sse.ts');
      report.micro = await bench.micro();
    }
    await bench.start();
    report.meta.relayVersion = bench.relayVersion;
    const add = (m: TrialMetrics) => {
      report.trials.push(m);
      writeFileSync(join(o.out, 'partial.tmp'), JSON.stringify(report));
    };

    // Warm the load generators' code paths (and tsx's transform cache) before anything is measured.
    if (['streams', 'fanout', 'slow', 'profile'].some(has)) {
      for (const target of ['direct', ...o.contenders] as Target[]) {
        await bench.trial({ workload: 'warmup', target, level: 50, rep: 0, rooms: 50, members: 1, seconds: 1, warmup: true });
      }
    }
    if (has('streams')) {
      for (const level of o.streams) {
        for (let rep = 1; rep <= o.reps; rep++) {
          if (rep <= o.directReps) {
            add(await bench.trial({ workload: 'streams', target: 'direct', level, rep, rooms: level, members: 1, seconds: o.directSeconds }));
          }
          for (const target of o.contenders) {
            add(await bench.trial({ workload: 'streams', target, level, rep, rooms: level, members: 1, seconds: o.streamSeconds }));
          }
        }
      }
    }
    if (has('fanout')) {
      for (const rooms of o.fanoutRooms) {
        for (let rep = 1; rep <= o.reps; rep++) {
          for (const target of o.contenders) {
            add(await bench.trial({ workload: 'fanout', target, level: rooms, rep, rooms, members: o.roomSize, seconds: o.fanoutSeconds }));
          }
        }
      }
    }
    if (has('idle')) {
      // Idle sockets never send a message, so moderation never runs: relay-moderated would repeat relay's figures.
      const idlers = o.contenders.filter((t) => t !== 'relay-moderated');
      if (idlers.length < o.contenders.length) log('idle: relay-moderated left out (idle sockets send nothing, so nothing is moderated: the same process as relay)');
      for (let rep = 1; rep <= o.idleReps; rep++) {
        for (const target of idlers) report.idle.push(...(await bench.idle(target, rep)));
      }
    }
    if (has('slow')) {
      for (let rep = 1; rep <= o.slowReps; rep++) {
        for (const target of o.contenders) {
          add(
            await bench.trial({ workload: 'slow', target, level: o.slowRooms, rep, rooms: o.slowRooms, members: o.roomSize, seconds: o.slowSeconds, slow: true }),
          );
        }
      }
    }
    if (has('profile') && o.contenders.includes('relay')) {
      const what =
        o.profileWorkload === 'slow'
          ? `the slow-consumer test (${o.slowRooms} rooms of ${o.roomSize}, ${o.slowPad}-byte tokens, one member paused)`
          : `${o.profileStreams} concurrent streams`;
      log(`profile: relay under ${what} with --cpu-prof`);
      const prof = await bench.profile();
      if (prof) {
        report.profile = { level: o.profileStreams, seconds: o.profileSeconds, summary: prof.summary, trial: prof.trial };
        const md = profileMarkdown(prof.summary, `CPU profile of the relay under ${what}`, [
          `Run ${report.meta.date} (${o.mode} mode), \`node --cpu-prof\` started by bench/run.ts, relay = \`server/main.ts\`.`,
          o.profileWorkload === 'slow'
            ? `Workload: the slow-consumer test, replies of ${o.slowSeconds} s at ${o.pace} tokens/s.`
            : `Workload: ${o.profileStreams} concurrent 1:1 streams at ${o.pace} tokens/s, ${o.profileSeconds} s each, started over ${o.rampMs} ms.`,
          `During the profiled trial: ${fmt(prof.trial.tokensPerSec / 1000)}k tokens/s delivered, relay CPU ${fmt(prof.trial.serverCpuPct, 0)} %, ` +
            `added latency p50 ${fmt(prof.trial.latencyP50, 2)} ms / p99 ${fmt(prof.trial.latencyP99, 1)} ms (profiler overhead included).`,
          'Only samples from the measured window (first send → last reply end) are counted: start-up, connecting and shutdown are left out.',
        ]);
        writeFileSync(join(o.out, o.profileWorkload === 'slow' ? 'profile-relay-slow.md' : 'profile-relay.md'), md);
      }
    }
  } finally {
    await bench.close();
  }
  report.meta.durationSec = (now() - started) / 1000;
  report.meta.loadavgAtEnd = loadavg();
  const md = renderMarkdown(report);
  const json = JSON.stringify(report, null, 1);
  writeFileSync(join(o.out, 'latest.json'), json);
  writeFileSync(join(o.out, 'latest.md'), md);
  writeFileSync(join(o.out, `${o.mode}.json`), json);
  writeFileSync(join(o.out, `${o.mode}.md`), md);
  rmSync(join(o.out, 'partial.tmp'), { force: true });
  if (!o.keep) rmSync(bench.work, { recursive: true, force: true });
  log(`done in ${fmt(report.meta.durationSec / 60, 1)} min: ${join(o.out, 'latest.md')}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}

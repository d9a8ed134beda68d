// A bench run's raw trials and what they add up to: medians per contender and
// level, ratios, the highest level each contender holds within the p99 bound.
// bench/report-markdown.ts renders it.
import { CONTENDERS, median, type Target } from './common.js';
import type { ProfileSummary } from './cpuprofile.js';
import type { MicroCase } from './sse-micro.js';

export interface TrialMetrics {
  workload: string;
  target: Target;
  level: number;
  rep: number;
  phase?: string;
  rooms: number;
  members: number;
  tokensPerStream: number;
  /** The measured window on CLOCK_MONOTONIC, ms (first send → last reply end). */
  windowStartMs: number;
  windowEndMs: number;
  windowSec: number;
  tokens: number;
  expectedTokens: number;
  deliveredPct: number;
  frames: number;
  tokensPerSec: number;
  framesPerSec: number;
  latencyP50: number | undefined;
  latencyP99: number | undefined;
  latencyMax: number | undefined;
  /**
   * Added latency of tokens received in steady state: from 2 s after the last stream started until
   * the first reply ends. The whole-trial figures also hold the start burst (every stream opening
   * within the ramp), which costs a relay far more per stream than relaying a token.
   */
  steadyP50?: number | undefined;
  steadyP99?: number | undefined;
  ttftP50: number | undefined;
  ttftP99: number | undefined;
  serverCpuSec?: number;
  serverCpuPct?: number;
  tokensPerCpuSec?: number | undefined;
  framesPerCpuSec?: number | undefined;
  rssMaxMb?: number;
  /** Heap still used after the window and two forced full GCs: what the contender keeps. */
  heapEndMb?: number | undefined;
  elu?: number | undefined;
  upstreamCpuPct: number | undefined;
  loadgenCpuPct: number | undefined;
  /** Whole machine, in % of one core. */
  machineBusyPct: number | undefined;
  /** CPU used by processes outside the bench during the window (other work on the machine), % of one core. */
  foreignCpuPct: number | undefined;
  upstreamTickLateMaxMs: number | undefined;
  upstreamTickWorkMeanMs: number | undefined;
  upstreamTicksSkipped: number | undefined;
  /** relay-moderated only: `POST /v1/moderations` the upstream answered during the window, and per reply (one reply per room). */
  moderationChecks?: number;
  moderationChecksPerReply?: number;
  /** From the relay's own metrics over the window: window checks per reply, checks that failed or flagged, */
  moderationWindowChecksPerReply?: number;
  moderationFailed?: number;
  moderationFlagged?: number;
  /** the mean round trip of a check as the relay saw it, and how long a buffered piece was held back on average. */
  moderationCheckMeanMs?: number;
  moderationHeldMeanMs?: number;
  errors: number;
  closedEarly: number;
  roomsTimedOut: number;
  firstError?: string;
  rssSeries?: Array<[number, number]>;
  slow?: {
    pauseAtSec: number;
    padBytes: number;
    frames: number;
    tokens: number;
    /** Read after the trial, when the slow member resumed: what the server had kept for it. */
    framesAfter: number;
    tokensAfter: number;
    bytesAfter?: number;
    closeCode: number | undefined;
    /** The other members' latency while the slow one still read, and after it stopped. */
    readingP50: number | undefined;
    readingP99: number | undefined;
    pausedP50: number | undefined;
    pausedP99: number | undefined;
    rssAtPauseMb: number | undefined;
  };
  wallSec: number;
}

export interface IdleMetrics {
  target: string;
  rep: number;
  level: number;
  open: number;
  errors: number;
  firstError?: string | undefined;
  connectSec: number;
  rssMb: number;
  baseRssMb: number;
  rssPerConnKb: number | undefined;
  heapUsedMb: number | undefined;
  heapPerConnKb: number | undefined;
  idleCpuPct: number | undefined;
}

type IdleNumKey = Exclude<keyof IdleMetrics, 'target' | 'firstError' | 'level' | 'rep'>;

export interface BenchReport {
  meta: {
    mode: string;
    date: string;
    node: string;
    cpus: number;
    cpuModel: string;
    memoryGb: number;
    loadavgAtStart: number[];
    loadavgAtEnd?: number[];
    ulimitNofile: string;
    options: {
      reps: number;
      streamSeconds: number;
      directSeconds: number;
      fanoutSeconds: number;
      roomSize: number;
      slowRooms: number;
      slowSeconds: number;
      slowReps: number;
      slowPad: number;
      idleReps: number;
      directReps: number;
      loadgens: number;
      rampMs: number;
      /** Absent in reports from before it was an option, which warmed with 16. */
      warmReplies?: number;
      sloMs: number;
      pace: number;
      contenders: string[];
      relayLogLevel: string;
    };
    durationSec: number;
    note: string;
    /** relay-moderated's moderation settings, in runs that had it. */
    moderation?: { mode: string; windowTokens: number; stepTokens: number };
    /** The relay code every relay process of the run executed (copied at the start). */
    relayVersion?: { commit: string; dirty: string[]; sha256: string };
  };
  trials: TrialMetrics[];
  idle: IdleMetrics[];
  micro?: MicroCase[] | undefined;
  profile?: { level: number; seconds: number; summary: ProfileSummary; trial?: TrialMetrics };
  /** Filled in by summarize(): medians and ratios. */
  summary?: Summary;
}

type NumKey = {
  [K in keyof TrialMetrics]-?: TrialMetrics[K] extends number | undefined ? K : never;
}[keyof TrialMetrics];

export type Medians = Partial<Record<NumKey, number>> & { target: Target; level: number; phase?: string; reps: number; errors: number };

export interface Held {
  level: number;
  tokensPerSec: number;
  streamsAtSlo?: number;
}

/** One level's ratios. Tps: tokens/s; Eff: tokens per CPU-second (above 1: the first pays less CPU per token). */
export interface LevelRatios {
  level: number;
  relayOverFloorTps?: number;
  relayOverSocketioTps?: number;
  relayOverFloorEff?: number;
  relayOverSocketioEff?: number;
  relaySqliteOverFloorTps?: number;
  relaySqliteOverSocketioTps?: number;
  relaySqliteOverFloorEff?: number;
  relaySqliteOverSocketioEff?: number;
  /**
   * The SQLite store against the in-memory one, same code otherwise: tokens per CPU-second (below 1: SQLite
   * costs more CPU per token; the cost over memory mode is 1 ÷ this − 1) and added latency p50 / p99 (above 1: slower).
   */
  relaySqliteOverRelayEff?: number;
  relaySqliteOverRelayP50?: number;
  relaySqliteOverRelayP99?: number;
  /**
   * Buffered moderation against the same relay without it (relay-moderated ÷ relay): added latency p50 / p99 and
   * TTFT p50 (above 1: slower; also as differences in ms), tokens per CPU-second (below 1: the checks cost CPU).
   */
  relayModeratedOverRelayP50?: number;
  relayModeratedOverRelayP99?: number;
  relayModeratedOverRelayTtftP50?: number;
  relayModeratedOverRelayEff?: number;
  relayModeratedMinusRelayP50Ms?: number;
  relayModeratedMinusRelayP99Ms?: number;
  relayModeratedMinusRelayTtftP50Ms?: number;
}

type SustainedRatioKey = `${'relay' | 'relaySqlite'}Over${'Floor' | 'Socketio'}Sustained${'' | 'Steady'}`;

export interface Summary {
  streams: Medians[];
  fanout: Medians[];
  slow: Medians[];
  idle: Array<{ target: string; level: number; reps: number } & Partial<Record<IdleNumKey, number>>>;
  ratios: {
    sloMs: number;
    /** Per level: relay and relay-sqlite ÷ floor and ÷ socketio, throughput and efficiency; relay-sqlite ÷ relay; relay-moderated ÷ relay. */
    streams: LevelRatios[];
    fanout: LevelRatios[];
    /**
     * Highest streams level each contender held with p99 ≤ SLO and ≥ 99 % delivered, and its tokens/s;
     * `streamsAtSlo`: the streams at which its p99 reaches the SLO, interpolated linearly between that
     * level and the next one run (absent when it held every level).
     */
    sustained: Record<string, Held | undefined>;
    relayOverFloorSustained?: number;
    relayOverSocketioSustained?: number;
    relaySqliteOverFloorSustained?: number;
    relaySqliteOverSocketioSustained?: number;
    /** The same with the steady-state p99. */
    sustainedSteady: Record<string, Held | undefined>;
    relayOverFloorSustainedSteady?: number;
    relayOverSocketioSustainedSteady?: number;
    relaySqliteOverFloorSustainedSteady?: number;
    relaySqliteOverSocketioSustainedSteady?: number;
    p99AtTop: { level: number; byTarget: Record<string, number | undefined>; steadyByTarget?: Record<string, number | undefined> } | undefined;
  };
}

const NUM_KEYS: NumKey[] = [
  'windowSec',
  'tokens',
  'expectedTokens',
  'deliveredPct',
  'frames',
  'tokensPerSec',
  'framesPerSec',
  'latencyP50',
  'latencyP99',
  'latencyMax',
  'steadyP50',
  'steadyP99',
  'ttftP50',
  'ttftP99',
  'serverCpuSec',
  'serverCpuPct',
  'tokensPerCpuSec',
  'framesPerCpuSec',
  'rssMaxMb',
  'heapEndMb',
  'elu',
  'upstreamCpuPct',
  'loadgenCpuPct',
  'machineBusyPct',
  'foreignCpuPct',
  'upstreamTickLateMaxMs',
  'upstreamTickWorkMeanMs',
  'upstreamTicksSkipped',
  'moderationChecks',
  'moderationChecksPerReply',
  'moderationWindowChecksPerReply',
  'moderationFailed',
  'moderationFlagged',
  'moderationCheckMeanMs',
  'moderationHeldMeanMs',
  'closedEarly',
  'roomsTimedOut',
  'wallSec',
];

function mediansOf(trials: TrialMetrics[]): Medians[] {
  const groups = new Map<string, TrialMetrics[]>();
  for (const t of trials) {
    const k = `${t.level}|${t.phase ?? ''}|${t.target}`;
    groups.set(k, [...(groups.get(k) ?? []), t]);
  }
  const out: Medians[] = [];
  for (const ts of groups.values()) {
    const first = ts[0]!;
    const m: Medians = { target: first.target, level: first.level, reps: ts.length, errors: ts.reduce((n, t) => n + t.errors, 0) };
    if (first.phase) m.phase = first.phase;
    for (const k of NUM_KEYS) {
      const v = median(ts.map((t) => t[k]));
      if (v !== undefined) m[k] = v;
    }
    out.push(m);
  }
  return out;
}

const ORDER: Record<string, number> = { direct: 0, floor: 1, socketio: 2, relay: 3, 'relay-sqlite': 4, 'relay-moderated': 5 };
const byLevel = (a: { level: number; target: string; phase?: string }, b: { level: number; target: string; phase?: string }) =>
  a.level - b.level || (a.phase ?? '').localeCompare(b.phase ?? '') || (ORDER[a.target] ?? 9) - (ORDER[b.target] ?? 9);

export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
}

function minus(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined ? a - b : undefined;
}

export function summarizeReport(r: BenchReport): Summary {
  const of = (w: string) => mediansOf(r.trials.filter((t) => t.workload === w)).sort(byLevel);
  const streams = of('streams');
  const fanout = of('fanout');
  const slow = of('slow');
  const idleGroups = new Map<string, IdleMetrics[]>();
  for (const i of r.idle) idleGroups.set(`${i.level}|${i.target}`, [...(idleGroups.get(`${i.level}|${i.target}`) ?? []), i]);
  const idle = [...idleGroups.values()]
    .map((is) => {
      const row: { target: string; level: number; reps: number } & Partial<Record<IdleNumKey, number>> = {
        target: is[0]!.target,
        level: is[0]!.level,
        reps: is.length,
      };
      for (const k of ['open', 'errors', 'connectSec', 'rssMb', 'baseRssMb', 'rssPerConnKb', 'heapUsedMb', 'heapPerConnKb', 'idleCpuPct'] as const) {
        const v = median(is.map((i) => i[k]));
        if (v !== undefined) row[k] = v;
      }
      return row;
    })
    .sort(byLevel);

  const perLevel = (rows: Medians[]) =>
    [...new Set(rows.map((m) => m.level))].map((level) => {
      const get = (t: string) => rows.find((m) => m.level === level && m.target === t);
      const relay = get('relay');
      const sqlite = get('relay-sqlite');
      const moderated = get('relay-moderated');
      const floor = get('floor');
      const sio = get('socketio');
      const o: LevelRatios = { level };
      const put = (k: keyof typeof o, v: number | undefined) => {
        if (v !== undefined && k !== 'level') o[k] = v;
      };
      put('relayOverFloorTps', ratio(relay?.tokensPerSec, floor?.tokensPerSec));
      put('relayOverSocketioTps', ratio(relay?.tokensPerSec, sio?.tokensPerSec));
      put('relayOverFloorEff', ratio(relay?.tokensPerCpuSec, floor?.tokensPerCpuSec));
      put('relayOverSocketioEff', ratio(relay?.tokensPerCpuSec, sio?.tokensPerCpuSec));
      put('relaySqliteOverFloorTps', ratio(sqlite?.tokensPerSec, floor?.tokensPerSec));
      put('relaySqliteOverSocketioTps', ratio(sqlite?.tokensPerSec, sio?.tokensPerSec));
      put('relaySqliteOverFloorEff', ratio(sqlite?.tokensPerCpuSec, floor?.tokensPerCpuSec));
      put('relaySqliteOverSocketioEff', ratio(sqlite?.tokensPerCpuSec, sio?.tokensPerCpuSec));
      // What the durable store adds per token: both run the same relay code, so the gap is the store's.
      put('relaySqliteOverRelayEff', ratio(sqlite?.tokensPerCpuSec, relay?.tokensPerCpuSec));
      put('relaySqliteOverRelayP50', ratio(sqlite?.latencyP50, relay?.latencyP50));
      put('relaySqliteOverRelayP99', ratio(sqlite?.latencyP99, relay?.latencyP99));
      // What buffered moderation adds: the same relay code and store, its replies held until a window check passes.
      put('relayModeratedOverRelayP50', ratio(moderated?.latencyP50, relay?.latencyP50));
      put('relayModeratedOverRelayP99', ratio(moderated?.latencyP99, relay?.latencyP99));
      put('relayModeratedOverRelayTtftP50', ratio(moderated?.ttftP50, relay?.ttftP50));
      put('relayModeratedOverRelayEff', ratio(moderated?.tokensPerCpuSec, relay?.tokensPerCpuSec));
      put('relayModeratedMinusRelayP50Ms', minus(moderated?.latencyP50, relay?.latencyP50));
      put('relayModeratedMinusRelayP99Ms', minus(moderated?.latencyP99, relay?.latencyP99));
      put('relayModeratedMinusRelayTtftP50Ms', minus(moderated?.ttftP50, relay?.ttftP50));
      return o;
    });

  const slo = r.meta.options.sloMs;
  const heldAt = (p99: (m: Medians) => number | undefined): Summary['ratios']['sustained'] => {
    const out: Summary['ratios']['sustained'] = {};
    for (const t of CONTENDERS) {
      const mine = streams.filter((m) => m.target === t).sort((a, b) => a.level - b.level);
      const held = mine.filter((m) => (p99(m) ?? Infinity) <= slo && (m.deliveredPct ?? 0) >= 99).at(-1);
      if (!held) continue;
      out[t] = { level: held.level, tokensPerSec: held.tokensPerSec ?? 0 };
      // The ladder is coarse (each level doubles): where between it and the next level the p99 crosses the SLO.
      const next = mine.find((m) => m.level > held.level);
      const [pa, pb] = [p99(held), next && p99(next)];
      if (next && pa !== undefined && pb !== undefined && pb > pa) {
        out[t].streamsAtSlo = held.level + ((slo - pa) / (pb - pa)) * (next.level - held.level);
      }
    }
    return out;
  };
  const sustained = heldAt((m) => m.latencyP99);
  const sustainedSteady = heldAt((m) => m.steadyP99);
  const levels = [...new Set(streams.map((m) => m.level))].sort((a, b) => a - b);
  const top = levels.includes(2000) ? 2000 : levels.at(-1);
  const atTop = streams.filter((m) => m.level === top);
  const p99AtTop =
    top === undefined
      ? undefined
      : {
          level: top,
          byTarget: Object.fromEntries(atTop.map((m) => [m.target, m.latencyP99])) as Record<string, number | undefined>,
          steadyByTarget: Object.fromEntries(atTop.map((m) => [m.target, m.steadyP99])) as Record<string, number | undefined>,
        };
  const ratios: Summary['ratios'] = { sloMs: slo, streams: perLevel(streams), fanout: perLevel(fanout), sustained, sustainedSteady, p99AtTop };
  const put = (key: SustainedRatioKey, v: number | undefined) => {
    if (v !== undefined) ratios[key] = v;
  };
  put('relayOverFloorSustained', ratio(sustained.relay?.tokensPerSec, sustained.floor?.tokensPerSec));
  put('relayOverSocketioSustained', ratio(sustained.relay?.tokensPerSec, sustained.socketio?.tokensPerSec));
  put('relayOverFloorSustainedSteady', ratio(sustainedSteady.relay?.tokensPerSec, sustainedSteady.floor?.tokensPerSec));
  put('relayOverSocketioSustainedSteady', ratio(sustainedSteady.relay?.tokensPerSec, sustainedSteady.socketio?.tokensPerSec));
  put('relaySqliteOverFloorSustained', ratio(sustained['relay-sqlite']?.tokensPerSec, sustained.floor?.tokensPerSec));
  put('relaySqliteOverSocketioSustained', ratio(sustained['relay-sqlite']?.tokensPerSec, sustained.socketio?.tokensPerSec));
  put('relaySqliteOverFloorSustainedSteady', ratio(sustainedSteady['relay-sqlite']?.tokensPerSec, sustainedSteady.floor?.tokensPerSec));
  put('relaySqliteOverSocketioSustainedSteady', ratio(sustainedSteady['relay-sqlite']?.tokensPerSec, sustainedSteady.socketio?.tokensPerSec));
  return { streams, fanout, slow, idle, ratios };
}

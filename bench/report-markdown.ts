// The Markdown report of a bench run (bench/results/latest.md): tables of the
// medians and ratios from bench/report.ts, with the method beside them.
import { CONTENDERS, median } from './common.js';
import { ratio, summarizeReport, type BenchReport, type LevelRatios, type Medians, type Summary, type TrialMetrics } from './report.js';
import { microMarkdown } from './sse-micro.js';

const f = (x: number | undefined, d = 1): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const k = (x: number | undefined): string => (x === undefined ? '–' : x >= 10_000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0));
const x2 = (x: number | undefined): string => (x === undefined ? '–' : `${x.toFixed(2)}×`);
const lat = (x: number | undefined): string => (x === undefined ? '–' : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));

function label(t: string, r: BenchReport): string {
  return t === 'direct' ? `direct SDK (no relay, ${r.meta.options.directSeconds} s streams)` : t;
}

function streamTable(rows: Medians[], r: BenchReport, unit: string, receivers: (m: Medians) => string): string[] {
  const direct = new Map(rows.filter((m) => m.target === 'direct').map((m) => [m.level, m]));
  const out = [
    `| ${unit} | contender | tokens/s | frames/s | added latency p50 / p99 ms | steady p50 / p99 ms | TTFT p50 / p99 ms | TTFT over direct SDK, p50 ms | server CPU % | tokens per CPU-s | frames per CPU-s | RSS max MB | heap kept MB | delivered |`,
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const m of rows) {
    const d = direct.get(m.level);
    const over = m.target !== 'direct' && d?.ttftP50 !== undefined && m.ttftP50 !== undefined ? m.ttftP50 - d.ttftP50 : undefined;
    // When the SDK client in the load generator is itself past its limit, the baseline says little.
    const dagger = d && (d.latencyP99 ?? 0) > r.meta.options.sloMs ? ' †' : '';
    out.push(
      `| ${receivers(m)} | ${label(m.target, r)} | ${k(m.tokensPerSec)} | ${k(m.framesPerSec)} | ${lat(m.latencyP50)} / ${lat(m.latencyP99)} | ${lat(m.steadyP50)} / ${lat(m.steadyP99)} | ` +
        `${lat(m.ttftP50)} / ${lat(m.ttftP99)} | ${over === undefined ? '–' : `${over >= 0 ? '+' : ''}${lat(over)}${dagger}`} | ${f(m.serverCpuPct, 0)} | ` +
        `${k(m.tokensPerCpuSec)} | ${k(m.framesPerCpuSec)} | ${f(m.rssMaxMb, 0)} | ${f(m.heapEndMb, 0)} | ${f(m.deliveredPct, 1)} %${m.errors ? ` (${m.errors} errors)` : ''} |`,
    );
  }
  return out;
}

/** relay-sqlite ÷ relay in tokens per CPU-second, read as CPU per token over memory mode: 0.87× → "+14.9 %". */
function costOverMemory(eff: number | undefined): string {
  if (eff === undefined) return '–';
  const pct = (1 / eff - 1) * 100;
  return `${pct >= 0 ? '+' : ''}${pct.toFixed(1)} %`;
}

/**
 * relay-sqlite ÷ relay per streams level: the same relay code on its two stores, so the gap is what the
 * durable store costs. CPU per token is the figure with a target (within 15 % of memory mode).
 */
function sqliteOverMemory(s: Summary): string[] {
  const out = [
    '**SQLite store against memory** (relay-sqlite ÷ relay: the same relay, its state in SQLite under a fresh DATA_DIR instead of in memory). ' +
      '"Per-token CPU over memory mode" = relay\'s tokens per CPU-s ÷ relay-sqlite\'s − 1; the target is at most +15 %. Latency ratios above 1.00× mean SQLite is slower.',
    '',
    '| streams | tokens per CPU-s relay · relay-sqlite | relay-sqlite ÷ relay per CPU-s | per-token CPU over memory mode | added latency p50 ms relay · relay-sqlite | relay-sqlite ÷ relay p50 | p99 ms relay · relay-sqlite | relay-sqlite ÷ relay p99 |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const rr of s.ratios.streams) {
    const g = (t: string) => s.streams.find((m) => m.level === rr.level && m.target === t);
    const [re, sq] = [g('relay'), g('relay-sqlite')];
    out.push(
      `| ${rr.level} | ${k(re?.tokensPerCpuSec)} · ${k(sq?.tokensPerCpuSec)} | ${x2(rr.relaySqliteOverRelayEff)} | ${costOverMemory(rr.relaySqliteOverRelayEff)} | ` +
        `${lat(re?.latencyP50)} · ${lat(sq?.latencyP50)} | ${x2(rr.relaySqliteOverRelayP50)} | ${lat(re?.latencyP99)} · ${lat(sq?.latencyP99)} | ${x2(rr.relaySqliteOverRelayP99)} |`,
    );
  }
  return out;
}

/**
 * What buffering costs by design, before any check's round trip: a reply of `n` pieces arriving at `pace` per second,
 * checked every `step` pieces and once more whole at its end; each piece waits for the next check that covers it.
 * The median and p99 of that wait over the pieces of a reply, in ms.
 */
export function designHold(n: number, step: number, pace: number): { p50: number; p99: number } | undefined {
  if (!(n >= 1 && step >= 1 && pace > 0)) return undefined;
  const waits = Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    return ((Math.min(Math.ceil(i / step) * step, n) - i) * 1000) / pace;
  }).sort((a, b) => a - b);
  const at = (p: number) => waits[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
  return { p50: at(50), p99: at(99) };
}

/**
 * relay-moderated ÷ relay per level: the same relay on its memory store, with buffered moderation or without, so the
 * gap is what holding replies until their window passes costs in latency, and what the checks cost in CPU.
 */
function moderationAgainstRelay(
  r: BenchReport,
  workload: 'streams' | 'fanout',
  rows: Medians[],
  ratios: LevelRatios[],
  unit: string,
  cell: (level: number) => string,
  seconds: number,
): string[] {
  const o = r.meta.options;
  const mod = r.meta.moderation;
  const step = mod?.stepTokens;
  const hold = step ? designHold(Math.max(1, Math.round(seconds * o.pace)), step, o.pace) : undefined;
  const diff = (x: number | undefined) => (x === undefined ? '–' : `${x >= 0 ? '+' : ''}${lat(x)}`);
  const out = [
    `| ${unit} | added latency p50 ms relay · relay-moderated | relay-moderated ÷ relay p50 | p50 difference ms | p99 ms relay · relay-moderated | relay-moderated ÷ relay p99 | p99 difference ms | ` +
      'TTFT p50 ms relay · relay-moderated | relay-moderated ÷ relay TTFT | TTFT difference ms | tokens per CPU-s relay · relay-moderated | relay-moderated ÷ relay per CPU-s | ' +
      'per-token CPU over relay | checks per reply (windows) | held mean ms | check round trip mean ms |',
    `|${' ---: |'.repeat(16)}`,
  ];
  for (const rr of ratios) {
    const g = (t: string) => rows.find((m) => m.level === rr.level && m.target === t);
    const [re, mo] = [g('relay'), g('relay-moderated')];
    if (!re && !mo) continue;
    out.push(
      `| ${cell(rr.level)} | ${lat(re?.latencyP50)} · ${lat(mo?.latencyP50)} | ${x2(rr.relayModeratedOverRelayP50)} | ${diff(rr.relayModeratedMinusRelayP50Ms)} | ` +
        `${lat(re?.latencyP99)} · ${lat(mo?.latencyP99)} | ${x2(rr.relayModeratedOverRelayP99)} | ${diff(rr.relayModeratedMinusRelayP99Ms)} | ` +
        `${lat(re?.ttftP50)} · ${lat(mo?.ttftP50)} | ${x2(rr.relayModeratedOverRelayTtftP50)} | ${diff(rr.relayModeratedMinusRelayTtftP50Ms)} | ` +
        `${k(re?.tokensPerCpuSec)} · ${k(mo?.tokensPerCpuSec)} | ${x2(rr.relayModeratedOverRelayEff)} | ${costOverMemory(rr.relayModeratedOverRelayEff)} | ` +
        `${f(mo?.moderationChecksPerReply, 2)} (${f(mo?.moderationWindowChecksPerReply, 2)}) | ${lat(mo?.moderationHeldMeanMs)} | ${lat(mo?.moderationCheckMeanMs)} |`,
    );
  }
  const failed = r.trials.filter(
    (t) => t.workload === workload && t.target === 'relay-moderated' && ((t.moderationFailed ?? 0) > 0 || (t.moderationFlagged ?? 0) > 0),
  );
  if (failed.length) {
    out.push(
      '',
      `Trials with checks that failed (timed out or errored: the relay let that text through, failing open) or flagged: ${failed
        .map((t) => `${t.level} rep ${t.rep}: ${t.moderationFailed ?? 0} failed, ${t.moderationFlagged ?? 0} flagged`)
        .join('; ')}. Those did not measure only what the table's heading says.`,
    );
  }
  if (hold) {
    out.push(
      '',
      `By design, before any check's round trip, a piece of these ${Math.round(seconds * o.pace)}-piece replies waits for the check that covers it: ` +
        `p50 ${lat(hold.p50)} ms, p99 ${lat(hold.p99)} ms (a check every ${step} pieces at ${o.pace} tokens/s; the pieces after the last step wait for the whole-reply check at the end). ` +
        'What the measured differences add beyond that is the checks\' round trips and the relay\'s work around them, and the bursts: a passed window lets up to ' +
        `${step} held pieces out at once.`,
    );
  }
  return out;
}

function moderationIntro(r: BenchReport): string {
  const mod = r.meta.moderation;
  const how = mod ? `MODERATION_MODE=${mod.mode}, window ${mod.windowTokens} / step ${mod.stepTokens} pieces` : 'buffered moderation';
  return (
    `**Moderation, buffered, against relay** (relay-moderated ÷ relay: the same relay on its memory store with ${how}, checked against the bench upstream's ` +
    '`POST /v1/moderations`, which answers at once and never flags — a fast moderation service on loopback, so these figures are the relay\'s side of moderation, not a provider\'s round trip). ' +
    'A reply\'s pieces are held until a check of a window covering them has passed, so most of the added latency is the wait for the rest of a step; the relay alone adds a few ms, which makes the latency ratios large: ' +
    'the differences in ms are the figures to read. "Per-token CPU over relay" = relay\'s tokens per CPU-s ÷ relay-moderated\'s − 1 (the checks\' cost: building, sending and reading them). ' +
    '"Checks per reply" = moderation requests the upstream answered in the window ÷ replies (one for the user message, one per window, one for the whole reply); "held mean" and "check round trip" come from the relay\'s own metrics ' +
    '(`relay_moderation_held_seconds`, `relay_moderation_check_seconds`) over the same window. Latency ratios above 1.00× mean moderated is slower.'
  );
}

export function renderMarkdown(r: BenchReport): string {
  const s = (r.summary = summarizeReport(r));
  const o = r.meta.options;
  const L: string[] = [];
  L.push(`# chat-relay benchmark — ${r.meta.mode} run`);
  L.push('');
  L.push(
    `${r.meta.date} · Node ${r.meta.node} · ${r.meta.cpus} × ${r.meta.cpuModel} · ${r.meta.memoryGb} GB · ulimit -n ${r.meta.ulimitNofile} · ` +
      `took ${f(r.meta.durationSec / 60, 1)} min · load average at start ${r.meta.loadavgAtStart.map((x) => x.toFixed(2)).join(' / ')}` +
      (r.meta.loadavgAtEnd ? `, at end ${r.meta.loadavgAtEnd.map((x) => x.toFixed(2)).join(' / ')}` : ''),
  );
  const v = r.meta.relayVersion;
  if (v) {
    L.push(
      '',
      `Relay code: commit \`${v.commit}\`${v.dirty.length ? ` plus uncommitted changes to ${v.dirty.map((d) => `\`${d.slice(3)}\``).join(', ')}` : ''} ` +
        `(server/ + shared/ sha256 \`${v.sha256}\`), copied when the run started so that every relay process ran the same code.`,
    );
  }
  if (r.meta.note) L.push('', `> ${r.meta.note}`);
  L.push('');
  L.push(
    `Medians of ${o.reps} alternating repetition${o.reps > 1 ? 's' : ''} (${[...o.contenders, o.contenders[0]].join(', ')}, …); every contender is a fresh process per trial, ` +
      `warmed with ${o.warmReplies ?? 16} short replies before its window, ` +
      `fed by one local upstream (bench/upstream.ts) pacing ${o.pace} tokens/s per stream with one shared ticker, each token stamped with its send time. ` +
      `Added latency = upstream send → load-generator receive, per token. Throughput = tokens (frames) received by all clients ÷ the window from the first send to the last reply end (start ramp ${o.rampMs} ms included). ` +
      `Server CPU = utime+stime of the contender process from /proc over that window; "per CPU-s" divides by it. ${o.loadgens} load generator process(es).`,
  );
  L.push('');

  // ---------------------------------------------------------------- headline
  const ratios = s.ratios;
  L.push('## Headline');
  L.push('');
  const sLevels = [...new Set(s.streams.map((m) => m.level))];
  // relay-sqlite gets columns only in runs that had it: older reports render as they did.
  const sqlite = s.streams.some((m) => m.target === 'relay-sqlite');
  const shown = ['floor', 'socketio', 'relay', ...(sqlite ? ['relay-sqlite'] : [])];
  const names = shown.join(' · ');
  if (sLevels.length) {
    const sq = (cells: string) => (sqlite ? cells : '');
    L.push(
      `| streams | tokens/s ${names} | relay ÷ floor | relay ÷ socketio |${sq(' relay-sqlite ÷ floor | relay-sqlite ÷ socketio |')} p99 ms ${names} | steady p99 ms ${names} | ` +
        `server CPU % ${names} | tokens per CPU-s ${names} | relay ÷ floor per CPU-s | relay ÷ socketio per CPU-s |${sq(' relay-sqlite ÷ floor per CPU-s | relay-sqlite ÷ socketio per CPU-s |')}`,
    );
    L.push(`|${' ---: |'.repeat(sqlite ? 14 : 10)}`);
    for (const level of sLevels) {
      const g = (t: string) => s.streams.find((m) => m.level === level && m.target === t);
      const cells = (cell: (m: Medians | undefined) => string) => shown.map((t) => cell(g(t))).join(' · ');
      const rr = ratios.streams.find((x) => x.level === level);
      L.push(
        `| ${level} | ${cells((m) => k(m?.tokensPerSec))} | ${x2(rr?.relayOverFloorTps)} | ${x2(rr?.relayOverSocketioTps)} |${sq(` ${x2(rr?.relaySqliteOverFloorTps)} | ${x2(rr?.relaySqliteOverSocketioTps)} |`)} ` +
          `${cells((m) => lat(m?.latencyP99))} | ${cells((m) => lat(m?.steadyP99))} | ${cells((m) => f(m?.serverCpuPct, 0))} | ` +
          `${cells((m) => k(m?.tokensPerCpuSec))} | ${x2(rr?.relayOverFloorEff)} | ${x2(rr?.relayOverSocketioEff)} |${sq(` ${x2(rr?.relaySqliteOverFloorEff)} | ${x2(rr?.relaySqliteOverSocketioEff)} |`)}`,
      );
    }
    L.push('');
    const sus = (t: string, held = ratios.sustained) => {
      const v = held[t];
      return v ? `${v.level} streams (${k(v.tokensPerSec)} tokens/s)` : `none of the levels run`;
    };
    const each = (cell: (t: string) => string) => shown.map((t) => `${t} ${cell(t)}`).join(', ');
    const sqliteRatios = (overFloor: number | undefined, overSocketio: number | undefined) =>
      sqlite ? `, relay-sqlite ÷ floor **${x2(overFloor)}**, relay-sqlite ÷ socketio **${x2(overSocketio)}**` : '';
    L.push(`- **Throughput at the same p99** (highest streams level with added-latency p99 ≤ ${ratios.sloMs} ms and ≥ 99 % of tokens delivered): ` +
      `${each((t) => sus(t))}; ` +
      `relay ÷ floor **${x2(ratios.relayOverFloorSustained)}**, relay ÷ socketio **${x2(ratios.relayOverSocketioSustained)}**` +
      `${sqliteRatios(ratios.relaySqliteOverFloorSustained, ratios.relaySqliteOverSocketioSustained)}. ` +
      'Below saturation every contender delivers the offered load, so tokens/s ratios sit at 1.00× and the per-CPU-second columns are what tell them apart.');
    const crossing = (label: string, held: Summary['ratios']['sustained']) => {
      const at = (t: string) => held[t]?.streamsAtSlo;
      const where = (t: string) => {
        const h = held[t];
        if (h?.streamsAtSlo !== undefined) return f(h.streamsAtSlo, 0);
        return h ? `≥ ${h.level} (held every level run)` : 'none';
      };
      const r = ratio(at('relay'), at('socketio'));
      const rs = ratio(at('relay-sqlite'), at('socketio'));
      if (r === undefined && rs === undefined) return;
      L.push(`- **Streams at p99 = ${ratios.sloMs} ms, ${label}** (interpolated linearly between the two levels around it, which understates both where p99 curves upward): ` +
        `${each(where)}; relay ÷ socketio **${x2(r)}**${sqlite ? `, relay-sqlite ÷ socketio **${x2(rs)}**` : ''}.`);
    };
    crossing('whole trial', ratios.sustained);
    if (ratios.sustainedSteady) {
      const held = ratios.sustainedSteady;
      L.push(`- **The same in steady state** (steady p99 ≤ ${ratios.sloMs} ms: tokens from 2 s after the last stream opened, so the start burst is left out): ` +
        `${each((t) => sus(t, held))}; ` +
        `relay ÷ floor **${x2(ratios.relayOverFloorSustainedSteady)}**, relay ÷ socketio **${x2(ratios.relayOverSocketioSustainedSteady)}**` +
        `${sqliteRatios(ratios.relaySqliteOverFloorSustainedSteady, ratios.relaySqliteOverSocketioSustainedSteady)}.`);
      crossing('steady state', held);
    }
    if (ratios.p99AtTop) {
      const p = ratios.p99AtTop;
      const steady = p.steadyByTarget ? `; steady state: ${Object.entries(p.steadyByTarget).map(([t, v]) => `${t} ${lat(v)} ms`).join(', ')}` : '';
      L.push(`- **Added latency p99 at ${p.level} streams**: ${Object.entries(p.byTarget).map(([t, v]) => `${t} ${lat(v)} ms`).join(', ')}${steady}.`);
    }
    L.push('');
    if (sqlite) L.push(...sqliteOverMemory(s), '');
    // Only in runs that had relay-moderated: older reports render as they did.
    if (s.streams.some((m) => m.target === 'relay-moderated')) {
      L.push(moderationIntro(r), '', ...moderationAgainstRelay(r, 'streams', s.streams, ratios.streams, 'streams', String, o.streamSeconds), '');
    }
  }

  // ---------------------------------------------------------------- streams
  if (s.streams.length) {
    L.push(`## Streams: 1:1 conversations, ${o.streamSeconds} s each at ${o.pace} tokens/s`);
    L.push('');
    L.push(...streamTable(s.streams, r, 'streams', (m) => String(m.level)));
    L.push('');
    L.push(
      'TTFT is measured from the client writing its request to the first token arriving; "over direct SDK" subtracts the TTFT of the openai SDK reading the ' +
        'same upstream with no relay at the same concurrency (short streams; its load-generator cost is part of both). ' +
        `† the direct SDK client's own p99 was over ${o.sloMs} ms at that level: the load generator, not a relay, was the bottleneck, so that baseline is inflated.`,
    );
    L.push('');
  }
  if (s.fanout.length) {
    L.push(`## Fan-out: rooms of ${o.roomSize} (1 sender, ${o.roomSize - 1} members already joined), ${o.fanoutSeconds} s replies`);
    L.push('');
    L.push(...streamTable(s.fanout, r, 'rooms (receivers)', (m) => `${m.level} (${m.level * o.roomSize})`));
    L.push('');
    if (ratios.fanout.length) {
      const fanoutSqlite = s.fanout.some((m) => m.target === 'relay-sqlite');
      L.push(
        ratios.fanout
          .map((x) => `${x.level} rooms: relay ÷ floor ${x2(x.relayOverFloorTps)} tokens/s, ${x2(x.relayOverFloorEff)} per CPU-s; relay ÷ socketio ${x2(x.relayOverSocketioTps)}, ${x2(x.relayOverSocketioEff)} per CPU-s` +
            (!fanoutSqlite
              ? ''
              : `; relay-sqlite ÷ floor ${x2(x.relaySqliteOverFloorTps)}, ${x2(x.relaySqliteOverFloorEff)} per CPU-s; relay-sqlite ÷ socketio ${x2(x.relaySqliteOverSocketioTps)}, ${x2(x.relaySqliteOverSocketioEff)} per CPU-s; relay-sqlite ÷ relay ${x2(x.relaySqliteOverRelayEff)} per CPU-s`))
          .map((line) => `- ${line}`)
          .join('\n'),
      );
      L.push('');
    }
    if (s.fanout.some((m) => m.target === 'relay-moderated')) {
      L.push(
        `Moderation, buffered, against relay in fan-out (as in the Headline's table; a room's one reply is checked once, whatever its ${o.roomSize} members; latency and TTFT over every member):`,
        '',
        ...moderationAgainstRelay(r, 'fanout', s.fanout, ratios.fanout, 'rooms (receivers)', (level) => `${level} (${level * o.roomSize})`, o.fanoutSeconds),
        '',
      );
    }
  }

  // ---------------------------------------------------------------- idle
  if (s.idle.length) {
    L.push('## Idle sockets');
    L.push('');
    L.push('Each contender ramps one process through the levels (relay sockets have done `hello`; socket.io ones are connected on the websocket transport). Memory after two forced full GCs (`--expose-gc` via NODE_OPTIONS, read by bench/probe.mjs); per-socket figures subtract the process before any socket.');
    L.push('');
    L.push('| sockets | contender | open | RSS MB | RSS per socket KB | heap used MB | heap per socket KB | idle CPU % | connect time s |');
    L.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const i of s.idle) {
      L.push(
        `| ${i.level} | ${i.target} | ${f(i.open, 0)} | ${f(i.rssMb, 0)} | ${f(i.rssPerConnKb, 1)} | ${f(i.heapUsedMb, 0)} | ${f(i.heapPerConnKb, 1)} | ${f(i.idleCpuPct, 1)} | ${f(i.connectSec, 1)} |`,
      );
    }
    L.push('');
  }

  // ---------------------------------------------------------------- slow consumer
  const slowTrials = r.trials.filter((t) => t.workload === 'slow' && t.slow);
  if (slowTrials.length) {
    const st = slowTrials[0]!.slow!;
    L.push(`## Slow consumer: ${o.slowRooms} fan-out rooms of ${o.roomSize}, plus one member in all ${o.slowRooms} rooms that stops reading`);
    L.push('');
    L.push(
      `Replies of ${o.slowSeconds} s; each token padded to ~${st.padBytes} bytes (upstream \`[pad=N]\`) so the slow member falls megabytes behind within seconds. ` +
        `At ${st.pauseAtSec.toFixed(1)} s the slow member's socket is \`pause()\`d and never read again. "reading" = the other members' latency from ${(o.rampMs / 1000 + 0.5).toFixed(1)} s until the pause; ` +
        '"paused" = from 1 s after the pause until just before the first reply ends, in the same trial. RSS is sampled every 250 ms. Loopback kernel buffers absorb about 4 MB of a paused socket before the server sees any backlog.' +
        (o.slowReps > 1 ? ` Medians of ${o.slowReps} repetitions.` : ' One repetition (see --slow-reps).'),
    );
    L.push('');
    L.push('| contender | others p50 / p99 ms, reading | others p50 / p99 ms, paused | p99 change | others p99 ms, whole trial | RSS MB at pause → max → end | slow member |');
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const t of CONTENDERS) {
      const ts = slowTrials.filter((x) => x.target === t);
      if (!ts.length) continue;
      const med = (g: (x: TrialMetrics) => number | undefined) => median(ts.map(g));
      const a50 = med((x) => x.slow?.readingP50);
      const a99 = med((x) => x.slow?.readingP99);
      const b50 = med((x) => x.slow?.pausedP50);
      const b99 = med((x) => x.slow?.pausedP99);
      const closes = ts.map((x) => x.slow?.closeCode).filter((c) => c !== undefined);
      const mb = med((x) => x.slow?.bytesAfter);
      const after =
        `on resuming after the trial it read ${f(med((x) => x.slow?.framesAfter), 0)} frames carrying ${f(med((x) => x.slow?.tokensAfter), 0)} tokens` +
        (mb !== undefined ? ` (${f(mb / 1048576, 1)} MB: what the kernel and the server had queued for it)` : '');
      const outcome = closes.length
        ? `closed by the server (code ${[...new Set(closes)].join(', ')}) in ${closes.length}/${ts.length} runs; ${after}`
        : `kept open; ${after}`;
      const change = a99 !== undefined && b99 !== undefined ? b99 - a99 : undefined;
      L.push(
        `| ${t} | ${lat(a50)} / ${lat(a99)} | ${lat(b50)} / ${lat(b99)} | ${change === undefined ? '–' : `${change >= 0 ? '+' : ''}${lat(change)} ms`} | ${lat(med((x) => x.latencyP99))} | ` +
          `${f(med((x) => x.slow?.rssAtPauseMb), 0)} → ${f(med((x) => x.rssMaxMb), 0)} → ${f(med((x) => x.rssSeries?.at(-1)?.[1]), 0)} | ${outcome} |`,
      );
    }
    L.push('');
    L.push(
      `"whole trial" also covers the ramp and the moment the ${o.slowSeconds}-s replies end (≈ ${(o.slowSeconds + o.rampMs / 1000).toFixed(0)} s): a jump there that the "paused" column does not show ` +
        'comes from ending the replies (each is ' +
        `~${((o.slowSeconds * o.pace * (st.padBytes + 15)) / 1048576).toFixed(1)} MB of text here), not from the slow member.`,
    );
    L.push('');
    L.push('Server RSS over time (first repetition; seconds after the first send → MB; ⏸ marks the pause):');
    L.push('');
    for (const t of CONTENDERS) {
      const trial = slowTrials.find((x) => x.target === t);
      if (!trial?.rssSeries?.length) continue;
      const pts: string[] = [];
      let next = 0;
      let marked = false;
      for (const [sec, mb] of trial.rssSeries) {
        if (!marked && sec >= trial.slow!.pauseAtSec) {
          pts.push('⏸');
          marked = true;
        }
        if (sec >= next) {
          pts.push(`${sec.toFixed(0)}s ${mb}`);
          next = Math.floor(sec) + 1;
        }
      }
      L.push(`- ${t}: ${pts.join(' · ')}`);
    }
    L.push('');
  }

  // ---------------------------------------------------------------- micro + profile
  if (r.micro?.length) {
    L.push('## SSE decoding: openai SDK vs server/sse.ts');
    L.push('');
    L.push(
      'One event split over many reads (as when the upstream writes it in small TCP writes), decoded by the openai 6 SDK (`Stream.fromSSEResponse`) and by the relay\'s `SseDecoder` ' +
        '(both fed the same bytes; in the relay itself Node decodes the UTF-8 in the stream before the decoder sees it); both JSON.parse every event. Medians of repeated runs in one process (bench/sse-micro.ts).',
    );
    L.push('');
    L.push(microMarkdown(r.micro));
    L.push('');
  }
  if (r.profile) {
    L.push(`## Where the relay spends its CPU (\`--cpu-prof\`, ${r.profile.level} streams)`);
    L.push('');
    L.push('Top self time; the full table, by module and inclusive, is in [profile-relay.md](profile-relay.md).');
    L.push('');
    L.push('| # | function | where | self % |');
    L.push('| ---: | --- | --- | ---: |');
    r.profile.summary.self.slice(0, 15).forEach((row, i) => L.push(`| ${i + 1} | \`${row.name}\` | ${row.where ? `\`${row.where}\`` : ''} | ${row.pct.toFixed(1)} % |`));
    L.push('');
  }

  // ---------------------------------------------------------------- health and limits
  const all = r.trials.filter((t) => t.workload !== 'profile');
  if (all.length) {
    const mx = (xs: Array<number | undefined>) => Math.max(...xs.filter((x): x is number => x !== undefined));
    L.push('## Run health');
    L.push('');
    L.push(
      `- Upstream ticker: worst lateness ${f(mx(all.map((t) => t.upstreamTickLateMaxMs)), 1)} ms, ${mx(all.map((t) => t.upstreamTicksSkipped ?? 0))} skipped ticks in the worst trial; ` +
        `upstream CPU up to ${f(mx(all.map((t) => t.upstreamCpuPct)), 0)} % of a core.`,
    );
    L.push(
      `- Load generators: up to ${f(mx(all.map((t) => t.loadgenCpuPct)), 0)} % CPU (sum of ${o.loadgens} processes); whole machine up to ${f(mx(all.map((t) => t.machineBusyPct)), 0)} % busy ` +
        `(CPU figures are % of one core: ${r.meta.cpus * 100} % = every core).`,
    );
    const foreign = all.map((t) => t.foreignCpuPct).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    if (foreign.length) {
      L.push(
        `- Other work on the machine (CPU of processes outside the bench during the trials): median ${f(foreign[foreign.length >> 1], 0)} %, worst ${f(foreign.at(-1), 0)} % of a core` +
          `${(foreign.at(-1) ?? 0) > 20 ? ' — the machine was shared while this ran; trials it hit are noisier' : ''}.`,
      );
    }
    const noisy = all.filter((t) => (t.foreignCpuPct ?? 0) > 50);
    if (noisy.length) {
      const hits = new Map<string, number>();
      for (const t of noisy) hits.set(`${t.workload} ${t.level} ${t.target}`, (hits.get(`${t.workload} ${t.level} ${t.target}`) ?? 0) + 1);
      const spoilt = [...hits].filter(([key, n]) => n >= 2 && n * 2 > all.filter((t) => `${t.workload} ${t.level} ${t.target}` === key).length).map(([key]) => key);
      L.push(
        `- Trials during which other processes used more than half a core: ${noisy.map((t) => `${t.workload} ${t.level} ${t.target} rep ${t.rep} (${f(t.foreignCpuPct, 0)} %)`).join('; ')}. ` +
          'A median absorbs one such repetition out of three' +
          (spoilt.length ? `, not more: the medians of ${spoilt.join(', ')} are affected (read them with care).` : '.'),
      );
    }
    const bad = all.filter((t) => t.errors || t.roomsTimedOut || t.deliveredPct < 99);
    if (bad.length) {
      L.push(`- Trials with errors, timeouts or < 99 % delivered: ${bad.map((t) => `${t.workload} ${t.level}${t.phase ? ` ${t.phase}` : ''} ${t.target} rep ${t.rep} (${f(t.deliveredPct, 1)} %${t.firstError ? `, ${t.firstError}` : ''})`).join('; ')}.`);
    } else {
      L.push('- Every trial delivered ≥ 99 % of its tokens with no errors or timeouts.');
    }
    L.push('');
  }
  L.push('## Limits of this measurement');
  L.push('');
  L.push(
    `- **${r.meta.cpus} cores for everything.** The contender, the upstream and the load generators share them: at the higher levels the machine is close to fully busy, ` +
      'so a contender that needs more CPU is also starved by the load generator, and latency includes time the clients waited for a core. The numbers rank the contenders on this box; ' +
      'they are not the capacity of a dedicated server.',
  );
  L.push(
    '- **Latency includes the client.** A token\'s latency ends when a load-generator process gets to read it; its event loop is busy with thousands of other sockets, so p99 carries load-generator queuing ' +
      '(the same for every contender, and heavier for socket.io, whose client decodes more per frame).',
  );
  L.push(
    '- **A synchronised upstream.** One ticker writes every stream\'s next token at the same instant, so each contender receives a burst of N chunks every ' +
      `${f(1000 / o.pace, 1)} ms rather than a smooth flow — a worst case for p99, the same for all.`,
  );
  L.push(
    '- **Loopback only**: no network latency, no TLS, no proxy; kernel socket buffers are large (a paused reader absorbs about 4 MB in the kernel before the server sees any backlog).',
  );
  L.push(
    '- **Different jobs.** floor and socketio forward text and nothing else; the relay also validates frames, assigns seqs, keeps a resumable event log and history, counts tokens and ' +
      'enforces limits. The gap to floor is the price of those features, not only overhead.' +
      (o.contenders.includes('relay-sqlite')
        ? ' relay-sqlite does all that and also keeps its state in SQLite (WAL, synchronous=NORMAL) in a fresh DATA_DIR under the system temporary directory; ' +
          'the disk behind that directory is part of its figures.'
        : '') +
      (o.contenders.includes('relay-moderated')
        ? ' relay-moderated does all that and also sends every message and every reply (a sliding window, then the whole) to a moderation API, holding each reply\'s pieces until they have passed; ' +
          'that API is the bench upstream answering at once, so a real provider\'s round trip (tens to hundreds of ms) would come on top of its figures.'
        : ''),
  );
  L.push('- Per-trial medians over few repetitions: differences under ~10 % are within the noise of a shared 2-core machine.');
  L.push('');
  return L.join('\n');
}

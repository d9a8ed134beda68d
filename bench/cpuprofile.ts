// Reads a V8 .cpuprofile (written by `node --cpu-prof`) without any tool:
// self time per function, self time per module (file or package), and
// inclusive time of the functions in this repository's own code.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileRow {
  name: string;
  where: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  self: ProfileRow[];
  modules: ProfileRow[];
  /** Inclusive time of functions under server/ and shared/. */
  ownInclusive: ProfileRow[];
}

/**
 * The main thread's profile in a `--cpu-prof-dir`. Node writes one per thread
 * (tsx's module-loader thread too), named CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile;
 * the main thread is 0.
 */
export function mainThreadProfile(dir: string): string | undefined {
  const files = existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.cpuprofile')) : [];
  const main = files.find((n) => n.split('.')[4] === '0') ?? files[0];
  return main && join(dir, main);
}

/** `file:///…/server/x.ts` → `server/x.ts`, node_modules paths → `pkg/…`. */
function shortUrl(url: string, root: string): string {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + '/node_modules/'.length);
  if (u.startsWith(root)) u = u.slice(root.length).replace(/^\//, '');
  return u;
}

function moduleOf(frame: CallFrame, root: string): string {
  const name = frame.functionName;
  if (!frame.url) return name.startsWith('(') ? name : '(native / builtin)';
  if (frame.url.startsWith('node:')) return frame.url.startsWith('node:internal') ? 'node:internal/*' : frame.url;
  const short = shortUrl(frame.url, root);
  if (frame.url.includes('/node_modules/')) {
    const parts = short.split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  return short;
}

/**
 * Maps a profile position back to the .ts source when the module was
 * transformed (tsx minifies whitespace, so every function sits on line 1).
 */
function makeLocator(maps: Record<string, unknown>): (f: CallFrame) => { line: number; text: string } | undefined {
  const cache = new Map<string, { map: SourceMap; lines: string[] } | null>();
  return (f) => {
    let entry = cache.get(f.url);
    if (entry === undefined) {
      const payload = maps[f.url] as (SourceMapPayload & { sourcesContent?: string[] }) | undefined;
      let text = payload?.sourcesContent?.[0];
      if (payload && !text) {
        try {
          text = readFileSync(fileURLToPath(f.url), 'utf8');
        } catch {
          text = '';
        }
      }
      entry = payload ? { map: new SourceMap(payload), lines: (text ?? '').split('\n') } : null;
      cache.set(f.url, entry);
    }
    if (!entry) return undefined;
    const hit = entry.map.findEntry(f.lineNumber, f.columnNumber) as { originalLine?: number };
    if (hit.originalLine === undefined) return undefined;
    return { line: hit.originalLine + 1, text: (entry.lines[hit.originalLine] ?? '').trim() };
  };
}

/**
 * `window` (µs on CLOCK_MONOTONIC, the clock V8 stamps samples with) keeps
 * only the samples taken in it, e.g. the measured part of a trial without
 * start-up and shutdown.
 */
export function summarize(
  path: string,
  root: string,
  top = 15,
  maps: Record<string, unknown> = {},
  window?: { fromUs: number; toUs: number },
  /** Which functions get an inclusive-time row (default: this repository's server/ and shared/). */
  ownUrl: (url: string) => boolean = (url) => /\/(server|shared)\/[^/]+\.ts$/.test(url) && !url.includes('/node_modules/'),
): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const locate = makeLocator(maps);
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);

  // Self time per node from the samples: each sample owns the time until the next one.
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length) {
    let ts = profile.startTime;
    for (let i = 0; i < samples.length; i++) {
      ts += deltas[i] ?? 0;
      if (window && (ts < window.fromUs || ts > window.toUs)) continue;
      const dt = i + 1 < deltas.length ? deltas[i + 1]! : (profile.endTime - profile.startTime) / samples.length;
      selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
    }
  } else {
    const interval = (profile.endTime - profile.startTime) / Math.max(1, profile.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0));
    for (const n of profile.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * interval);
  }

  const key = (f: CallFrame) => `${f.functionName}\u0000${f.url}\u0000${f.lineNumber}\u0000${f.columnNumber}`;
  const selfByFn = new Map<string, { frame: CallFrame; us: number }>();
  const selfByModule = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const n of profile.nodes) {
    const us = selfUs.get(n.id) ?? 0;
    if (!us) continue;
    totalUs += us;
    if (n.callFrame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const k = key(n.callFrame);
    const e = selfByFn.get(k) ?? { frame: n.callFrame, us: 0 };
    e.us += us;
    selfByFn.set(k, e);
    const m = moduleOf(n.callFrame, root);
    selfByModule.set(m, (selfByModule.get(m) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;

  // Inclusive time of our own functions, counting recursion once.
  const inclusive = new Map<string, { frame: CallFrame; us: number }>();
  const own = (f: CallFrame) => ownUrl(f.url);
  const root0 = profile.nodes[0];
  const subtotal = new Map<number, number>();
  const total = (id: number): number => {
    const cached = subtotal.get(id);
    if (cached !== undefined) return cached;
    // Iterative post-order to survive deep stacks.
    const stack: Array<{ id: number; done: boolean }> = [{ id, done: false }];
    while (stack.length) {
      const top = stack.pop()!;
      const node = byId.get(top.id)!;
      if (top.done) {
        let sum = selfUs.get(top.id) ?? 0;
        for (const c of node.children ?? []) sum += subtotal.get(c) ?? 0;
        subtotal.set(top.id, sum);
      } else {
        stack.push({ id: top.id, done: true });
        for (const c of node.children ?? []) if (!subtotal.has(c)) stack.push({ id: c, done: false });
      }
    }
    return subtotal.get(id)!;
  };
  if (root0) {
    total(root0.id);
    const walk: Array<{ id: number; active: Set<string> }> = [{ id: root0.id, active: new Set() }];
    while (walk.length) {
      const { id, active } = walk.pop()!;
      const node = byId.get(id)!;
      let next = active;
      if (own(node.callFrame)) {
        const k = key(node.callFrame);
        if (!active.has(k)) {
          const e = inclusive.get(k) ?? { frame: node.callFrame, us: 0 };
          e.us += subtotal.get(id) ?? 0;
          inclusive.set(k, e);
          next = new Set(active).add(k);
        }
      }
      for (const c of node.children ?? []) walk.push({ id: c, active: next });
    }
  }

  const row = (frame: CallFrame, us: number): ProfileRow => {
    const at = frame.url ? locate(frame) : undefined;
    let name = frame.functionName || '(anonymous)';
    // An anonymous function is known by its first line.
    if (!frame.functionName && at?.text) name = `(anonymous) ${at.text.length > 48 ? `${at.text.slice(0, 47)}…` : at.text}`;
    return {
      name,
      where: frame.url ? `${shortUrl(frame.url, root)}:${at ? at.line : frame.lineNumber + 1}` : '',
      ms: us / 1000,
      pct: busyUs ? (100 * us) / busyUs : 0,
    };
  };
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: busyUs / 1000,
    self: [...selfByFn.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => row(e.frame, e.us)),
    modules: [...selfByModule.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([m, us]) => ({ name: m, where: '', ms: us / 1000, pct: busyUs ? (100 * us) / busyUs : 0 })),
    ownInclusive: [...inclusive.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => row(e.frame, e.us)),
  };
}

export function profileMarkdown(s: ProfileSummary, title: string, context: string[]): string {
  const ms = (x: number) => x.toFixed(0);
  const pct = (x: number) => `${x.toFixed(1)} %`;
  const lines = [
    `# ${title}`,
    '',
    ...context,
    '',
    `Sampled ${ms(s.totalMs)} ms, of which ${ms(s.busyMs)} ms busy (not \`(idle)\`). Percentages are of busy time.`,
    '',
    '## Top self time (functions)',
    '',
    '| # | function | where | self ms | self % |',
    '| ---: | --- | --- | ---: | ---: |',
    ...s.self.map((r, i) => `| ${i + 1} | \`${r.name}\` | ${r.where ? `\`${r.where}\`` : ''} | ${ms(r.ms)} | ${pct(r.pct)} |`),
    '',
    '## Self time by module (file or package)',
    '',
    '| module | self ms | self % |',
    '| --- | ---: | ---: |',
    ...s.modules.map((r) => `| \`${r.name}\` | ${ms(r.ms)} | ${pct(r.pct)} |`),
    '',
    "## Inclusive time of the relay's own functions (server/, shared/)",
    '',
    '| function | where | total ms | total % |',
    '| --- | --- | ---: | ---: |',
    ...s.ownInclusive.map((r) => `| \`${r.name}\` | \`${r.where}\` | ${ms(r.ms)} | ${pct(r.pct)} |`),
    '',
  ];
  return lines.join('\n');
}

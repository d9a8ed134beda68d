// The flags of `npm run bench`: what a run measures, for how long, and where
// it writes. `--help` prints them all.
import { join, resolve } from 'node:path';
import { CONTENDERS, isContender, type Contender } from './common.js';
import { ROOT } from './procs.js';

export interface Options {
  mode: 'quick' | 'full' | 'custom';
  reps: number;
  streams: number[];
  streamSeconds: number;
  directSeconds: number;
  fanoutRooms: number[];
  roomSize: number;
  fanoutSeconds: number;
  idle: number[];
  idleReps: number;
  slowRooms: number;
  slowSeconds: number;
  slowReps: number;
  slowPad: number;
  directReps: number;
  contenders: Contender[];
  workloads: string[];
  loadgens: number;
  rampMs: number;
  /** Short replies each fresh contender process serves before a measured window. */
  warmReplies: number;
  sloMs: number;
  profileStreams: number;
  profileSeconds: number;
  /** What the profiled relay serves: the streams workload, or the slow-consumer one. */
  profileWorkload: 'streams' | 'slow';
  microMs: number;
  pace: number;
  out: string;
  relayLogLevel: string;
  /** Run the relay on this Redis (a one-node cluster) instead of its in-memory store; relay-sqlite stays on SQLite. */
  relayRedis: string;
  note: string;
  /** Keep the work directory (server logs, .cpuprofile files). */
  keep: boolean;
}

const WORKLOADS = ['micro', 'streams', 'fanout', 'idle', 'slow', 'profile'];
/** Where a trial's steady-state window opens, after the last stream has started. */
export const STEADY_AFTER_RAMP_MS = 2000;

const HELP = `npm run bench -- [flags]
  --quick                 small sizes, one repetition (~5 min)
  --reps N                alternating repetitions per level (default 3)
  --streams a,b,c         concurrent 1:1 streams per level (default 250,500,1000,2000)
  --stream-seconds S      length of each stream (default 10)
  --direct-seconds S      length of the direct-SDK baseline streams (default 2)
  --fanout-rooms a,b      rooms per fan-out level (default 10,40)
  --room-size N           members per fan-out room, sender included (default 50)
  --fanout-seconds S      (default 4)
  --idle a,b,c            idle sockets per level (default 1000,5000,10000,15000)
  --idle-reps N           (default 1: memory barely varies, and the 10-minute budget)
  --slow-rooms N          fan-out rooms of the slow-consumer test; the slow member is in all of them (default 10)
  --slow-seconds S        reply length in that test; the member stops reading at 30 % of it (default 12)
  --slow-pad BYTES        pad each token of that test so the paused member falls behind by MBs (default 4096)
  --slow-reps N           (default 1)
  --direct-reps N         repetitions of the direct-SDK baseline per level (default 1)
  --contenders list       ${CONTENDERS.join(',')} (default all; relay keeps its state in memory,
                          relay-sqlite in SQLite under a fresh temporary DATA_DIR per process,
                          relay-moderated is relay with buffered moderation against the bench upstream;
                          it sits out the idle workload, where nothing is moderated)
  --workloads list        ${WORKLOADS.join(',')}
  --loadgens N            load generator processes, 1 or 2 (default 2)
  --ramp-ms MS            spread of stream starts (default 500)
  --warm-replies N        short replies a fresh contender serves before it is measured (default 400)
  --slo-ms MS             p99 bound for "throughput at the same p99" (default 100)
  --profile-streams N     streams in the --cpu-prof run of the relay (default 1000)
  --profile-seconds S     (default 8)
  --profile-workload W    streams (default) or slow: profile the relay under the slow-consumer test instead
  --micro-ms MS           time budget per side and case of the SSE micro-benchmark (default 1200)
  --pace N                upstream tokens/s per stream (default 30)
  --relay-log-level L     LOG_LEVEL of the relay (default info, its default)
  --relay-redis URL       run the relay on this Redis (one node, its own key prefix) instead of in memory;
                          relay-sqlite stays on SQLite
  --note TEXT             a line for the report (e.g. "machine busy with other tests")
  --out DIR               (default bench/results)
  --keep                  keep the work directory (server logs, .cpuprofile files)
  --render FILE.json      only rebuild the Markdown of a saved run`;

export function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  // What both modes share; each mode then sets its sizes.
  const common = {
    roomSize: 50,
    idleReps: 1,
    slowReps: 1,
    directReps: 1,
    profileWorkload: 'streams',
    contenders: [...CONTENDERS],
    workloads: [...WORKLOADS],
    loadgens: 2,
    rampMs: 500,
    warmReplies: 400,
    sloMs: 100,
    pace: 30,
    out: join(ROOT, 'bench', 'results'),
    relayLogLevel: 'info',
    relayRedis: '',
    note: '',
    keep: false,
  } satisfies Partial<Options>;
  const o: Options = quick
    ? {
        ...common,
        mode: 'quick',
        reps: 1,
        streams: [250, 1000],
        streamSeconds: 3,
        directSeconds: 1,
        fanoutRooms: [10],
        fanoutSeconds: 3,
        idle: [1000, 5000],
        slowRooms: 5,
        slowSeconds: 7,
        slowPad: 8192,
        profileStreams: 500,
        profileSeconds: 3,
        microMs: 400,
      }
    : {
        ...common,
        mode: 'full',
        reps: 3,
        streams: [250, 500, 1000, 2000],
        streamSeconds: 10,
        directSeconds: 2,
        fanoutRooms: [10, 40],
        fanoutSeconds: 4,
        idle: [1000, 5000, 10000, 15000],
        slowRooms: 10,
        slowSeconds: 12,
        slowPad: 4096,
        profileStreams: 1000,
        profileSeconds: 8,
        microMs: 1200,
      };
  const list = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);
  const nums = (v: string) => list(v).map((x) => Number(x)).filter((x) => Number.isFinite(x) && x > 0);
  let custom = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--quick') continue;
    if (flag === '--keep') {
      o.keep = true;
      continue;
    }
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(`${HELP}\n`);
      process.exit(0);
    }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${flag} needs a value\n${HELP}`);
    // Flags that change no size leave the run a "quick" or "full" one.
    if (!['--note', '--out'].includes(flag)) custom = true;
    switch (flag) {
      case '--reps': o.reps = Math.max(1, Number(v)); break;
      case '--streams': o.streams = nums(v); break;
      case '--stream-seconds': o.streamSeconds = Number(v); break;
      case '--direct-seconds': o.directSeconds = Number(v); break;
      case '--fanout-rooms': o.fanoutRooms = nums(v); break;
      case '--room-size': o.roomSize = Math.max(2, Number(v)); break;
      case '--fanout-seconds': o.fanoutSeconds = Number(v); break;
      case '--idle': o.idle = nums(v).sort((a, b) => a - b); break;
      case '--idle-reps': o.idleReps = Math.max(1, Number(v)); break;
      case '--slow-rooms': o.slowRooms = Math.max(1, Number(v)); break;
      case '--slow-seconds': o.slowSeconds = Number(v); break;
      case '--slow-pad': o.slowPad = Math.max(0, Number(v)); break;
      case '--slow-reps': o.slowReps = Math.max(1, Number(v)); break;
      case '--direct-reps': o.directReps = Math.max(0, Number(v)); break;
      case '--contenders': o.contenders = list(v).filter(isContender); break;
      case '--workloads': o.workloads = list(v).filter((w) => WORKLOADS.includes(w)); break;
      case '--loadgens': o.loadgens = Math.min(2, Math.max(1, Number(v))); break;
      case '--ramp-ms': o.rampMs = Number(v); break;
      case '--warm-replies': o.warmReplies = Number(v); break;
      case '--slo-ms': o.sloMs = Number(v); break;
      case '--profile-streams': o.profileStreams = Number(v); break;
      case '--profile-seconds': o.profileSeconds = Number(v); break;
      case '--micro-ms': o.microMs = Number(v); break;
      case '--profile-workload': o.profileWorkload = v === 'slow' ? 'slow' : 'streams'; break;
      case '--pace': o.pace = Number(v); break;
      case '--relay-log-level': o.relayLogLevel = v; break;
      case '--relay-redis': o.relayRedis = v; break;
      case '--note': o.note = v; break;
      case '--out': o.out = resolve(v); break;
      default:
        throw new Error(`unknown flag ${flag}\n${HELP}`);
    }
  }
  if (custom) o.mode = 'custom';
  return o;
}

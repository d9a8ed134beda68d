// Prometheus metrics (GET /metrics). One registry per relay instance, so
// several relays in one process (tests) keep separate figures. Recording is a
// counter increment or a histogram observation: nothing here allocates per
// token beyond what prom-client does.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Live figures read at scrape time. */
export interface MetricsSources {
  sockets(): number;
  conversations(): number;
  activeReplies(): number;
  queuedReplies(): Promise<number>;
  /** The largest number of events any member socket is behind by. */
  maxMemberLag(): number;
  /** What the store keeps on this machine's disk (the embedded store); undefined for the others. */
  disk(): { bytes: number; conversations: number } | undefined;
}

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();
  readonly framesIn = new Counter({ name: 'relay_frames_in_total', help: 'Client frames received, by type', labelNames: ['type'], registers: [this.registry] });
  readonly bytesIn = new Counter({ name: 'relay_bytes_in_total', help: 'Bytes of client frames received, by type', labelNames: ['type'], registers: [this.registry] });
  /** Frames out are counted in plain numbers (fan-out makes this the hottest counter) and handed to prom-client at scrape time. */
  private readonly out = new Map<string, { frames: number; bytes: number }>();
  private lastJson = '';
  private lastType = { frames: 0, bytes: 0 };
  readonly ttft = new Histogram({ name: 'relay_time_to_first_token_seconds', help: 'From starting the upstream request to its first piece', buckets: SECONDS, registers: [this.registry] });
  readonly interToken = new Histogram({ name: 'relay_inter_token_seconds', help: 'Time between consecutive upstream pieces of a reply', buckets: SECONDS, registers: [this.registry] });
  readonly deltas = new Counter({ name: 'relay_reply_deltas_total', help: 'reply.delta events produced (before fan-out)', registers: [this.registry] });
  readonly completionTokens = new Counter({ name: 'relay_completion_tokens_total', help: 'Completion tokens of ended replies, by where the count came from', labelNames: ['source'], registers: [this.registry] });
  readonly replies = new Counter({ name: 'relay_replies_total', help: 'Ended replies, by finish reason', labelNames: ['finish_reason'], registers: [this.registry] });
  readonly cancelLatency = new Histogram({ name: 'relay_cancel_to_abort_seconds', help: 'From a cancel to the upstream request being aborted', buckets: SECONDS, registers: [this.registry] });
  readonly upstreamErrors = new Counter({ name: 'relay_upstream_errors_total', help: 'Replies ended by an upstream failure, by error code', labelNames: ['code'], registers: [this.registry] });
  readonly upstreamFallbacks = new Counter({ name: 'relay_upstream_fallbacks_total', help: 'Calls handed to a fallback model after the first failed before a response', labelNames: ['from', 'to'], registers: [this.registry] });
  readonly upstreamUp = new Gauge({ name: 'relay_upstream_up', help: "1 when the latest call to this model's upstream answered, 0 when it failed (unset before the first call)", labelNames: ['model'], registers: [this.registry] });
  readonly upstreamLastSuccess = new Gauge({ name: 'relay_upstream_last_success_timestamp_seconds', help: "Unix time of the latest call to this model's upstream that answered", labelNames: ['model'], registers: [this.registry] });
  readonly usageTokens = new Counter({ name: 'relay_usage_tokens_total', help: 'Tokens billed in the usage ledger, by model, where the count came from, and kind (prompt or completion)', labelNames: ['model', 'source', 'kind'], registers: [this.registry] });
  readonly usageCost = new Counter({ name: 'relay_usage_cost_usd_total', help: 'Cost billed in the usage ledger, by model and where the token count came from', labelNames: ['model', 'source'], registers: [this.registry] });
  readonly upstreamCost = new Counter({ name: 'relay_upstream_cost_usd_total', help: 'What ended replies cost upstream, by model, at the model table prices', labelNames: ['model'], registers: [this.registry] });
  readonly resumes = new Counter({ name: 'relay_resumes_total', help: 'join with since, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly mergedDeltas = new Counter({ name: 'relay_merged_deltas_total', help: 'reply.delta frames merged into another for a slow socket', registers: [this.registry] });
  readonly moderationChecks = new Counter({ name: 'relay_moderation_checks_total', help: 'Moderation checks, by what was checked (input, window, whole) and outcome (pass, flagged, failed)', labelNames: ['kind', 'outcome'], registers: [this.registry] });
  readonly moderationFlags = new Counter({ name: 'relay_moderation_flags_total', help: 'Categories that flagged a moderation check', labelNames: ['category'], registers: [this.registry] });
  readonly moderationLatency = new Histogram({ name: 'relay_moderation_check_seconds', help: 'How long a moderation check took, by what was checked', labelNames: ['kind'], buckets: SECONDS, registers: [this.registry] });
  readonly moderationHeld = new Histogram({ name: 'relay_moderation_held_seconds', help: 'Buffered mode: how long a reply piece was held back before its window passed', buckets: SECONDS, registers: [this.registry] });
  readonly slowConsumerCloses = new Counter({ name: 'relay_slow_consumer_closes_total', help: 'Sockets closed with 4009', registers: [this.registry] });

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    const out = this.out;
    // Handed over at scrape time from the plain numbers countOut() keeps.
    const drained = (name: string, help: string, field: 'frames' | 'bytes') =>
      new Counter({
        name,
        help,
        labelNames: ['type'],
        registers,
        collect() {
          for (const [type, n] of out) {
            this.inc({ type }, n[field]);
            n[field] = 0;
          }
        },
      });
    drained('relay_frames_out_total', 'Frames sent to clients, by type', 'frames');
    drained('relay_bytes_out_total', 'Bytes of frames sent to clients, by type', 'bytes');
    new Gauge({ name: 'relay_open_sockets', help: 'Open client sockets', registers, collect() { this.set(sources.sockets()); } });
    new Gauge({ name: 'relay_conversations', help: 'Conversations held on this node', registers, collect() { this.set(sources.conversations()); } });
    new Gauge({ name: 'relay_active_replies', help: 'Replies streaming on this node', registers, collect() { this.set(sources.activeReplies()); } });
    new Gauge({
      name: 'relay_queued_replies',
      help: 'Replies waiting behind a running one, in conversations held on this node',
      registers,
      async collect() {
        this.set(await sources.queuedReplies());
      },
    });
    const diskGauge = (name: string, help: string, field: 'bytes' | 'conversations') =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const disk = sources.disk();
          if (disk) this.set(disk[field]);
        },
      });
    diskGauge('relay_data_bytes', 'Bytes the embedded store holds in DATA_DIR (pages in use)', 'bytes');
    diskGauge('relay_data_conversations', 'Conversations the embedded store holds in DATA_DIR', 'conversations');
    new Gauge({ name: 'relay_member_lag_seq_max', help: 'Events the furthest-behind member socket has yet to receive', registers, collect() { this.set(sources.maxMemberLag()); } });
    collectDefaultMetrics({ register: this.registry });
  }

  /** One frame written to a socket. Fan-out writes one string to many sockets: its type is read once. */
  countOut(json: string): void {
    if (json !== this.lastJson) {
      this.lastJson = json;
      const type = typeOf(json);
      let n = this.out.get(type);
      if (!n) this.out.set(type, (n = { frames: 0, bytes: 0 }));
      this.lastType = n;
    }
    this.lastType.frames++;
    this.lastType.bytes += json.length;
  }
}

/** The frame type of a serialized server frame, read without parsing it. */
function typeOf(json: string): string {
  const at = json.indexOf('"type":"');
  if (at < 0) return 'unknown';
  return json.slice(at + 8, json.indexOf('"', at + 8));
}

// How much of a conversation's event log is kept for resume: at most
// EVENT_LOG_MAX events, none older than EVENT_LOG_MAX_AGE_MS, at most
// EVENT_LOG_MAX_BYTES; never an event of the reply still streaming (a joiner
// is shown that reply's text from them). One rule for every backend.

export interface RetentionLimits {
  eventLogMax: number;
  eventLogMaxAgeMs: number;
  eventLogMaxBytes: number;
}

/** What the rule needs of a retained event. */
export interface Retained {
  seq: number;
  /** When it was appended (ms). */
  at: number;
  /** Bytes of every event of the conversation before this one. */
  offset: number;
}

export interface LogExtent {
  /** Events retained now. */
  count: number;
  /** Bytes of every event of the conversation so far (the offset after the newest). */
  end: number;
  /** seq of the reply in flight's reply.start, if one streams: it and what follows stay. */
  keepFrom: number | undefined;
}

/**
 * Is the log far enough over a limit to trim now? Trimming waits for a
 * quarter over a cap (an eighth of the age) so that it happens in batches and
 * the per-event cost stays O(1) amortized.
 */
export function overLimits(oldest: Retained | undefined, extent: LogExtent, limits: RetentionLimits, now: number): boolean {
  if (!oldest) return false;
  const { eventLogMax, eventLogMaxAgeMs, eventLogMaxBytes } = limits;
  const bytes = extent.end - oldest.offset;
  return (
    extent.count > eventLogMax + (eventLogMax >> 2) ||
    oldest.at < now - eventLogMaxAgeMs - (eventLogMaxAgeMs >> 3) ||
    bytes > eventLogMaxBytes + (eventLogMaxBytes >> 2)
  );
}

/**
 * How many of the oldest events to drop, given the oldest ones in order
 * (enough of them to cover what must go: a caller that holds fewer than
 * needed drops what it was shown and trims again later).
 */
export function eventsToDrop(oldest: readonly Retained[], extent: LogExtent, limits: RetentionLimits, now: number): number {
  const cutoff = now - limits.eventLogMaxAgeMs;
  let drop = Math.max(0, extent.count - limits.eventLogMax);
  // The newest event always stays, so a resume from the head is always possible.
  const most = Math.min(oldest.length, extent.count - 1);
  while (drop < most && (oldest[drop]!.at < cutoff || extent.end - oldest[drop]!.offset > limits.eventLogMaxBytes)) drop++;
  drop = Math.min(drop, most);
  if (extent.keepFrom !== undefined) {
    let kept = 0;
    while (kept < drop && oldest[kept]!.seq < extent.keepFrom) kept++;
    drop = kept;
  }
  return drop;
}

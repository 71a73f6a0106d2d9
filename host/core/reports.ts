// reports.ts -- what a Runtime reports: the recovery at open, a takeover,
// a batch, its counters and the mem port's replies. Kept apart from
// runtime.ts so that the runtime's file holds the data path alone.

/** What a takeover found when a new worker attached to a terminated one's pool. */
export interface TakeoverReport {
  /** Records the cut-off batch had appended and never committed (never acknowledged). */
  dropped: number;
  /** Connections closed: a request of theirs was cut off. */
  closed: number;
}

export interface RecoveryReport {
  records: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  nextSeq: number;
  corrupt: number;
  firstCorruptSeq: number;
  skipped: number;
  torn: boolean;
  tornPos: number;
  discarded: number;
  wasClean: boolean;
  liveBuffers: number;
  freeBuffers: number;
  /** live records found whole past the persistent tail: the last batch when the power failed before its tail reached the media, or a batch in flight (never acknowledged) when the host was killed */
  beyondTail: number;
  replayed: number;
}

export interface BatchResult {
  /** Requests the port put in RX slots (0: ring full, pool full or log full: backpressure). */
  filled: number;
  /** Replies released after the commit. */
  replies: number;
}

export interface RuntimeStats {
  records: number;
  payloadBytes: number;
  batches: number;
  payloadCopies: number;
  replies: number;
  replyBytes: number;
  trimmed: number;
  handlerErrors: number;
  nextSeq: number;
  committedSeq: number;
  logUsed: number;
  logCapacity: number;
  freeBuffers: number;
  /** Out of the rings: referenced by the log, or held for requests still arriving (holdBuffers of them). */
  liveBuffers: number;
  /** Payload bytes of the records in the log: what a restart would replay. */
  logBytes: number;
  holdBuffers: number;
  ringBuffers: number;
  /** Logs refused because only the cleaner's reserve was left: requests answered with an error (kv-wal: -OOM). */
  refused: number;
}

/** The TCP port's busy polling (native/busypoll.c): its budget, the polls that spun, the spins that found work. */
export interface BusyPoll {
  budgetUs: number;
  spins: number;
  hits: number;
}

export interface Reply {
  conn: number;
  data: Buffer;
}

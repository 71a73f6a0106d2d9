// space.ts -- where a pool's bytes are, computed one way for `status`,
// /v1/status and `pool info`: buffers by state, the bytes the log's records
// hold, the bytes of held buffers nothing references, and the space
// amplification (pool bytes held per byte of data).
//
// "Live" here is what the pool can know: the payload of every record still in
// the log, which is exactly what a restart replays. A record the handler has
// overwritten stays live until its cleaner drops it (kv-wal's INFO shows
// keys next to records); a value moved by the cleaner counts twice until the
// original is trimmed behind it.

import { formatSize } from "./size.js";

export interface Space {
  bufSize: number;
  buffers: {
    /** Every buffer but buffer 0 (reserved). */
    total: number;
    free: number;
    /** In ring slots: receive buffers waiting for data, transmit slots. */
    rings: number;
    /** Out of the rings and referenced by the log. */
    log: number;
    /** Held by the handler for requests still arriving. */
    arriving: number;
  };
  /** Payload bytes of the records in the log. */
  liveBytes: number;
  /** Bytes of the log's buffers that no record references (the rest of a buffer behind a small request). */
  deadBytes: number;
  /** Bytes of log lines in use (64 a record, at least). */
  logBytes: number;
  /** (the log's buffer bytes + log lines) / live bytes; 0 when the log is empty. */
  amplification: number;
}

export interface SpaceInputs {
  bufSize: number;
  buffers: number;
  freeBuffers: number;
  ringBuffers: number;
  /** Out of the rings: referenced by the log, or held (holdBuffers of them). */
  liveBuffers: number;
  holdBuffers: number;
  liveBytes: number;
  logUsed: number;
}

export function spaceOf(i: SpaceInputs): Space {
  const log = i.liveBuffers - i.holdBuffers;
  const held = log * i.bufSize;
  return {
    bufSize: i.bufSize,
    buffers: { total: i.buffers - 1, free: i.freeBuffers, rings: i.ringBuffers, log, arriving: i.holdBuffers },
    liveBytes: i.liveBytes,
    // a record moved by the cleaner references two copies until trimmed: never below 0
    deadBytes: Math.max(0, held - i.liveBytes),
    logBytes: i.logUsed,
    amplification: i.liveBytes ? (held + i.logUsed) / i.liveBytes : 0,
  };
}

/** formatSpace -- two lines' worth: buffers by state; data, dead bytes and amplification. */
export function formatSpace(s: Space): { buffers: string; data: string } {
  const b = s.buffers;
  return {
    buffers: `${b.free} free, ${b.rings} in ring slots, ${b.log} held by the log, ${b.arriving} by requests still arriving (of ${b.total} x ${s.bufSize} B)`,
    data: s.liveBytes
      ? `${formatSize(s.liveBytes)} live in the log's records; ${formatSize(s.deadBytes)} of its buffers unused; ` +
        `${formatSize(s.logBytes)} of log lines; space amplification ${s.amplification.toFixed(2)}x`
      : `nothing logged; ${formatSize(s.logBytes)} of log lines`,
  };
}

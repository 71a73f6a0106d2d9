// index.ts -- the SDK handler authors import: `import { Ring, log, reply } from "paste-host/assembly"`.
//
// A handler module exports:
//   on_rx(ring: Ring): void       a batch: RX slots [ring.head, ring.tail) hold requests, in place
//   on_replay(rec: Record): void  at start-up, each live record in order, bytes in place
//   on_init(): void               optional, once, before replay (handlerConfig() has the config)
//   on_close(conn: u32): void     optional, a connection closed
//   on_clean(): void              optional, the pool is under pressure: clean a bounded amount (clean.ts)
// `paste-host build` adds paste_abi_version(), which the host checks.
//
// Nothing here allocates on the per-slot path: logging names buffers, replies
// are built in one static scratch area.

import * as host from "./imports";
import { Err, LogExtent, Slot } from "./layout";
import { flushReplies, queueReply } from "./outbox";
import { lastError } from "./errors";

export { Ring, Slot, Record, Extent, LogExtent, NetmapIf, SlotFlags, Err, bufferAddress, WINDOW_BASE, ABI_VERSION, RING_SLOTS_OFFSET } from "./layout";
export * from "./parse";
export { Stream, Streams } from "./stream";
export { Cleaner, LiveRecord, packBelow, pressure, useReserve } from "./clean";
export { BytesMap, hashBytes } from "./bytesmap";
export { Pressure, PressureFlags } from "./layout";
export { handlerConfig, handlerConfigString } from "./config";
export { flushReplies } from "./outbox";

export { lastError } from "./errors";

function check(r: f64): u64 {
  if (r < 0) abort(lastError());
  return <u64>r;
}

/**
 * log -- log `len` bytes at `off` (from the slot's payload start) by reference.
 * Returns the record's sequence number; it is durable once on_rx returns and
 * the batch commits. Aborts the batch with the host's message on error; use
 * tryLog to handle Err.LOG_FULL yourself.
 */
export function log(slot: Slot, off: u32, len: u32): u64 {
  return check(host.log(slot.buf_idx, slot.dataOffset + off, len));
}

/** tryLog -- like log, but returns a negative Err code instead of aborting. */
export function tryLog(slot: Slot, off: u32, len: u32): i64 {
  return <i64>host.log(slot.buf_idx, slot.dataOffset + off, len);
}

/** logCopy -- the copying baseline (for comparisons): the host copies the bytes, then logs the copy. */
export function logCopy(slot: Slot, off: u32, len: u32): u64 {
  return check(host.log_copy(slot.buf_idx, slot.dataOffset + off, len));
}

/** logBuffer -- log a range of a buffer named by index (one the handler holds or already logged). */
export function logBuffer(buf_idx: u32, off: u32, len: u32): u64 {
  return check(host.log(buf_idx, off, len));
}

/**
 * RecordBuilder -- one record from several pieces (a request split across
 * buffers). Allocate once, reuse: add() pieces, then log().
 */
export class RecordBuilder {
  private ext: usize;
  private n: u32 = 0;

  constructor(private capacity: u32 = 64) {
    this.ext = heap.alloc(<usize>capacity * offsetof<LogExtent>());
  }

  get count(): u32 {
    return this.n;
  }

  /** add -- append len bytes at off of buffer buf_idx. */
  add(buf_idx: u32, off: u32, len: u32): RecordBuilder {
    if (this.n == this.capacity) abort("RecordBuilder: more extents than its capacity");
    const e = changetype<LogExtent>(this.ext + <usize>this.n * offsetof<LogExtent>());
    e.buf_idx = buf_idx;
    e.off = <u16>off;
    e.len = <u16>len;
    this.n++;
    return this;
  }

  /** addSlot -- append len bytes at off (from the payload start) of a slot. */
  addSlot(slot: Slot, off: u32, len: u32): RecordBuilder {
    return this.add(slot.buf_idx, slot.dataOffset + off, len);
  }

  /** log -- log the pieces as one record and start over; the sequence number. */
  log(): u64 {
    const r = host.log_extents(this.ext, this.n);
    this.n = 0;
    return check(r);
  }

  reset(): void {
    this.n = 0;
  }
}

/** trim -- release every committed record up to seq (at most committed(): past it is an error, and aborts); records released. */
export function trim(seq: u64): u64 {
  return check(host.trim(<f64>seq));
}

/** committed -- the highest durable sequence number. */
export function committed(): u64 {
  return <u64>host.committed();
}

// ------------------------------------------------------------- replies

/**
 * reply -- send a copy of len bytes at ptr to conn, after this batch is
 * durable. Gathered with the call's other replies and handed to the host in
 * one import call when the handler call ends (outbox.ts).
 */
export function reply(conn: u32, ptr: usize, len: u32): void {
  queueReply(conn, ptr, len);
}

/** closeConnection -- close conn after the replies queued so far are sent; on_close follows. */
export function closeConnection(conn: u32): void {
  flushReplies();
  host.close(conn);
}

/** replyBuffer -- send len bytes at off of pool buffer buf_idx to conn, from the pool, no copy. */
export function replyBuffer(conn: u32, buf_idx: u32, off: u32, len: u32): void {
  flushReplies();   // after the copied replies made before it
  if (host.reply_ref(conn, buf_idx, off, len) < 0) abort(lastError());
}

/**
 * replyPieces -- send bytes [off, off+len) of a record made of `pieces`
 * ((buf, off, len) triples, as Stream.pieces and the Cleaner keep them)
 * straight from the pool, allocating nothing: a stored value inside a
 * logged command, say.
 */
export function replyPieces(conn: u32, pieces: StaticArray<u32>, off: u32, len: u32): void {
  for (let i = 0; i < pieces.length && len > 0; i += 3) {
    const plen = unchecked(pieces[i + 2]);
    if (off >= plen) {
      off -= plen;
      continue;
    }
    const take = min(plen - off, len);
    replyBuffer(conn, unchecked(pieces[i]), unchecked(pieces[i + 1]) + off, take);
    len -= take;
    off = 0;
  }
}

/**
 * ReplyBuilder -- build a reply in one scratch area, without allocating:
 *   replies.begin().ascii("+OK ").u64(seq).ascii("\r\n").send(conn)
 */
export class ReplyBuilder {
  private buf: usize;
  private len: u32 = 0;

  constructor(private capacity: u32) {
    this.buf = heap.alloc(capacity);
  }

  begin(): ReplyBuilder {
    this.len = 0;
    return this;
  }

  private room(n: u32): usize {
    if (this.len + n > this.capacity) abort("reply longer than the builder's capacity");
    const at = this.buf + this.len;
    this.len += n;
    return at;
  }

  /** ascii -- append an ASCII string. */
  ascii(s: string): ReplyBuilder {
    const n = <u32>s.length;
    const at = this.room(n);
    const from = changetype<usize>(s);   // UTF-16 code units: the low byte of each
    for (let i: u32 = 0; i < n; i++) store<u8>(at + i, <u8>load<u16>(from + (<usize>i << 1)));
    return this;
  }

  /** byte -- append one byte. */
  byte(b: u8): ReplyBuilder {
    store<u8>(this.room(1), b);
    return this;
  }

  /** bytes -- append len bytes at ptr (e.g. a value in place in the pool). */
  bytes(ptr: usize, len: u32): ReplyBuilder {
    memory.copy(this.room(len), ptr, len);
    return this;
  }

  /** u64 -- append v in decimal. */
  u64(v: u64): ReplyBuilder {
    let digits: u32 = 1;
    for (let t = v; t >= 10; t /= 10) digits++;
    const at = this.room(digits);
    for (let i = <i32>digits - 1; i >= 0; i--) {
      store<u8>(at + <u32>i, <u8>(48 + <u32>(v % 10)));
      v /= 10;
    }
    return this;
  }

  /** i64 -- append v in decimal, with a sign. */
  i64(v: i64): ReplyBuilder {
    if (v < 0) {
      this.ascii("-");
      return this.u64(<u64>(-v));
    }
    return this.u64(<u64>v);
  }

  /** flush -- queue what was built so far for conn, keep building (before a replyBuffer). */
  flush(conn: u32): ReplyBuilder {
    if (this.len) queueReply(conn, this.buf, this.len);
    this.len = 0;
    return this;
  }

  /** length -- bytes built so far. */
  get length(): u32 {
    return this.len;
  }

  /** send -- queue what was built for conn, and start over. */
  send(conn: u32): void {
    queueReply(conn, this.buf, this.len);
    this.len = 0;
  }
}

/** replies -- the shared 64 KiB builder. */
export const replies = new ReplyBuilder(65536);

// ------------------------------------------------------------- tracing

/** The level a trace message is logged at (the host's debug/info/warn/error). */
export enum TraceLevel {
  Debug = 0,
  Info = 1,
  Warn = 2,
  Error = 3,
}

/**
 * trace -- log a message on the host, at a level; true if logged, false if the
 * host's rate limit (burst 100, then 20/s) dropped it. Encoding allocates:
 * trace what is unusual, not every request.
 */
export function trace(message: string, level: TraceLevel = TraceLevel.Info): bool {
  const bytes = String.UTF8.encode(message);
  return host.trace(<u32>level, changetype<usize>(bytes), <u32>bytes.byteLength) == 0;
}

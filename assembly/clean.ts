// clean.ts -- the log cleaner a handler that overwrites or deletes uses, so
// that its pool never fills with dead records (log-structured memory, as
// RAMCloud and Bitcask clean theirs).
//
// The log is a queue: new records go at the tail, trim releases from the
// head. A handler tells the Cleaner about every record that may stay live
// (add, in log order: as it logs them and as on_replay hands them back) and
// says which still are (LiveRecord.live). When the host calls on_clean, the
// handler calls step(): it takes the records nearest the head, drops the dead
// ones, moves the live ones to the tail, and trims behind them once the moved
// copies are durable. Each step does a bounded amount of work, so no pause
// grows with the data.
//
// A live record moves by reference when it is large (its buffer stays, well
// used), or is copied densely into shared buffers when it is small
// (log_pack), so that a 16-byte value stops holding a whole 2 KiB buffer.
// Everything else in the log (a DEL, a FLUSHALL: records that never stay
// live) is released as the head passes it.
//
// Crash safety comes from the log's order, not from the cleaner: a moved
// record is a new record at the tail, the old one is trimmed only after the
// new one is durable, and replay rebuilds the same state from either.

import * as host from "./imports";
import { ChunkQueue } from "./chunks";
import { Err, LogExtent, Pressure, PressureFlags, bufferAddress, packedTriples, toExtents } from "./layout";

/** A record the cleaner may move: its sequence number and its pieces, (buf, off, len) triples. */
export class LiveRecord {
  /** Set once the cleaner copied it into a shared buffer: moving it again gains little. */
  packed: bool = false;

  constructor(
    public seq: u64,
    public rec: StaticArray<u32>,
    public len: u32,
  ) {}

  /** live -- is the record still needed? Override: e.g. "the index still points at me". */
  live(): bool {
    return true;
  }

  /** moved -- the record now lives at a new seq and new pieces (rec); update what was derived from them. */
  moved(): void {}
}

const pressureBox = memory.data(offsetof<Pressure>(), 8);

/** pressure -- the pool's space now (a view, valid until the next call). */
export function pressure(): Pressure {
  host.pressure(pressureBox);
  return changetype<Pressure>(pressureBox);
}

/**
 * useReserve -- let the logs that follow (until useReserve(false), or the
 * end of this host call) use the reserve kept for the cleaner. For records
 * that free space, such as a delete: a full pool must still accept them.
 */
export function useReserve(on: bool): void {
  host.use_reserve(on ? 1 : 0);
}

/**
 * packBelow -- a record of at most this many bytes (three quarters of a
 * pool buffer) is copied densely into shared buffers when it moves; a larger
 * one moves by reference. A record that fills less of its buffer leaves a
 * quarter or more of it idle: a 1 KiB value in a 2 KiB buffer would keep
 * half the pool empty, so more such keys than buffers could never fit.
 */
export function packBelow(): u32 {
  if (!packLimit) packLimit = <u32>(bufferAddress(1) - bufferAddress(0)) / 4 * 3;
  return packLimit;
}
let packLimit: u32 = 0;
const MAX_PIECES = 64;

export class Cleaner {
  private queue: ChunkQueue<LiveRecord> = new ChunkQueue<LiveRecord>();   // in chunks: see chunks.ts
  private first: i32 = 0;             // queue[first..] are in the log, oldest first
  private trimTo: u64 = 0;            // trim this far ...
  private trimAfter: u64 = 0;         // ... once this seq (the last moved copy) is durable
  private ext: usize = heap.alloc(<usize>MAX_PIECES * offsetof<LogExtent>());
  private out: usize = heap.alloc(8 + <usize>MAX_PIECES * offsetof<LogExtent>());
  /** Records moved and dropped so far (for INFO and tests). */
  moved: u64 = 0;
  dropped: u64 = 0;
  // A pass is one trip of the head around the queue. What a pass gains: the
  // dead records it drops, and the small live ones it packs for the first
  // time (they leave sparsely used buffers). When a whole pass gained almost
  // nothing, moving more live records only churns: rest until a sixteenth of
  // the records died (died()) or as many again were added.
  private added: u64 = 0;
  private deaths: u64 = 0;
  private resumeDeaths: u64 = 0;
  private passEnd: i32 = 0;
  private passScanned: u64 = 0;
  private passGained: u64 = 0;
  private resumeAt: u64 = 0;

  /**
   * add -- a record that may stay live was logged (or replayed); in log
   * order. A handler may keep one LiveRecord per key and change it in place
   * when the key is written again (new seq, new pieces: no allocation per
   * write), then add it again: its earlier place in the queue is stale from
   * then on, as the seq it was queued with is no longer the record's.
   */
  add(r: LiveRecord): void {
    this.queue.push(r, r.seq);
    this.added++;
  }

  /** died -- n tracked records stopped being live (overwritten, deleted): cleaning may pay again. */
  died(n: u64 = 1): void {
    this.deaths += n;
  }

  /** size -- the records the cleaner still tracks (live or not yet found dead). */
  get size(): i32 {
    return this.queue.length - this.first;
  }

  private addedAtStep: u64 = 0;

  /**
   * step -- one bounded piece of cleaning, from on_clean: at least `budget`
   * records from the head, and twice as many as were added since the last
   * step (so cleaning keeps up with writing; at most 2048, so a step stays a
   * pause of milliseconds). Returns the records moved (0 when nothing is due
   * or the last step's copies are not durable yet).
   */
  step(budget: i32 = 256): i32 {
    const pace = <i32>min<u64>(2048, 2 * (this.added - this.addedAtStep));
    this.addedAtStep = this.added;
    if (pace > budget) budget = pace;
    if (!this.finish()) return 0;
    if (this.added < this.resumeAt && this.deaths < this.resumeDeaths) return 0;   // the last pass found too little dead
    const p = pressure();
    if (!(p.flags & (PressureFlags.BUFFERS | PressureFlags.LOG | PressureFlags.FULL))) return 0;
    const end = this.queue.length;
    let moved = 0;
    let i = this.first;
    for (; i < end && i - this.first < budget; i++) {
      const r = this.queue.at(i);
      this.passScanned++;
      if (r.seq != this.queue.tagAt(i) || !r.live()) {
        this.dropped++;
        this.passGained++;
        continue;
      }
      if (r.len <= packBelow() && !r.packed) this.passGained++;
      const seq = this.move(r);
      if (seq < 0) break;               // even the reserve is used up: stop, try again next step
      this.queue.push(r, r.seq);
      this.trimAfter = <u64>seq;
      moved++;
    }
    this.first = i;
    if (this.first >= this.passEnd) this.endPass();
    // Everything before the oldest record still tracked is dead or moved: trim it
    // (when none is tracked, everything durable is). The seq that place was
    // queued with, not its record's: a record changed in place is newer.
    this.trimTo = this.first < this.queue.length ? this.queue.tagAt(this.first) - 1 : <u64>host.committed();
    if (this.first >= 4096) {
      // forget the records behind the head: whole chunks go, nothing is copied
      this.queue.drop(this.first);
      this.passEnd -= this.first;
      this.first = 0;
    }
    this.moved += moved;
    this.finish();
    return moved;
  }

  /** endPass -- the head went once around: if it gained on under 1 in 16 records, rest (see died). */
  private endPass(): void {
    if (this.passScanned > 0 && this.passGained * 16 < this.passScanned) {
      this.resumeAt = this.added + max<u64>(64, <u64>this.size);
      this.resumeDeaths = this.deaths + max<u64>(16, <u64>this.size / 16);
    }
    this.passScanned = 0;
    this.passGained = 0;
    this.passEnd = this.queue.length;
  }

  /**
   * finish -- trim what the last step moved, once the moved copies are
   * durable; true when nothing is left waiting. Call it from on_rx too: it
   * costs a compare.
   */
  finish(): bool {
    if (!this.trimTo) return true;
    if (<u64>host.committed() < this.trimAfter) return false;
    host.trim(<f64>this.trimTo);
    this.trimTo = 0;
    this.trimAfter = 0;
    return true;
  }

  /** move -- log r again at the tail: copied into shared buffers if small, by reference if not. Its new seq, or an Err. */
  private move(r: LiveRecord): i64 {
    const n = r.rec.length / 3;
    if (n > MAX_PIECES) return <i64>Err.HANDLER;
    toExtents(r.rec, n, this.ext);
    let seq: f64;
    if (r.len <= packBelow()) {
      seq = host.log_pack(this.ext, n, this.out, MAX_PIECES);
      if (seq >= 0) {
        r.rec = packedTriples(this.out, MAX_PIECES, r.rec);
        r.packed = true;
      }
    } else {
      seq = host.log_extents(this.ext, n);
    }
    if (seq < 0) return <i64>seq;
    r.seq = <u64>seq;
    r.moved();
    return <i64>seq;
  }
}

// stream.ts -- a connection's bytes across buffers, in place.
//
// TCP has no message boundaries: a request may arrive split over several
// buffers, and one buffer may carry several requests. A Stream is the
// per-connection cursor: push() each slot that arrives for the connection
// (its buffer stays the stream's past the slot's release), parse with the
// helpers below, then log() a request's range as one record (its extents are
// the pieces, by reference) and consume() it. Fully consumed buffers are
// given back. Nothing is copied.
//
// A pushed buffer is held (so that it survives its slot's release) only if
// the stream still needs it when the handler call ends: the host calls
// paste_end (abi.ts), which holds what is left (holdPending). A request that
// arrives whole and is consumed in the same call costs no hold and no unhold
// import call; one that waits for its rest is held exactly as before.
//
// A Stream can also read a replayed Record (fromRecord): the same parser
// serves both the live path and recovery.

import * as host from "./imports";
import { LogExtent, Record, Slot, bufferAddress, packedTriples, toExtents } from "./layout";
import { failWith as fail } from "./errors";


const MAX_PACK_OUT: u32 = 64;
const packOut = heap.alloc(8 + <usize>MAX_PACK_OUT * offsetof<LogExtent>());   // log_pack's answer: count, pad, extents
let viewCap: u32 = 256;
let viewBuf: usize = heap.alloc(viewCap);

// What a stream knows of a piece's buffer (Stream.own).
const NOT_OURS: u8 = 0;   // a replayed record's: never held
const IN_SLOT: u8 = 1;    // pushed in this handler call, still in its RX slot: not held yet
const HELD: u8 = 2;       // held: given back with unhold when consumed

/** Streams with pieces pushed in this handler call (IN_SLOT), for holdPending. */
const pushed = new Array<Stream>();

/**
 * holdPending -- at the end of a handler call (paste_end): hold every buffer
 * a stream still needs that is still in its RX slot, before the host takes
 * the slots back. keep false (the call trapped): the host closes the
 * connections of the batch's unreleased requests; their streams are reset.
 */
export function holdPending(keep: bool): void {
  for (let i = 0; i < pushed.length; i++) {
    const s = unchecked(pushed[i]);
    if (keep) s.holdInSlot();
    else s.reset();
    s.listed = false;
  }
  pushed.length = 0;
}

export class Stream {
  /** Bytes available from the cursor on. */
  length: u32 = 0;
  private n: i32 = 0;
  private addr: StaticArray<u32>;   // Wasm address of each piece's first unconsumed byte
  private lens: StaticArray<u32>;   // its bytes
  private bufs: StaticArray<u32>;   // its buffer index
  private own: StaticArray<u8>;     // NOT_OURS, IN_SLOT or HELD
  // The first piece again, where byteAt reads it without touching the arrays:
  // nearly every byte a parser looks at lies there.
  private a0: usize = 0;
  private l0: u32 = 0;
  /** On the pushed list (holdPending). */
  listed: bool = false;
  private lastK: u32 = 0;           // triples the last extents() wrote (loggedPieces)
  private ext: usize;               // scratch for log_extents
  private triples: StaticArray<u32>; // scratch for pieces()

  constructor(readonly conn: u32, readonly capacity: i32 = 1024) {
    this.addr = new StaticArray<u32>(capacity);
    this.lens = new StaticArray<u32>(capacity);
    this.bufs = new StaticArray<u32>(capacity);
    this.own = new StaticArray<u8>(capacity);
    this.ext = heap.alloc(<usize>capacity * offsetof<LogExtent>());
    this.triples = new StaticArray<u32>(capacity * 3);
  }

  /** full -- no room for another piece: the request is larger than the stream allows. */
  get full(): bool {
    return this.n == this.capacity;
  }

  /** push -- append a slot's payload; its buffer stays the stream's until consumed (held at the call's end if need be). */
  push(slot: Slot): void {
    if (this.n == this.capacity) abort("Stream: more pieces than its capacity");
    if (slot.len == 0) return;
    const i = this.n++;
    unchecked((this.addr[i] = <u32>slot.data()));
    unchecked((this.lens[i] = slot.len));
    unchecked((this.bufs[i] = slot.buf_idx));
    unchecked((this.own[i] = IN_SLOT));
    this.length += slot.len;
    if (i == 0) this.first();
    if (!this.listed) {
      this.listed = true;
      pushed.push(this);
    }
  }

  /** holdInSlot -- hold the buffers pushed in this call that the stream still needs (holdPending). */
  holdInSlot(): void {
    for (let i = 0; i < this.n; i++) {
      if (unchecked(this.own[i]) != IN_SLOT) continue;
      if (host.hold(unchecked(this.bufs[i]), this.conn) < 0) fail("Stream.push");
      unchecked((this.own[i] = HELD));
    }
  }

  /** fromRecord -- a read-only stream over a replayed record's bytes (nothing held). */
  static fromRecord(rec: Record, into: Stream): Stream {
    into.reset();
    const base = <u32>bufferAddress(0);
    const size = <u32>bufferAddress(1) - base;
    for (let e: u32 = 0; e < rec.nextents; e++) {
      const x = rec.extent(e);
      const i = into.n++;
      unchecked((into.addr[i] = x.addr));
      unchecked((into.lens[i] = x.len));
      unchecked((into.bufs[i] = (x.addr - base) / size));
      unchecked((into.own[i] = NOT_OURS));
      into.length += x.len;
    }
    into.first();
    return into;
  }

  /** byteAt -- byte i from the cursor. Inlined, with the common case first: a byte of the first piece. */
  @inline byteAt(i: u32): u8 {
    if (i < this.l0) return load<u8>(this.a0 + i);
    return this.byteAtFar(i);
  }

  /**
   * frontAddress, frontLength -- where the first piece lies, and its bytes
   * (0 and 0 when the stream is empty): a parser's fast path reads
   * load<u8>(frontAddress + i) for i < frontLength, byteAt(i) beyond.
   */
  get frontAddress(): usize {
    return this.a0;
  }

  get frontLength(): u32 {
    return this.l0;
  }

  /** first -- the first piece changed: keep a0/l0 (byteAt's fast path) in step. */
  private first(): void {
    this.a0 = this.n ? <usize>unchecked(this.addr[0]) : 0;
    this.l0 = this.n ? unchecked(this.lens[0]) : 0;
  }

  /** byteAtFar -- byteAt past the first piece (or none). */
  private byteAtFar(i: u32): u8 {
    for (let p = 0; p < this.n; p++) {
      const l = unchecked(this.lens[p]);
      if (i < l) return load<u8>(unchecked(this.addr[p]) + i);
      i -= l;
    }
    return 0;
  }

  /** contiguous -- the address of [off, off+len) if it lies in one piece, else 0. */
  contiguous(off: u32, len: u32): usize {
    for (let p = 0; p < this.n; p++) {
      const l = unchecked(this.lens[p]);
      if (off < l || (off == l && len == 0)) return off + len <= l ? <usize>unchecked(this.addr[p]) + off : 0;
      off -= l;
    }
    return 0;
  }

  /** indexOf -- position of byte b at or after from (and before `to`, if given), or -1. */
  indexOf(b: u8, from: u32 = 0, to: u32 = u32.MAX_VALUE): i32 {
    let base: u32 = 0;
    for (let p = 0; p < this.n && base < to; p++) {
      const l = unchecked(this.lens[p]);
      if (from < base + l) {
        const a = <usize>unchecked(this.addr[p]);
        const end = to - base < l ? to - base : l;
        for (let i = from > base ? from - base : 0; i < end; i++) if (load<u8>(a + i) == b) return <i32>(base + i);
      }
      base += l;
    }
    return -1;
  }

  /** indexOfEither -- position of the first byte at or after from that is a or b, or -1. */
  indexOfEither(a: u8, b: u8, from: u32 = 0): i32 {
    let base: u32 = 0;
    for (let p = 0; p < this.n; p++) {
      const l = unchecked(this.lens[p]);
      if (from < base + l) {
        const at = <usize>unchecked(this.addr[p]);
        for (let i = from > base ? from - base : 0; i < l; i++) {
          const c = load<u8>(at + i);
          if (c == a || c == b) return <i32>(base + i);
        }
      }
      base += l;
    }
    return -1;
  }

  /** indexOfCrlf -- position of the next "\r\n" at or after from, or -1. */
  indexOfCrlf(from: u32 = 0): i32 {
    let at = from;
    while (at < this.length) {
      const r = this.indexOf(13, at);
      if (r < 0 || <u32>r + 1 >= this.length) return -1;
      if (this.byteAt(<u32>r + 1) == 10) return r;
      at = <u32>r + 1;
    }
    return -1;
  }

  /** parseI64 -- the decimal number in [off, off+len) (a leading '-' allowed), or i64.MIN_VALUE. */
  parseI64(off: u32, len: u32): i64 {
    if (len == 0 || len > 19) return i64.MIN_VALUE;
    let neg = false;
    let i: u32 = 0;
    if (this.byteAt(off) == 45) {
      neg = true;
      i = 1;
      if (len == 1) return i64.MIN_VALUE;
    }
    let v: i64 = 0;
    for (; i < len; i++) {
      const c = this.byteAt(off + i);
      if (c < 48 || c > 57) return i64.MIN_VALUE;
      v = v * 10 + (c - 48);
    }
    return neg ? -v : v;
  }

  /** equalsNoCase -- do the len bytes at off spell s, ignoring ASCII case? */
  equalsNoCase(off: u32, len: u32, s: string): bool {
    if (<u32>s.length != len) return false;
    for (let i: u32 = 0; i < len; i++) {
      let c = this.byteAt(off + i);
      if (c >= 97 && c <= 122) c -= 32;
      let d = <u8>s.charCodeAt(i);
      if (d >= 97 && d <= 122) d -= 32;
      if (c != d) return false;
    }
    return true;
  }

  /** equalsRange -- are [a, a+len) and [b, b+len) the same bytes? */
  equalsRange(a: u32, b: u32, len: u32): bool {
    for (let i: u32 = 0; i < len; i++) if (this.byteAt(a + i) != this.byteAt(b + i)) return false;
    return true;
  }

  /**
   * view -- the address of [off, off+len) in one place: in the pool when it
   * lies in one piece (no copy), else copied into a scratch area shared by
   * all streams. Valid until the next view() on any stream; for hashing and
   * comparing a key without allocating (BytesMap).
   */
  view(off: u32, len: u32): usize {
    const at = this.contiguous(off, len);
    if (at || len == 0) return at;
    if (len > viewCap) {
      heap.free(viewBuf);
      viewCap = max<u32>(len, viewCap << 1);
      viewBuf = heap.alloc(viewCap);
    }
    this.copyTo(viewBuf, off, len);
    return viewBuf;
  }

  /** copyTo -- copy [off, off+len) to dst (for small things a handler keeps: keys, headers). */
  copyTo(dst: usize, off: u32, len: u32): void {
    for (let p = 0; p < this.n && len > 0; p++) {
      const l = unchecked(this.lens[p]);
      if (off >= l) {
        off -= l;
        continue;
      }
      const k = min(l - off, len);
      memory.copy(dst, <usize>unchecked(this.addr[p]) + off, k);
      dst += k;
      len -= k;
      off = 0;
    }
  }

  /**
   * toBytesKey -- [off, off+len) as a string of one UTF-16 unit per byte
   * (0..255, Latin-1): a copy that keeps every byte, so two different byte
   * sequences are always two different strings. For map keys taken from
   * binary data (Redis keys are byte strings); not for text.
   */
  toBytesKey(off: u32, len: u32): string {
    // @ts-ignore: __new is the runtime's allocator; asc knows it, std's type declarations (tsc) do not
    const out = changetype<string>(__new(<usize>len << 1, idof<string>()));
    const buf = heap.alloc(len);
    this.copyTo(buf, off, len);
    const dst = changetype<usize>(out);
    for (let i: usize = 0; i < <usize>len; i++) store<u16>(dst + (i << 1), load<u8>(buf + i));
    heap.free(buf);
    return out;
  }

  /**
   * toStringRange -- [off, off+len) decoded as UTF-8 (a copy; for small text
   * fields). Invalid UTF-8 is replaced, so distinct bytes can decode alike:
   * use toBytesKey for keys.
   */
  toStringRange(off: u32, len: u32): string {
    const buf = heap.alloc(len);
    this.copyTo(buf, off, len);
    const s = String.UTF8.decodeUnsafe(buf, len);
    heap.free(buf);
    return s;
  }

  /**
   * pieces -- write [off, off+len) as (buf_idx, offset in buffer, length)
   * triples into out (3 u32 each); returns how many. Where a value lives.
   */
  pieces(off: u32, len: u32, out: StaticArray<u32>): i32 {
    const base = bufferAddress(0);
    const size = <u32>(bufferAddress(1) - base);
    let k = 0;
    for (let p = 0; p < this.n && len > 0; p++) {
      const l = unchecked(this.lens[p]);
      if (off >= l) {
        off -= l;
        continue;
      }
      const take = min(l - off, len);
      const a = <u32>(unchecked(this.addr[p]) + off - <u32>base);
      if (k * 3 + 2 >= out.length) abort("Stream.pieces: out is too small");
      unchecked((out[k * 3] = a / size));   // in bounds: checked just above
      unchecked((out[k * 3 + 1] = a % size));
      unchecked((out[k * 3 + 2] = take));
      k++;
      len -= take;
      off = 0;
    }
    return k;
  }

  /** log -- log [off, off+len) as one record, by reference; its sequence number. */
  log(off: u32, len: u32): u64 {
    return this.logWith(off, len, false);
  }

  /** logCopy -- the copying baseline (for comparisons): the host copies the range, then logs the copy. */
  logCopy(off: u32, len: u32): u64 {
    return this.logWith(off, len, true);
  }

  /**
   * tryLog -- like log, but a refusal comes back as a negative Err code
   * instead of aborting: Err.POOL_FULL or Err.LOG_FULL when the pool is full
   * (answer the request with an error; the cleaner makes room).
   */
  tryLog(off: u32, len: u32): i64 {
    return <i64>this.logRaw(off, len, false);
  }

  private logWith(off: u32, len: u32, copy: bool): u64 {
    const r = this.logRaw(off, len, copy);
    if (r < 0) fail("Stream.log");
    return <u64>r;
  }

  /**
   * tryLogPacked -- like tryLog, but the bytes are copied densely into shared
   * pool buffers (log_pack), as the cleaner packs small live records: for a
   * small request while buffers are short (PressureFlags.BUFFERS), so that it
   * does not hold a whole buffer until the cleaner comes round to it. Where
   * the copy lies: packedPieces().
   */
  tryLogPacked(off: u32, len: u32): i64 {
    return <i64>host.log_pack(this.ext, this.extents(off, len), packOut, MAX_PACK_OUT);
  }

  /**
   * packedPieces -- after a tryLogPacked that succeeded: the copy's
   * (buf_idx, offset, length) triples, into `reuse` when it has the right
   * length, else a new array.
   */
  packedPieces(reuse: StaticArray<u32> | null = null): StaticArray<u32> {
    return packedTriples(packOut, MAX_PACK_OUT, reuse);
  }

  /**
   * loggedPieces -- after a log or tryLog by reference: the record's
   * (buf_idx, offset, length) triples (where the bytes lie), into `reuse`
   * when it has the right length, else a new array. Saves walking the
   * pieces a second time for an index of what was logged.
   */
  /** loggedCount -- the pieces of the record the last log or tryLog by reference logged (loggedPieces has 3 u32 each). */
  get loggedCount(): i32 {
    return <i32>this.lastK;
  }

  /** packedCount -- after a tryLogPacked that succeeded: the pieces its copy lies in (packedPieces has 3 u32 each). */
  get packedCount(): i32 {
    return <i32>min<u32>(load<u32>(packOut), MAX_PACK_OUT);
  }

  loggedPieces(reuse: StaticArray<u32> | null = null): StaticArray<u32> {
    const k = <i32>this.lastK * 3;
    const out = reuse && reuse.length == k ? reuse : new StaticArray<u32>(k);
    memory.copy(changetype<usize>(out), changetype<usize>(this.triples), <usize>k << 2);
    return out;
  }

  private logRaw(off: u32, len: u32, copy: bool): f64 {
    const k = this.extents(off, len);
    return copy ? host.log_copy_extents(this.ext, k) : host.log_extents(this.ext, k);
  }

  /** extents -- [off, off+len) as LogExtents in this.ext; how many. */
  private extents(off: u32, len: u32): u32 {
    const k = this.pieces(off, len, this.triples);
    this.lastK = <u32>k;
    toExtents(this.triples, k, this.ext);
    return <u32>k;
  }

  /** consume -- drop n bytes from the front; buffers no longer needed are given back. */
  consume(n: u32): void {
    if (n > this.length) n = this.length;
    this.length -= n;
    let drop = 0;
    while (drop < this.n && n >= unchecked(this.lens[drop])) {
      n -= unchecked(this.lens[drop]);
      if (unchecked(this.own[drop]) == HELD) host.unhold(unchecked(this.bufs[drop]), this.conn);
      drop++;
    }
    if (drop) {
      for (let i = drop; i < this.n; i++) {
        unchecked((this.addr[i - drop] = this.addr[i]));
        unchecked((this.lens[i - drop] = this.lens[i]));
        unchecked((this.bufs[i - drop] = this.bufs[i]));
        unchecked((this.own[i - drop] = this.own[i]));
      }
      this.n -= drop;
    }
    if (n && this.n) {
      unchecked((this.addr[0] += n));
      unchecked((this.lens[0] -= n));
    }
    this.first();
  }

  /** reset -- give every held buffer back and empty the stream. */
  reset(): void {
    for (let i = 0; i < this.n; i++) if (unchecked(this.own[i]) == HELD) host.unhold(unchecked(this.bufs[i]), this.conn);
    this.n = 0;
    this.length = 0;
    this.first();
  }
}

/**
 * Streams -- one Stream per connection, made on first use: of(conn) in on_rx,
 * close(conn) in on_close (it gives back whatever the connection still holds).
 */
export class Streams {
  private map: Map<u32, Stream> = new Map<u32, Stream>();
  // The stream of() found last: a connection's bytes come as a run of slots
  // (one receive fills several buffers), so most lookups are the last one.
  private last: Stream | null = null;

  /** of -- the connection's stream. */
  of(conn: u32): Stream {
    const last = this.last;
    if (last && last.conn == conn) return last;
    let s: Stream;
    if (this.map.has(conn)) {
      s = this.map.get(conn);
    } else {
      s = new Stream(conn);
      this.map.set(conn, s);
    }
    this.last = s;
    return s;
  }

  /** close -- forget a closed connection's stream, releasing its buffers. */
  close(conn: u32): void {
    if (!this.map.has(conn)) return;
    this.map.get(conn).reset();
    this.map.delete(conn);
    const last = this.last;
    if (last && last.conn == conn) this.last = null;
  }

  get size(): i32 {
    return this.map.size;
  }
}

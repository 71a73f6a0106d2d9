// layout.ts -- the pool's ABI as a handler sees it: @unmanaged classes that
// mirror native/paste.h field for field (a test compares offsetof<T>() of each
// with the C compiler's numbers), and the constants that go with them.

/** Wasm address of the netmap_if: window offset 0. */
// @ts-ignore: decorator
@inline export const WINDOW_BASE: usize = 0x00200000;
/** The handler ABI version this SDK speaks. */
// @ts-ignore: decorator
@inline export const ABI_VERSION: i32 = 1;

export namespace SlotFlags {
  // @ts-ignore: decorator
  @inline export const BUF_CHANGED: u16 = 0x0001;
  // @ts-ignore: decorator
  @inline export const REPORT: u16 = 0x0002;
  // @ts-ignore: decorator
  @inline export const FORWARD: u16 = 0x0004;
  // @ts-ignore: decorator
  @inline export const NO_LEARN: u16 = 0x0008;
  // @ts-ignore: decorator
  @inline export const INDIRECT: u16 = 0x0010;
  // @ts-ignore: decorator
  @inline export const MOREFRAG: u16 = 0x0020;
}

/** Error codes the imports return (negative), as in native/paste.h. */
export namespace Err {
  // @ts-ignore: decorator
  @inline export const LOG_FULL: i32 = -14;
  // @ts-ignore: decorator
  @inline export const POOL_FULL: i32 = -15;
  // @ts-ignore: decorator
  @inline export const HANDLER: i32 = -16;
}

// PASTE packs the connection and the data offset into slot.ptr.
// @ts-ignore: decorator
@inline const PTR_FD_MASK: u64 = 0x000000ffffffff00;
// @ts-ignore: decorator
@inline const PTR_OFF_MASK: u64 = 0x0003ff0000000000;

/** struct netmap_slot (16 bytes). */
@unmanaged
export class Slot {
  buf_idx: u32;
  len: u16;
  flags: u16;
  ptr: u64;

  /** The connection this data arrived on. */
  get conn(): u32 {
    return <u32>((this.ptr & PTR_FD_MASK) >> 8);
  }
  /** Where the payload starts in the buffer. */
  get dataOffset(): u32 {
    return <u32>((this.ptr & PTR_OFF_MASK) >> 40);
  }
  /** Wasm address of the payload, in place in the pool. */
  data(): usize {
    return bufferAddress(this.buf_idx) + this.dataOffset;
  }
}

/** struct netmap_ring header (256 bytes); slots follow at offset 256. */
@unmanaged
export class Ring {
  buf_ofs: i64;
  num_slots: u32;
  nr_buf_size: u32;
  ringid: u16;
  dir: u16;
  /** (handler) first slot the handler owns */
  head: u32;
  /** (handler) wakeup point */
  cur: u32;
  /** (host) first slot the host owns: [head, tail) is the handler's */
  tail: u32;
  flags: u32;
  pad0: u32;
  ts_sec: i64;
  ts_usec: i64;
  offset_mask: u64;
  buf_align: u64;

  /** Slot i, in place. */
  // @ts-ignore: decorator
  @inline slot(i: u32): Slot {
    return changetype<Slot>(changetype<usize>(this) + RING_SLOTS_OFFSET + (<usize>i << 4));
  }
  /** netmap's nm_ring_next. */
  // @ts-ignore: decorator
  @inline next(i: u32): u32 {
    return i + 1 == this.num_slots ? 0 : i + 1;
  }
  /** Slots the handler owns now. */
  get space(): u32 {
    return this.tail >= this.head ? this.tail - this.head : this.num_slots - this.head + this.tail;
  }
  /** Give every slot back to the host: head = cur = tail. */
  release(): void {
    this.head = this.cur = this.tail;
  }
  /** Give slots back up to (not including) slot i. */
  releaseTo(i: u32): void {
    this.head = this.cur = i;
  }
}

// @ts-ignore: decorator
@inline export const RING_SLOTS_OFFSET: usize = 256;

/** struct netmap_if header (56 bytes); ring offsets follow. */
@unmanaged
export class NetmapIf {
  name0: u64;
  name1: u64;
  ni_version: u32;
  ni_flags: u32;
  ni_tx_rings: u32;
  ni_rx_rings: u32;
  ni_bufs_head: u32;
  ni_host_tx_rings: u32;
  ni_host_rx_rings: u32;
  spare0: u32;
  spare1: u32;
  spare2: u32;
}

/** One piece of a record handed to a handler: Wasm address and length. */
@unmanaged
export class Extent {
  addr: u32;
  len: u32;
}

/** A packed log extent, as log_extents() takes them (struct paste_extent). */
@unmanaged
export class LogExtent {
  buf_idx: u32;
  off: u16;
  len: u16;
}

/** toExtents -- the first n (buf_idx, offset, length) triples as LogExtents at dst, for the logging imports. */
export function toExtents(triples: StaticArray<u32>, n: i32, dst: usize): void {
  for (let k = 0; k < n; k++) {
    const e = changetype<LogExtent>(dst + <usize>k * offsetof<LogExtent>());
    e.buf_idx = unchecked(triples[k * 3]);
    e.off = <u16>unchecked(triples[k * 3 + 1]);
    e.len = <u16>unchecked(triples[k * 3 + 2]);
  }
}

/**
 * packedTriples -- log_pack's answer at out (a u32 count, 4 bytes of
 * padding, then room for cap LogExtents) as triples. Into `reuse` when it
 * has the right length (a moved record usually keeps its piece count: no
 * garbage for the collector), else into a new array.
 */
export function packedTriples(out: usize, cap: u32, reuse: StaticArray<u32> | null = null): StaticArray<u32> {
  const m = min<u32>(load<u32>(out), cap);
  const t = reuse && <u32>reuse.length == m * 3 ? reuse : new StaticArray<u32>(<i32>m * 3);
  for (let k: u32 = 0; k < m; k++) {
    const e = changetype<LogExtent>(out + 8 + <usize>k * offsetof<LogExtent>());
    unchecked((t[k * 3] = e.buf_idx));
    unchecked((t[k * 3 + 1] = e.off));
    unchecked((t[k * 3 + 2] = e.len));
  }
  return t;
}

/** The pool's space, as pressure() reads it (struct paste_pressure). */
@unmanaged
export class Pressure {
  free_bufs: u32;
  nbufs: u32;
  reserve_bufs: u32;
  flags: u32;
  log_used: u64;
  log_capacity: u64;
  log_reserve: u64;
  live_bufs: u32;
  ring_bufs: u32;
}

/** Pressure.flags: why the host calls on_clean. */
export namespace PressureFlags {
  /** Free buffers below a quarter of the pool. */
  // @ts-ignore: decorator
  @inline export const BUFFERS: u32 = 0x1;
  /** The log more than half full. */
  // @ts-ignore: decorator
  @inline export const LOG: u32 = 0x2;
  /** In the reserve: log() outside on_clean is refused (Err.POOL_FULL or Err.LOG_FULL). */
  // @ts-ignore: decorator
  @inline export const FULL: u32 = 0x4;
}

/** A record being replayed (struct paste_wasm_record); extents follow at 16. */
@unmanaged
export class Record {
  seq: u64;
  len: u32;
  nextents: u32;

  /** Extent i: the payload's bytes in place in the pool. */
  // @ts-ignore: decorator
  @inline extent(i: u32): Extent {
    return changetype<Extent>(changetype<usize>(this) + 16 + (<usize>i << 3));
  }
  /** Byte i of the payload, across extents. */
  byteAt(i: u32): u8 {
    for (let e: u32 = 0; e < this.nextents; e++) {
      const x = this.extent(e);
      if (i < x.len) return load<u8>(x.addr + i);
      i -= x.len;
    }
    return 0;
  }
}

let bufBase: usize = 0;
let bufSize: usize = 0;

/** bufferAddress -- Wasm address of pool buffer idx (netmap's BUF(ring, idx)). */
export function bufferAddress(idx: u32): usize {
  if (bufBase == 0) {
    // Every ring's buffers are the same region: read it from the first ring.
    const ring = changetype<Ring>(WINDOW_BASE + <usize>load<i64>(WINDOW_BASE + offsetof<NetmapIf>()));
    bufBase = changetype<usize>(ring) + <usize>ring.buf_ofs;
    bufSize = ring.nr_buf_size;
  }
  return bufBase + <usize>idx * bufSize;
}

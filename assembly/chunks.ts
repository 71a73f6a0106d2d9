// chunks.ts -- arrays of references cut into chunks of 4096, for the SDK's
// containers that grow to millions (BytesMap's slots, the Cleaner's queue).
//
// Why: the collector (AssemblyScript's incremental "itcms") marks an object
// by visiting all of its references in one step. A million-slot array of
// references is one step of a million visits, each a cache miss on the
// object it names: measured on kv-wal at a million keys, one such step held
// a batch for over 500 ms (node --cpu-prof: ~lib/rt/itcms/__visit, called
// from StaticArray<...>~visit), and the host's watchdog stopped the handler.
// In chunks, every step visits at most 4096, and the collector's pacing
// spreads the rest across the allocations that follow.

const SHIFT: u32 = 12;
const SIZE: u32 = 1 << SHIFT;
const MASK: u32 = SIZE - 1;

/** A fixed-capacity array of references (null at first), in chunks. */
export class Chunks<T> {
  private parts: StaticArray<StaticArray<T | null>>;

  constructor(readonly capacity: u32) {
    const n = (capacity + MASK) >> SHIFT;
    this.parts = new StaticArray<StaticArray<T | null>>(<i32>n);
    for (let i: u32 = 0; i < n; i++) {
      unchecked((this.parts[i] = new StaticArray<T | null>(<i32>min<u32>(SIZE, capacity - (i << SHIFT)))));
    }
  }

  @inline get(i: u32): T | null {
    return unchecked(unchecked(this.parts[i >> SHIFT])[i & MASK]);
  }

  @inline set(i: u32, v: T | null): void {
    unchecked((unchecked(this.parts[i >> SHIFT])[i & MASK] = v));
  }
}

/**
 * A queue of references (push at the back, drop from the front), in chunks.
 * Each element carries a u64 tag, fixed when it is pushed: the Cleaner keeps
 * there the sequence number a record had when it was queued, so that a
 * record changed in place and queued again leaves its earlier places stale.
 */
export class ChunkQueue<T> {
  private parts: Array<StaticArray<T | null>> = [];
  private tags: Array<StaticArray<u64>> = [];
  private head: u32 = 0;          // index of the first element in parts[0]
  private count: u32 = 0;

  get length(): i32 {
    return <i32>this.count;
  }

  push(v: T, tag: u64 = 0): void {
    const at = this.head + this.count;
    if ((at >> SHIFT) >= <u32>this.parts.length) {
      this.parts.push(new StaticArray<T | null>(<i32>SIZE));
      this.tags.push(new StaticArray<u64>(<i32>SIZE));
    }
    unchecked((unchecked(this.parts[at >> SHIFT])[at & MASK] = v));
    unchecked((unchecked(this.tags[at >> SHIFT])[at & MASK] = tag));
    this.count++;
  }

  /** at -- element i from the front (0 <= i < length). */
  at(i: i32): T {
    const k = this.head + <u32>i;
    return changetype<T>(unchecked(unchecked(this.parts[k >> SHIFT])[k & MASK]));
  }

  /** tagAt -- the tag element i was pushed with. */
  tagAt(i: i32): u64 {
    const k = this.head + <u32>i;
    return unchecked(unchecked(this.tags[k >> SHIFT])[k & MASK]);
  }

  /** drop -- forget the first n elements; whole chunks behind the front go to the collector. */
  drop(n: i32): void {
    const k = min<u32>(<u32>n, this.count);
    let from = this.head;
    const to = this.head + k;
    this.count -= k;
    this.head = to;
    const whole = to >> SHIFT;
    if (whole) {
      this.parts.splice(0, <i32>whole);   // a few hundred chunk references at a million elements
      this.tags.splice(0, <i32>whole);
      this.head = to & MASK;
      from = 0;
    }
    if (this.parts.length) {
      const front = unchecked(this.parts[0]);
      for (let i = from; i < this.head; i++) unchecked((front[i] = null));   // at most one chunk's worth
    }
  }
}

// bytesmap.ts -- a hash map keyed by byte strings, for a handler's index of
// what it logged (kv-wal's keys: Redis keys are bytes, not text).
//
// Why not Map<string, V>: at a million keys, a lookup in Map needs the key as
// a managed string (an allocation and a copy for every GET), walks a bucket
// and an entry object, and a SET costs two or three lookups (has, get, set).
// Measured on kv-wal at a million keys (node --cpu-prof, redis-benchmark
// -r 1000000 -d 16 -P 16), Map#find alone took a third of the server's CPU.
// Here a lookup hashes the bytes where they lie (the pool, or one scratch
// copy), probes a flat array of hashes (linear probing, at most 3/4 full),
// and compares bytes only where the hashes agree: one allocation per new key
// (its bytes), none per lookup, and set() hands back the value it replaced.
//
// Growing doubles the table and moves the old one's slots across a few at a
// time, from the stored hashes (no key is hashed again): a single doubling
// at once measured 128 ms at half a million keys.

import { Chunks } from "./chunks";

const EMPTY: u32 = 0;                // a slot never used: a probe run ends here
const TOMB: u32 = 1;                 // a slot freed in a table whose runs must stay whole
const MIN_CAPACITY = 16;
const MIGRATE_STEP = 64;             // old slots moved per set/delete while growing

/** hashBytes -- murmur3's 32-bit mix over [ptr, ptr+len): fast for short keys, good spread for similar ones. */
export function hashBytes(ptr: usize, len: u32): u32 {
  let h: u32 = 0x9747b28c ^ len;
  const end = ptr + (<usize>len & ~<usize>3);
  let p = ptr;
  for (; p < end; p += 4) {
    let k = load<u32>(p) * 0xcc9e2d51;
    k = rotl<u32>(k, 15) * 0x1b873593;
    h = rotl<u32>(h ^ k, 13) * 5 + 0xe6546b64;
  }
  let t: u32 = 0;
  const rest = len & 3;
  if (rest == 3) t ^= <u32>load<u8>(p + 2) << 16;
  if (rest >= 2) t ^= <u32>load<u8>(p + 1) << 8;
  if (rest >= 1) {
    t ^= <u32>load<u8>(p);
    h ^= rotl<u32>(t * 0xcc9e2d51, 15) * 0x1b873593;
  }
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h <= TOMB ? h + 2 : h;
}

/** One open-addressing table: hashes (EMPTY or TOMB for a free slot), the keys' bytes, the values. */
class Table<V> {
  hashes: StaticArray<u32>;
  keys: Chunks<ArrayBuffer>;          // in chunks: the collector visits 4096 at a time (chunks.ts)
  vals: Chunks<V>;
  mask: u32;

  constructor(capacity: i32) {
    this.hashes = new StaticArray<u32>(capacity);
    this.keys = new Chunks<ArrayBuffer>(<u32>capacity);
    this.vals = new Chunks<V>(<u32>capacity);
    this.mask = <u32>capacity - 1;
  }

  /** find -- the slot holding the key, or -1. A run ends at an EMPTY slot; TOMBs are passed over. */
  find(ptr: usize, len: u32, h: u32): i32 {
    const mask = this.mask;
    let i = h & mask;
    let hi = unchecked(this.hashes[i]);
    while (hi != EMPTY) {                 // never full: every run ends
      if (hi == h) {
        const k = changetype<ArrayBuffer>(this.keys.get(i));
        if (<u32>k.byteLength == len && memory.compare(changetype<usize>(k), ptr, len) == 0) return <i32>i;
      }
      i = (i + 1) & mask;
      hi = unchecked(this.hashes[i]);
    }
    return -1;
  }

  /** put -- store at the first free slot of h's run (the key is known to be absent). */
  put(h: u32, key: ArrayBuffer, v: V | null): void {
    const mask = this.mask;
    let i = h & mask;
    while (unchecked(this.hashes[i]) > TOMB) i = (i + 1) & mask;
    unchecked((this.hashes[i] = h));
    this.keys.set(i, key);
    this.vals.set(i, v);
  }

  /** empty -- free slot i (TOMB: the old table while it migrates, where runs must stay whole). */
  empty(i: i32, mark: u32): void {
    unchecked((this.hashes[i] = mark));
    this.keys.set(<u32>i, null);
    this.vals.set(<u32>i, null);
  }

  /** remove -- free slot i by backward shift: pull later members of its run into the hole, so no tombstone is left. */
  remove(i: i32): void {
    const mask = this.mask;
    let j = <u32>i;
    for (;;) {
      j = (j + 1) & mask;
      const hj = unchecked(this.hashes[j]);
      if (hj == EMPTY) break;
      if (((j - (hj & mask)) & mask) >= ((j - <u32>i) & mask)) {
        unchecked((this.hashes[i] = hj));
        this.keys.set(<u32>i, this.keys.get(j));
        this.vals.set(<u32>i, this.vals.get(j));
        i = <i32>j;
      }
    }
    this.empty(i, EMPTY);
  }
}

/**
 * A map from byte strings to V (a class). Keys are copied in on insert;
 * lookups take (ptr, len). Growing is incremental, as Redis's dict rehashes:
 * the table doubles, and every later call moves a few slots of the old one
 * across, so no single call pays for a million keys.
 */
export class BytesMap<V> {
  private cur: Table<V> = new Table<V>(MIN_CAPACITY);
  private old: Table<V> | null = null;   // being moved into cur, slot by slot
  private moved: i32 = 0;                // old's slots [0, moved) are moved
  private count: i32 = 0;

  get size(): i32 {
    return this.count;
  }

  /** get -- the value for the key at [ptr, ptr+len), or null. */
  get(ptr: usize, len: u32): V | null {
    const h = hashBytes(ptr, len);
    const i = this.cur.find(ptr, len, h);
    if (i >= 0) return this.cur.vals.get(<u32>i);
    const old = this.old;
    if (!old) return null;
    const j = old.find(ptr, len, h);
    return j < 0 ? null : old.vals.get(<u32>j);
  }

  has(ptr: usize, len: u32): bool {
    return this.get(ptr, len) != null;
  }

  /** set -- map the key to v; returns the value it had (null if it is new). */
  set(ptr: usize, len: u32, v: V): V | null {
    this.migrate();
    const h = hashBytes(ptr, len);
    const cur = this.cur;
    const i = cur.find(ptr, len, h);
    if (i >= 0) {
      const prev = cur.vals.get(<u32>i);
      cur.vals.set(<u32>i, v);
      return prev;
    }
    const old = this.old;
    if (old) {
      const j = old.find(ptr, len, h);
      if (j >= 0) {
        const prev = old.vals.get(<u32>j);
        old.vals.set(<u32>j, v);         // stays where it is until its slot is moved
        return prev;
      }
    }
    if (!old && <u64>(this.count + 1) * 4 > <u64>(cur.mask + 1) * 3) this.grow();
    const key = new ArrayBuffer(<i32>len);
    memory.copy(changetype<usize>(key), ptr, len);
    this.cur.put(h, key, v);
    this.count++;
    return null;
  }

  /** delete -- remove the key; returns the value it had (null if absent). */
  delete(ptr: usize, len: u32): V | null {
    this.migrate();
    const h = hashBytes(ptr, len);
    const i = this.cur.find(ptr, len, h);
    if (i >= 0) {
      const prev = this.cur.vals.get(<u32>i);
      this.cur.remove(i);                     // cur never holds a TOMB
      this.count--;
      return prev;
    }
    const old = this.old;
    if (!old) return null;
    const j = old.find(ptr, len, h);
    if (j < 0) return null;
    const prev = old.vals.get(<u32>j);
    old.empty(j, TOMB);
    this.count--;
    return prev;
  }

  /** clear -- forget every key (the old tables go to the collector). */
  clear(): void {
    this.cur = new Table<V>(MIN_CAPACITY);
    this.old = null;
    this.moved = 0;
    this.count = 0;
  }

  /** grow -- start moving into a table twice the size. */
  private grow(): void {
    this.old = this.cur;
    this.moved = 0;
    this.cur = new Table<V>(<i32>(this.cur.mask + 1) << 1);
  }

  /** migrate -- move the next MIGRATE_STEP slots of the old table (if any) into the current one. */
  private migrate(): void {
    const old = this.old;
    if (!old) return;
    const end = min<i32>(this.moved + MIGRATE_STEP, old.hashes.length);
    for (let i = this.moved; i < end; i++) {
      const h = unchecked(old.hashes[i]);
      if (h <= TOMB) continue;
      this.cur.put(h, changetype<ArrayBuffer>(old.keys.get(<u32>i)), old.vals.get(<u32>i));
      old.empty(i, TOMB);              // later slots' runs pass through it
    }
    this.moved = end;
    if (end == old.hashes.length) this.old = null;
  }
}

// pool.ts -- the Pool type: a pool file opened through the native library.
// Pool.create formats a file; Pool.open validates, locks and maps one;
// mapWindow puts its rings and buffers into a handler's memory.

import { PoolClosedError } from "./errors.js";
import { CONST, FLUSHES, MEDIA, PERSIST_MODES, type PersistMode } from "./layout.js";
import { check, native } from "./native.js";
import { Window } from "./window.js";

export interface CreateOptions {
  /** File size in bytes. */
  size: number;
  /** Bytes per buffer, a power of two from 512 to 32768 (default 2048). */
  bufSize?: number;
  /** Ring pairs, one TX and one RX per data-path worker (default 1). */
  rings?: number;
  /** Slots per ring (default 1024). */
  slots?: number;
  /** Bytes of the log index region (default 3/8 of size less the rings' buffers, at least 256 KiB). */
  logSize?: number;
  /** Persistence mode the pool opens with unless overridden (default auto). */
  persist?: PersistMode;
  /** Replace an existing file (refused while another process has it open). */
  force?: boolean;
}

export interface OpenOptions {
  /** Inspect only: never writes, never blocks on a running host's lock. */
  readOnly?: boolean;
  /** Override the pool's persistence preference for this open. */
  persist?: PersistMode;
}

export interface PoolInfo {
  path: string;
  uuid: string;
  formatVersion: number;
  createdAt: string;
  persist: {
    mode: Exclude<PersistMode, "auto">;
    reason: string;
    preference: PersistMode;
    medium: (typeof MEDIA)[number];
    filesystem: string;
  };
  flush: (typeof FLUSHES)[number];
  geometry: {
    poolSize: number;
    bufSize: number;
    buffers: number;
    ringBuffers: number;
    rings: number;
    slotsPerRing: number;
    logOffset: number;
    logSize: number;
    ringOffset: number;
    ringSize: number;
    bufOffset: number;
    windowSize: number;
    windowBase: number;
    handlerBase: number;
  };
  log: { head: number; tail: number; headSeq: number; capacity: number; usedBytes: number };
  state: { cleanShutdown: boolean; openCount: number; lastOpenAt: string | null; inUse: boolean; ownerPid: number };
}

function persistIndex(mode: PersistMode | undefined): number {
  return mode === undefined ? 0 : PERSIST_MODES.indexOf(mode);
}

function uuidString(bytes: number[]): string {
  const h = bytes.map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Nanosecond timestamps pass 2^53, so koffi hands them over as BigInt.
function isoFromNs(ns: number | bigint): string {
  return new Date(Number(BigInt(ns) / 1_000_000n)).toISOString();
}

export class Pool {
  #handle: unknown;
  /** Windows mapped, newest last: one, or two while a deploy makes the next handler's memory ready. */
  #windows: Window[] = [];
  /** File offset of buffer 0 and the buffer size: constant for the pool's life. */
  readonly bufOffset: number;
  readonly bufSize: number;
  readonly buffers: number;
  readonly ringOffset: number;
  readonly windowSize: number;

  private constructor(
    handle: unknown,
    readonly path: string,
    readonly readOnly: boolean,
  ) {
    this.#handle = handle;
    const i = this.#rawInfo();
    this.bufOffset = i.buf_ofs;
    this.bufSize = i.buf_size;
    this.buffers = i.nbufs;
    this.ringOffset = i.ring_ofs;
    this.windowSize = i.window_size;
  }

  /** create -- format a new pool file at path. */
  static create(path: string, o: CreateOptions): void {
    check(
      native().poolCreate(path, {
        size: o.size,
        log_size: o.logSize ?? 0,
        buf_size: o.bufSize ?? 0,
        nrings: o.rings ?? 0,
        ring_slots: o.slots ?? 0,
        persist: persistIndex(o.persist),
        force: o.force ? 1 : 0,
        reserved: 0,
      }),
    );
  }

  /**
   * attach -- the pool this process already holds open at path (native
   * paste_pool_attach): for a worker thread that takes over from a terminated
   * one. No validation, lock or recovery: all of that is done and still held.
   */
  static attach(path: string): Pool {
    const out: unknown[] = [null];
    check(native().poolAttach(path, out));
    return new Pool(out[0], path, false);
  }

  /** open -- validate, lock and map a pool. */
  static open(path: string, o: OpenOptions = {}): Pool {
    const out: unknown[] = [null];
    check(native().poolOpen(path, o.readOnly ? CONST.PASTE_OPEN_RDONLY : 0, persistIndex(o.persist), out));
    return new Pool(out[0], path, !!o.readOnly);
  }

  #live(): unknown {
    if (this.#handle === null) throw new PoolClosedError(`pool ${this.path} is closed`);
    return this.#handle;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  #rawInfo(): any {
    const out: Record<string, unknown> = {};
    check(native().poolInfo(this.#live(), out));
    return out;
  }

  info(): PoolInfo {
    const n = native();
    const i = this.#rawInfo();
    return {
      path: this.path,
      uuid: uuidString(i.uuid),
      formatVersion: i.version,
      createdAt: isoFromNs(i.created_ns),
      persist: {
        mode: PERSIST_MODES[i.persist] as Exclude<PersistMode, "auto">,
        reason: n.poolPersistReason(this.#live()),
        preference: PERSIST_MODES[i.persist_pref],
        medium: MEDIA[i.medium],
        filesystem: n.poolFsName(this.#live()),
      },
      flush: FLUSHES[i.flush],
      geometry: {
        poolSize: i.pool_size,
        bufSize: i.buf_size,
        buffers: i.nbufs,
        ringBuffers: i.ring_bufs,
        rings: i.nrings,
        slotsPerRing: i.ring_slots,
        logOffset: i.log_ofs,
        logSize: i.log_size,
        ringOffset: i.ring_ofs,
        ringSize: i.ring_size,
        bufOffset: i.buf_ofs,
        windowSize: i.window_size,
        windowBase: i.window_base,
        handlerBase: i.handler_base,
      },
      log: {
        head: i.log_head,
        tail: i.log_tail,
        headSeq: i.log_head_seq,
        capacity: i.log_capacity,
        usedBytes: i.log_tail - i.log_head,
      },
      state: {
        cleanShutdown: i.clean === 1,
        openCount: i.open_count,
        lastOpenAt: i.last_open_ns ? isoFromNs(i.last_open_ns) : null,
        inUse: i.in_use === 1,
        ownerPid: i.owner_pid,
      },
    };
  }

  /** bufferFileOffset -- where buffer idx starts in the pool file. */
  bufferFileOffset(idx: number): number {
    return this.bufOffset + idx * this.bufSize;
  }

  /** bufferWindowOffset -- where buffer idx starts in the window. */
  bufferWindowOffset(idx: number): number {
    return this.bufOffset - this.ringOffset + idx * this.bufSize;
  }

  /** bufferAddress -- the Wasm address of buffer idx once the window is mapped. */
  bufferAddress(idx: number): number {
    return CONST.PASTE_WINDOW_BASE + this.bufferWindowOffset(idx);
  }

  /** The native handle, for the runtime's calls (host-internal). */
  get handle(): unknown {
    return this.#live();
  }

  /** The window mapped last (the one the bound handler uses), or null. */
  get window(): Window | null {
    return this.#windows.at(-1) ?? null;
  }

  /** mapWindow -- map rings and buffers into memory at WINDOW_BASE; the pool keeps the memory alive. */
  mapWindow(memory: WebAssembly.Memory): Window {
    check(native().windowMap(this.#live(), memory.buffer, memory.buffer.byteLength));
    const w = new Window(memory, this.windowSize);
    this.#windows.push(w);
    return w;
  }

  /** unmapWindow -- give the memory zero pages back where a window was (default: every window). */
  unmapWindow(which?: Window): void {
    for (const w of which ? [which] : [...this.#windows]) {
      if (!this.#windows.includes(w)) continue;
      this.#windows = this.#windows.filter((x) => x !== w);
      check(native().windowUnmap(this.#live(), w.memory.buffer));
    }
  }

  /** persistWindow -- make window bytes [off, off+len) durable in the pool's persistence mode. */
  persistWindow(off: number, len: number): void {
    check(native().persistWindow(this.#live(), off, len));
  }

  /** close -- unmap and unlock; clean marks the shutdown clean (default). */
  close({ clean = true }: { clean?: boolean } = {}): void {
    if (this.#handle === null) return;
    try {
      this.unmapWindow();
    } finally {
      const h = this.#handle;
      this.#handle = null;
      this.#windows = [];
      check(native().poolClose(h, clean ? 1 : 0));
    }
  }
}

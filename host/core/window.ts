// window.ts -- the zero-copy window: the pool's rings and buffers mapped
// MAP_SHARED|MAP_FIXED into a handler's WebAssembly.Memory at WINDOW_BASE, so
// Wasm loads and stores at those addresses are loads and stores to the pool.
//
// wasm32 memory addresses reach 4 GiB. The handler's own data and heap start at
// HANDLER_BASE (2 GiB, `asc --memoryBase`), so the window may span at most
// [WINDOW_BASE, HANDLER_BASE) = 2 GiB - 2 MiB. V8 reserves the whole 4 GiB range
// up front and grows a memory in place; pages of the initial size cost nothing
// until touched. Should an engine ever move a memory on grow, the window would
// silently stop aliasing the pool, so after every growth we compare the base
// address and stop (WindowMovedError) if it changed (docs/design.md, invariant 2).

import { CONST } from "./layout.js";
import { native } from "./native.js";
import { WindowMovedError } from "./errors.js";

export const WASM_PAGE = 65536;
export const WINDOW_BASE = CONST.PASTE_WINDOW_BASE;
export const HANDLER_BASE = CONST.PASTE_HANDLER_BASE;
export const WINDOW_MAX = CONST.PASTE_WINDOW_MAX;
const MAX_PAGES = 65536; // 4 GiB: the whole wasm32 address space

/** Pages for a handler's own data and heap above HANDLER_BASE: the rest of wasm32 (2 GiB). */
export const DEFAULT_HEAP_PAGES = MAX_PAGES - HANDLER_BASE / WASM_PAGE;

/**
 * createHandlerMemory -- a memory sized up front: [0, 2 GiB) for the window,
 * heapPages above it. By default it is the whole 4 GiB wasm32 space at once
 * (initial = maximum), so it never grows: untouched pages cost nothing, the
 * native side's bounds on handler pointers never go stale, and the window can
 * never move. A handler that fills its 2 GiB heap gets an out-of-memory trap.
 * A smaller heapPages leaves room to grow (the tests use it to show that a
 * grow keeps the window), unless fixed: then heapPages is the handler's
 * memory limit (--memory-limit), and an allocator that wants more gets a
 * failed memory.grow, which AssemblyScript turns into a trap.
 */
export function createHandlerMemory(heapPages = DEFAULT_HEAP_PAGES, o: { fixed?: boolean } = {}): WebAssembly.Memory {
  const initial = HANDLER_BASE / WASM_PAGE + heapPages;
  return new WebAssembly.Memory({ initial, maximum: o.fixed ? initial : MAX_PAGES });
}

/** A pool's window inside one WebAssembly.Memory. Created by Pool.mapWindow(). */
export class Window {
  /** Host address of the memory's byte 0; it must never change. */
  readonly hostBase: number;
  /** Wasm address of window offset 0 (the netmap_if). */
  readonly address = WINDOW_BASE;
  #seenLength: number;

  constructor(
    readonly memory: WebAssembly.Memory,
    /** Bytes mapped: the pool's ring and buffer regions. */
    readonly size: number,
  ) {
    this.hostBase = native().addr(memory.buffer) as number;
    this.#seenLength = memory.buffer.byteLength;
  }

  /**
   * verify -- after anything that may have grown the memory (a handler call, a
   * grow), check the base address did not move. Cheap when nothing grew: one
   * length comparison, no native call.
   */
  verify(): void {
    const buf = this.memory.buffer;
    if (buf.byteLength === this.#seenLength) return;
    const now = native().addr(buf) as number;
    if (now !== this.hostBase) {
      throw new WindowMovedError(
        `WebAssembly.Memory moved from 0x${this.hostBase.toString(16)} to 0x${now.toString(16)} ` +
          `when it grew to ${buf.byteLength} bytes: the pool window is lost; stopping`,
      );
    }
    this.#seenLength = buf.byteLength;
  }

  /** grow -- memory.grow(pages), then verify(); returns the previous size in pages. */
  grow(pages: number): number {
    const before = this.memory.grow(pages);
    this.verify();
    return before;
  }

  /** liveView -- a Uint8Array over the window itself (not a copy); stale after a grow. */
  liveView(): Uint8Array {
    return new Uint8Array(this.memory.buffer, WINDOW_BASE, this.size);
  }
}

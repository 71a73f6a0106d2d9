// The window: the pool's buffers, mapped into a WebAssembly.Memory, are the
// pool file. Bytes written to the file are what Wasm loads; bytes Wasm stores
// are in the file after a persist. Proven on tmpfs (pmem mode) and on disk
// (msync mode).
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { Pool } from "../host/core/pool.js";
import { createHandlerMemory, HANDLER_BASE, WINDOW_BASE } from "../host/core/window.js";
import { ReadOnlyError, WindowError, WindowMovedError } from "../host/core/errors.js";
import { scratchDir, watModule } from "./helpers.js";

interface Probe {
  load8(addr: number): number;
  fill(addr: number, len: number, seed: number): void;
  grow(pages: number): number;
}

let probeModule: WebAssembly.Module;
beforeAll(async () => {
  probeModule = await watModule("window-probe.wat");
});

function instantiate(memory: WebAssembly.Memory): Probe {
  return new WebAssembly.Instance(probeModule, { env: { memory } }).exports as unknown as Probe;
}

function pattern(len: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length: len }, (_, i) => (seed + i * 7) & 0xff));
}

function readFileAt(path: string, off: number, len: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(len);
    readSync(fd, b, 0, len, off);
    return b;
  } finally {
    closeSync(fd);
  }
}

for (const [where, mode] of [["shm", "pmem"], ["disk", "msync"]] as const) {
  describe(`window on ${where} (${mode} mode)`, () => {
    it("file writes are seen by Wasm loads; Wasm stores reach the file after a persist", () => {
      const path = join(scratchDir(where), "w.pool");
      Pool.create(path, { size: 16 << 20, slots: 64 });
      const pool = Pool.open(path);
      try {
        expect(pool.info().persist.mode).toBe(mode);
        const memory = createHandlerMemory();
        pool.mapWindow(memory);
        const probe = instantiate(memory);

        // 1. file -> Wasm: write a buffer through a plain descriptor.
        const inBuf = 300;
        const sent = pattern(pool.bufSize, 11);
        const fd = openSync(path, "r+");
        try {
          writeSync(fd, sent, 0, sent.length, pool.bufferFileOffset(inBuf));
        } finally {
          closeSync(fd);
        }
        const addr = pool.bufferAddress(inBuf);
        expect(addr).toBeGreaterThanOrEqual(WINDOW_BASE);
        expect(addr + pool.bufSize).toBeLessThanOrEqual(HANDLER_BASE);
        const seen = Buffer.from(Array.from({ length: sent.length }, (_, i) => probe.load8(addr + i)));
        expect(seen.equals(sent)).toBe(true);

        // 2. Wasm -> file: the module stores into another buffer in place.
        const outBuf = pool.buffers - 1;   // the last buffer: the far end of the window
        probe.fill(pool.bufferAddress(outBuf), pool.bufSize, 99);
        pool.persistWindow(pool.bufferWindowOffset(outBuf), pool.bufSize);
        expect(readFileAt(path, pool.bufferFileOffset(outBuf), pool.bufSize).equals(pattern(pool.bufSize, 99))).toBe(true);
      } finally {
        pool.close();
      }
    });
  });
}

describe("window across memory growth and unmapping", () => {
  it("still aliases the pool after the host and the module grow the memory", () => {
    const path = join(scratchDir("shm"), "g.pool");
    Pool.create(path, { size: 16 << 20, slots: 64 });
    const pool = Pool.open(path);
    try {
      const memory = createHandlerMemory(256);   // room to grow (the default never grows)
      const window = pool.mapWindow(memory);
      const probe = instantiate(memory);
      const addr = pool.bufferAddress(42);
      probe.fill(addr, 64, 5);

      window.grow(16);                         // host-side grow
      expect(probe.grow(16)).toBeGreaterThan(0); // module-side grow
      window.verify();
      expect(memory.buffer.byteLength).toBe(HANDLER_BASE + (256 + 32) * 65536);

      // Store after growth: still the file.
      probe.fill(addr + 64, 64, 6);
      pool.persistWindow(pool.bufferWindowOffset(42), 128);
      expect(readFileAt(path, pool.bufferFileOffset(42), 128)).toEqual(Buffer.concat([pattern(64, 5), pattern(64, 6)]));
    } finally {
      pool.close();
    }
  });

  it("a moved memory is detected as fatal (simulated by swapping the memory under the window)", () => {
    const path = join(scratchDir("shm"), "m.pool");
    Pool.create(path, { size: 16 << 20, slots: 64 });
    const pool = Pool.open(path);
    try {
      const memory = createHandlerMemory(256);
      const window = pool.mapWindow(memory);
      const elsewhere = createHandlerMemory(1);
      Object.defineProperty(window, "memory", { value: elsewhere });
      elsewhere.grow(1);
      expect(() => window.verify()).toThrow(WindowMovedError);
      Object.defineProperty(window, "memory", { value: memory });
    } finally {
      pool.close();
    }
  });

  it("after unmap the memory holds zeros there and Wasm stores no longer reach the file", () => {
    const path = join(scratchDir("shm"), "u.pool");
    Pool.create(path, { size: 16 << 20, slots: 64 });
    const pool = Pool.open(path);
    const memory = createHandlerMemory();
    try {
      pool.mapWindow(memory);
      const probe = instantiate(memory);
      const addr = pool.bufferAddress(7);
      probe.fill(addr, 16, 1);
      pool.persistWindow(pool.bufferWindowOffset(7), 16);
      pool.unmapWindow();
      expect(probe.load8(addr)).toBe(0);
      probe.fill(addr, 16, 200);
      expect(readFileAt(path, pool.bufferFileOffset(7), 16)).toEqual(pattern(16, 1));
    } finally {
      pool.close();
    }
  });

  it("refuses a memory too small for the window, and a read-only pool", () => {
    const path = join(scratchDir("shm"), "s.pool");
    Pool.create(path, { size: 16 << 20, slots: 64 });
    const pool = Pool.open(path);
    try {
      expect(() => pool.mapWindow(new WebAssembly.Memory({ initial: 1 }))).toThrow(WindowError);
    } finally {
      pool.close();
    }
    const ro = Pool.open(path, { readOnly: true });
    try {
      expect(() => ro.mapWindow(createHandlerMemory())).toThrow(ReadOnlyError);
    } finally {
      ro.close();
    }
  });
});

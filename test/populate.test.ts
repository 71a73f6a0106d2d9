// A TCP port maps a memory-backed pool's pages when it starts serving
// (paste_pool_populate in native/pool.c), so no request pays the page fault
// of a buffer's first use; a disk pool's pages are left to fault, since a
// write fault is how the kernel learns which pages msync must write.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Runtime } from "../host/core/runtime.js";
import { root, scratchDir } from "./helpers.js";

const kvWal = join(root, "samples", "kv-wal", "kv-wal.wasm");

/** mappedBytes -- bytes of this process's mappings of path that have a page mapped (smaps Rss) */
function mappedBytes(path: string): number {
  let kib = 0;
  let ours = false;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) ours = line.endsWith(` ${path}`);
    else if (ours && line.startsWith("Rss:")) kib += Number(line.split(/\s+/)[1]);
  }
  return kib * 1024;
}

describe("the pool's pages at the start of serving", () => {
  for (const [where, persist, populated] of [["shm", "pmem", true], ["disk", "msync", false]] as const) {
    it(`${persist} on ${where === "shm" ? "tmpfs" : "a disk file"}: ${populated ? "every buffer page is mapped, natively and in the handler's window" : "left to fault in as used"}`, () => {
      const path = join(scratchDir(where), "p.pool");
      const rt = Runtime.open(path, { handler: kvWal, create: { size: 32 << 20 }, persist });
      try {
        const window = rt.pool.buffers * rt.pool.bufSize;   // the buffers alone: the bulk of the window
        const before = mappedBytes(path);
        expect(before).toBeLessThan(window / 2);
        rt.listen("127.0.0.1", 0);
        const after = mappedBytes(path);
        if (populated) expect(after).toBeGreaterThanOrEqual(2 * window);
        else expect(after).toBeLessThan(window / 2);
        // a deploy maps the next handler's window while serving: it is mapped whole at once too
        rt.replaceHandler(rt.prepareHandler(readFileSync(kvWal), "kv-wal again", new Uint8Array(0)));
        const deployed = mappedBytes(path);
        if (populated) expect(deployed).toBeGreaterThanOrEqual(2 * window);
        else expect(deployed).toBeLessThan(window / 2);
      } finally {
        rt.close();
      }
    });
  }
});

// Several runtimes in one thread stay apart: each handler's imports act on the
// worker of the runtime that called it, never on whichever was opened last,
// and a closed runtime refuses every call with PASTE_ERR_CLOSED.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PasteError } from "../host/core/errors.js";
import { Pool } from "../host/core/pool.js";
import { walkLog } from "../host/core/logwalk.js";
import { Runtime } from "../host/core/runtime.js";
import { root, scratchDir } from "./helpers.js";

const kvWal = join(root, "samples", "kv-wal", "kv-wal.wasm");
const resp = (...args: string[]) => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);

/** ask -- one request through a runtime's mem port and batch; the replies' text. */
function ask(rt: Runtime, ...args: string[]): string {
  expect(rt.memRequest(resp(...args), 7)).toBe(true);
  rt.runBatch();
  return rt.takeReplies().map((r) => r.data.toString("latin1")).join("");
}

function loggedValues(path: string): string[] {
  const pool = Pool.open(path, { readOnly: true });
  try {
    return Array.from(walkLog(pool), (r) => r.data.toString("latin1"));
  } finally {
    pool.close();
  }
}

describe("runtimes in one thread", () => {
  it("two kv-wal runtimes answer and log their own requests, in either order", () => {
    const dir = scratchDir("shm");
    const create = { size: 16 << 20 };
    const a = Runtime.open(join(dir, "a.pool"), { handler: kvWal, create });
    const b = Runtime.open(join(dir, "b.pool"), { handler: kvWal, create });
    try {
      expect(ask(a, "SET", "k", "from-a")).toBe("+OK\r\n");
      expect(ask(b, "SET", "k", "from-b")).toBe("+OK\r\n");
      expect(ask(a, "SET", "only-a", "1")).toBe("+OK\r\n");
      expect(ask(a, "GET", "k")).toBe("$6\r\nfrom-a\r\n");
      expect(ask(b, "GET", "k")).toBe("$6\r\nfrom-b\r\n");
      expect(ask(b, "GET", "only-a")).toBe("$-1\r\n");
      expect(a.stats().records).toBe(2);
      expect(b.stats().records).toBe(1);
    } finally {
      b.close();
      a.close();
    }
    const inA = loggedValues(join(dir, "a.pool"));
    const inB = loggedValues(join(dir, "b.pool"));
    expect(inA.some((r) => r.includes("from-a")) && inA.some((r) => r.includes("only-a"))).toBe(true);
    expect(inA.some((r) => r.includes("from-b"))).toBe(false);
    expect(inB).toHaveLength(1);
    expect(inB[0]).toContain("from-b");
  });

  it("a closed runtime answers PASTE_ERR_CLOSED; the other one keeps serving", () => {
    const dir = scratchDir("shm");
    const create = { size: 16 << 20 };
    const a = Runtime.open(join(dir, "a.pool"), { handler: kvWal, create });
    const b = Runtime.open(join(dir, "b.pool"), { handler: kvWal, create });
    try {
      a.close();
      const closed = (f: () => unknown) => {
        try {
          f();
        } catch (e) {
          return (e as PasteError).code;
        }
        return "no error";
      };
      expect(closed(() => a.memRequest(resp("PING")))).toBe("PASTE_ERR_CLOSED");
      expect(closed(() => a.runBatch())).toBe("PASTE_ERR_CLOSED");
      expect(closed(() => a.takeReplies())).toBe("PASTE_ERR_CLOSED");
      expect(closed(() => a.trim(1))).toBe("PASTE_ERR_CLOSED");
      expect(closed(() => a.stats())).toBe("PASTE_ERR_CLOSED");
      expect(ask(b, "SET", "k", "v")).toBe("+OK\r\n");
      expect(ask(b, "GET", "k")).toBe("$1\r\nv\r\n");
    } finally {
      b.close();
    }
  });
});

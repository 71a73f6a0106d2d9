// kv-wal's index (the SDK's BytesMap) against a model: random SET, GET, DEL,
// EXISTS and FLUSHALL over thousands of binary keys, enough for the table to
// grow many times (and be read, overwritten and deleted from while it moves
// across), every reply checked, then every key read back after a reopen
// (replay rebuilds the index from the log).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Runtime } from "../host/core/runtime.js";
import { root, scratchDir } from "./helpers.js";

const kvWal = join(root, "samples", "kv-wal", "kv-wal.wasm");

const resp = (...a: Buffer[]) => Buffer.concat([Buffer.from(`*${a.length}\r\n`), ...a.flatMap((x) => [Buffer.from(`$${x.length}\r\n`), x, Buffer.from("\r\n")])]);
const bulk = (v: Buffer | undefined) => (v ? Buffer.concat([Buffer.from(`$${v.length}\r\n`), v, Buffer.from("\r\n")]) : Buffer.from("$-1\r\n"));

/** xorshift32 -- a seeded generator, so a failure names a run that can be repeated. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** keyspace -- n distinct byte strings: short and long, NUL and 0xff bytes, common prefixes (near-equal hashes' worst case). */
function keyspace(n: number, r: () => number): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  while (out.length < n) {
    const kind = out.length % 4;
    const len = kind === 0 ? Math.floor(r() * 4) : kind === 1 ? 16 : Math.floor(r() * 40);
    const k = kind === 1 ? Buffer.from(`key:${String(out.length).padStart(12, "0")}`) : Buffer.from(Array.from({ length: len }, () => Math.floor(r() * 256)));
    if (seen.has(k.toString("hex"))) continue;
    seen.add(k.toString("hex"));
    out.push(k);
  }
  return out;
}

describe("kv-wal's index", () => {
  for (const seed of [1, 20261202]) {
    it(`agrees with a model over 40,000 random commands on 6,000 binary keys, and after a reopen (seed ${seed})`, () => {
      const r = rng(seed);
      const keys = keyspace(6000, r);
      const pool = join(scratchDir("shm"), "index.pool");
      const model = new Map<string, Buffer>();
      let rt = Runtime.open(pool, { handler: kvWal, create: { size: 64 << 20 } });
      try {
        for (let i = 0; i < 40_000;) {
          const want: Buffer[] = [];
          for (let k = 0; k < 64 && i < 40_000; k++, i++) {
            const x = r();
            const key = keys[Math.floor(r() * keys.length)];
            const id = key.toString("hex");
            let req: Buffer;
            if (x < 0.55) {
              const v = Buffer.from(`${i}:${"v".repeat(Math.floor(r() * 30))}`);
              req = resp(Buffer.from("SET"), key, v);
              model.set(id, v);
              want.push(Buffer.from("+OK\r\n"));
            } else if (x < 0.8) {
              req = resp(Buffer.from("GET"), key);
              want.push(bulk(model.get(id)));
            } else if (x < 0.9) {
              const more = keys[Math.floor(r() * keys.length)];
              const ids = [...new Set([id, more.toString("hex")])];
              const n = ids.filter((d) => model.delete(d)).length;
              req = resp(Buffer.from("DEL"), key, more);
              want.push(Buffer.from(`:${n}\r\n`));
            } else if (x < 0.9995) {
              req = resp(Buffer.from("EXISTS"), key);
              want.push(Buffer.from(`:${model.has(id) ? 1 : 0}\r\n`));
            } else {
              req = resp(Buffer.from("FLUSHALL"));
              model.clear();
              want.push(Buffer.from("+OK\r\n"));
            }
            expect(rt.memRequest(req, 1)).toBe(true);
          }
          rt.runBatch();
          rt.clean();
          const got = Buffer.concat(rt.takeReplies().map((x) => x.data)).toString("latin1");
          expect(got, `batch ending at command ${i}, seed ${seed}`).toBe(Buffer.concat(want).toString("latin1"));
        }
        rt.close();
        rt = Runtime.open(pool, { handler: kvWal });
        rt.memRequest(Buffer.from("*1\r\n$6\r\nDBSIZE\r\n"));
        rt.runBatch();
        expect(rt.takeReplies()[0].data.toString()).toBe(`:${model.size}\r\n`);
        for (let i = 0; i < keys.length; i += 64) {
          const batch = keys.slice(i, i + 64);
          for (const k of batch) expect(rt.memRequest(resp(Buffer.from("GET"), k), 1)).toBe(true);
          rt.runBatch();
          const got = Buffer.concat(rt.takeReplies().map((x) => x.data)).toString("latin1");
          expect(got, `keys ${i}.. after reopen, seed ${seed}`).toBe(Buffer.concat(batch.map((k) => bulk(model.get(k.toString("hex"))))).toString("latin1"));
        }
      } finally {
        rt.close();
      }
    });
  }
});

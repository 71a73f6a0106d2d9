// wal-append.fuzz.test.ts -- wal-append under generated frame streams:
// frames of every size up to the limit, empty and oversized ones, trims of
// any sequence number, split at random points. Its answers follow its
// protocol (samples/wal-append/README.md) exactly: one u64 per frame, a
// sequence number for a frame, 0 and a close for a refused one; and every
// frame it acknowledged is in its log, byte for byte.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { walkLog } from "../../host/core/logwalk.js";
import { Pool } from "../../host/core/pool.js";
import { root, startServer, type Server } from "../helpers.js";
import { fuzz } from "./config.js";
import { converse, splitAt } from "./wire.js";

const MAX_FRAME = 1 << 20;

type Frame = { kind: "data"; payload: Uint8Array } | { kind: "trim"; upTo: bigint } | { kind: "bad"; len: number };

const frame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((payload) => ({ kind: "data" as const, payload })) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((upTo) => ({ kind: "trim" as const, upTo })) },
  { weight: 1, arbitrary: fc.constantFrom(0, MAX_FRAME + 1, 0x7fffffff, 0xfffffffe).map((len) => ({ kind: "bad" as const, len })) },
);

function encode(f: Frame): Buffer {
  const h = Buffer.alloc(f.kind === "trim" ? 12 : 4);
  if (f.kind === "trim") {
    h.writeUInt32LE(0xffffffff, 0);
    h.writeBigUInt64LE(f.upTo, 4);
    return h;
  }
  if (f.kind === "bad") {
    h.writeUInt32LE(f.len, 0);
    return h;
  }
  h.writeUInt32LE(f.payload.length, 0);
  return Buffer.concat([h, f.payload]);
}

describe("wal-append under generated frames", () => {
  const dir = mkdtempSync("/dev/shm/paste-fuzz-wa-");
  const pool = join(dir, "wa.pool");
  let s: Server | undefined;
  beforeAll(async () => {
    s = await startServer({ pool, handler: join(root, "samples", "wal-append", "wal-append.wasm") });
  });
  afterAll(async () => {
    await s?.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers each frame by its protocol, and logs exactly what it acknowledged", async () => {
    const f = fuzz<[fc.Arbitrary<unknown>]>("wal-append", 40);
    const acked = new Map<bigint, Buffer>();
    let last = 0n;
    await fc.assert(fc.asyncProperty(fc.record({ frames: fc.array(frame, { minLength: 1, maxLength: 8 }), cuts: fc.array(fc.nat(25_000), { maxLength: 4 }) }), async ({ frames, cuts }) => {
      f.tick();
      // what the protocol says: frames up to the first refused one, each answered
      const upTo = frames.findIndex((x) => x.kind === "bad");
      const answered = upTo < 0 ? frames : frames.slice(0, upTo + 1);
      const wire = Buffer.concat(frames.map(encode));
      const got = await converse(s!.port, splitAt(wire, cuts), { idleMs: 200, until: (d) => d.length >= answered.length * 8 && upTo < 0 });
      const what = `frames ${JSON.stringify(frames.map((x) => (x.kind === "data" ? `data(${x.payload.length})` : x.kind === "trim" ? `trim(${x.upTo})` : `bad(${x.len})`)))}`;
      expect(got.data.length, `one u64 for each of ${what}`).toBe(answered.length * 8);
      expect(got.closed, `closed after a refused frame in ${what}`).toBe(upTo >= 0);
      answered.forEach((x, i) => {
        const v = got.data.readBigUInt64LE(i * 8);
        if (x.kind === "bad") expect(v, `0 for the refused frame in ${what}`).toBe(0n);
        if (x.kind === "data") {
          expect(v, `the next sequence number for frame ${i} of ${what}`).toBeGreaterThan(last);
          last = v;
          acked.set(v, Buffer.from(x.payload));
        }
      });
    }), f.parameters);
    expect(await s!.stop("SIGTERM")).toBe(0);
    const p = Pool.open(pool, { readOnly: true });
    try {
      // clients' trims released some; what is left is acknowledged frames, byte for byte
      const recs = [...walkLog(p)];
      for (const r of recs) expect(acked.get(BigInt(r.seq))?.equals(r.data), `record ${r.seq} is an acknowledged frame`).toBe(true);
      const first = recs.length ? BigInt(recs[0].seq) : last + 1n;
      expect(recs.length, "every acknowledged frame not trimmed is in the log").toBe([...acked.keys()].filter((k) => k >= first).length);
    } finally {
      p.close();
    }
  }, fuzz("wal-append", 40).timeoutMs);
});

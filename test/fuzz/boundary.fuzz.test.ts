// boundary.fuzz.test.ts -- the handler boundary: a test handler
// (fixtures/handlers/import-fuzz.ts) calls the host's imports with the raw
// arguments of generated frames, and overwrites ring fields with them. Every
// call gets its result or an error code; what the host cannot take (a bogus
// ring index, a buffer index twice) is refused and contained as a trap is.
// The host never crashes, serves the next connection, and its log verifies.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildFixture, runCli, startServer, threads, type Server } from "../helpers.js";
import { fuzz } from "./config.js";
import { converse } from "./wire.js";

const u32 = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 0, max: 4096 }),
  fc.constantFrom(65535, 65536, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff),
  fc.nat({ max: 0xffffffff }),
);
const f64 = fc.oneof(fc.integer({ min: 0, max: 100 }).map(Number), fc.constantFrom(-1, NaN, Infinity, 2 ** 53, 1e300, -0), fc.double());

export const frame = fc.record({ op: fc.nat(17), a: u32, b: u32, c: u32, d: u32, x: f64 });
type Frame = typeof frame extends fc.Arbitrary<infer T> ? T : never;

function encode(f: Frame): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt8(f.op, 0);
  b.writeUInt32LE(f.a, 4);
  b.writeUInt32LE(f.b, 8);
  b.writeUInt32LE(f.c, 12);
  b.writeUInt32LE(f.d, 16);
  b.writeDoubleLE(f.x, 20);
  return b;
}

describe("the handler boundary", () => {
  const dir = mkdtempSync("/dev/shm/paste-fuzz-boundary-");
  const pool = join(dir, "b.pool");
  let s: Server | undefined;
  beforeAll(async () => {
    s = await startServer({ pool, handler: await buildFixture("import-fuzz"), createSize: "16M" });
  });
  afterAll(async () => {
    await s?.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("random arguments to every import get a result or an error code; the host serves on and its log verifies", async () => {
    const f = fuzz<[fc.Arbitrary<unknown>]>("boundary", 25);
    await fc.assert(fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 8 }), async (frames) => {
      f.tick();
      const what = `frames ${JSON.stringify(frames)}`;
      // A case takes well under a second, a handler restart included: one
      // still running after 5 s is reported at once, with what the host is
      // doing, so that a run the test's timeout cuts off shows its evidence.
      const report = setTimeout(() => console.log(`slow case: still running 5 s after sending ${what}\nthe host said: ${s!.output().slice(-1500)}\nits threads:\n${threads(s!.child.pid)}`), 5_000);
      const got = await converse(s!.port, [Buffer.concat(frames.map(encode))], { idleMs: 150 });
      expect(s!.child.exitCode, `the host is still running after ${what}`).toBeNull();
      expect(got.data.length % 8, `whole answers to ${what}`).toBe(0);
      for (let i = 0; i < got.data.length; i += 8) {
        const r = got.data.readDoubleLE(i);
        expect(Number.isInteger(r) && r >= -64 && r < 2 ** 53, `result ${r} of ${what}`).toBe(true);
      }
      // and the next connection is served, within 30 s: a request that shares
      // a batch with a misdeed is dropped and its connection closed, and a
      // handler past its batch budget (a copy of 4096 extents of 64 KiB is
      // one) is stopped and restarted, which closes what arrives meanwhile
      let canary = Buffer.alloc(0);
      for (const end = Date.now() + 30_000; canary.length < 8 && Date.now() < end; ) {
        canary = (await converse(s!.port, [encode({ op: 9, a: 0, b: 0, c: 0, d: 0, x: 0 })], { idleMs: 10_000, until: (d) => d.length >= 8 })).data;
        if (canary.length < 8) await new Promise((r) => setTimeout(r, 200));
      }
      clearTimeout(report);
      if (canary.length < 8) expect.fail(`not served after ${what}; the host said: ${s!.output().slice(-4000)}\nits threads:\n${threads(s!.child.pid)}`);
      expect(canary.readDoubleLE(0)).toBeGreaterThanOrEqual(0);
    }), f.parameters);
    expect(await s!.stop("SIGTERM")).toBe(0);
    const v = runCli(["log", "verify", pool]);
    expect(v.status, v.out).toBe(0);
  }, fuzz("boundary", 25).timeoutMs);
});

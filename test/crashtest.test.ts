// Crash consistency under simulated power failure: every persist step of the
// commit path (payload and record flushes, fences, the tail, trims) as a crash
// point, with random cache evictions, recovery checked on every image; kv-wal's
// cleaner with images cut inside it and every key read back. And the checker's
// own tests: a captured image is the very image a crash writes, a build that
// persists the tail before the payload is caught, so is a store that
// acknowledges values it never logs.
import { spawnSync } from "node:child_process";
import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { PasteError } from "../host/core/errors.js";
import { CONST, STATE } from "../host/core/layout.js";
import { check, native } from "../host/core/native.js";
import { Pool } from "../host/core/pool.js";
import { Runtime } from "../host/core/runtime.js";
import { runCrashtest } from "../host/tools/crashtest.js";
import { buildFixture, buildVariant, memRequest, root, runCli, scratchDir } from "./helpers.js";

let logAll: string;
beforeAll(async () => {
  logAll = await buildFixture("log-all");
});

const kvWal = join(root, "samples", "kv-wal", "kv-wal.wasm");

/** logSome -- 40 requests of 600 B to log-all in batches of 6, trimming all but 12; stops at a simulated crash. */
function logSome(rt: Runtime): void {
  try {
    for (let k = 1; k <= 40; k++) {
      rt.memRequest(memRequest(k, 600), 1);
      if (k % 6 === 0 || k === 40) {
        rt.runBatch();
        rt.takeReplies();
        const c = rt.stats().committedSeq;
        if (c > 12) rt.trim(c - 12);
      }
    }
  } catch (e) {
    if (!(e instanceof PasteError && e.code === "PASTE_ERR_SIM_CRASHED")) throw e;
  }
}

describe("crashtest", () => {
  it("a logging handler with trims: every persist step, two eviction draws each, all recover", async () => {
    const r = await runCrashtest({ handler: logAll, images: 400, seed: 3 });
    expect(r.steps).toBeGreaterThan(100);
    expect(r.images).toBe(r.steps * 2);               // enumerated, not sampled
    expect(r.failures).toEqual([]);
    expect(r.passed).toBe(r.images);
    expect(r.committedMax).toBe(40);
    // images where the last batch's tail had not reached the media: recovery
    // found its records past the tail, and every check above held for them too
    expect(r.beyondTail).toBeGreaterThan(0);
    expect(r.beyondTail).toBeLessThan(r.images);
  }, 120_000);

  for (const [sample, workload] of [["wal-append", "frames"], ["kv-wal", "kv"], ["http-wal", "http"]] as const) {
    it(`the ${sample} sample: sampled crash images all recover`, async () => {
      const r = await runCrashtest({ handler: join(root, "samples", sample, `${sample}.wasm`), workload, images: 80, seed: 11 });
      expect(r.committedMax).toBe(40);                // the workload speaks the sample's protocol: every request logged
      expect(r.failures).toEqual([]);
      expect(r.passed).toBe(80);
    }, 120_000);
  }

  it("a captured image is byte for byte what a crash at that step writes, also when rebuilt over an image a check wrote into", () => {
    const dir = scratchDir("shm");
    const template = join(dir, "template.pool");
    Pool.create(template, { size: 4 << 20, slots: 64 });
    const copy = (to: string) => {
      copyFileSync(template, to);
      return to;
    };
    const points = [[30, 7], [30, 8], [95, 7], [96, 3], [118, 9]];   // [step, seed], ascending steps (of 121)
    const steps = BigUint64Array.from(points, ([st]) => BigInt(st));
    const seeds = BigUint64Array.from(points, ([, sd]) => BigInt(sd));
    const cap = Runtime.open(copy(join(dir, "cap.pool")), { handler: logAll, simulate: { crashAt: 0, seed: 0, image: "", capture: { steps, seeds } } });
    const scratch = join(dir, "scratch.pool");
    const taken: Record<string, number | bigint> = {};
    const images: Buffer[] = [];
    try {
      logSome(cap);
      for (let i = 0; i < points.length; i++) {
        expect(check(native().simTake(cap.pool.handle, scratch, taken))).toBe(1);
        expect(Number(taken.step)).toBe(points[i][0]);
        images.push(readFileSync(scratch));
        // a check writes into the scratch file (recovery, replay, close); the next image must undo that
        const v = Runtime.open(scratch, { handler: logAll });
        check(native().simTrack(cap.pool.handle, v.pool.handle));
        v.close();
      }
      expect(check(native().simTake(cap.pool.handle, scratch, taken))).toBe(0);
    } finally {
      cap.pool.close({ clean: false });
    }
    points.forEach(([st, sd], i) => {
      const image = join(dir, `crash-${i}.pool`);
      const rt = Runtime.open(copy(join(dir, `run-${i}.pool`)), { handler: logAll, simulate: { crashAt: st, seed: sd, image } });
      logSome(rt);
      try {
        rt.pool.close({ clean: false });
      } catch {
        /* the power is out: closing cannot make anything durable */
      }
      // the two runs' opens differ only in when they happened (struct paste_state last_open_ns)
      const crashed = readFileSync(image);
      const at = Number(STATE.last_open_ns) + CONST.PASTE_STATE_OFS;
      crashed.copy(images[i], at, at, at + 8);
      expect(images[i].equals(crashed), `the image of step ${st} seed ${sd}`).toBe(true);
    });
  }, 60_000);

  it("kv-wal's cleaner: images cut inside on_clean, where it packs live values into shared buffers, lose no acknowledged value", async () => {
    // 3000 SETs and DELs of 100 B values on 50 keys through a 4 MiB pool:
    // the host calls on_clean many times; every image is cut inside it
    const r = await runCrashtest({
      handler: kvWal, workload: "kv", requests: 3000, size: 100, keys: 50, poolSize: 4 << 20, aim: "clean", images: 40, seed: 2,
    });
    expect(r.stepKinds.clean).toBeGreaterThan(200);      // the cleaner ran, many times
    expect(r.stepKinds.trim).toBeGreaterThan(0);
    expect(r.imageKinds.clean).toBe(40);                 // and every image was cut inside it
    expect(r.imageKinds.pack).toBeGreaterThan(0);
    expect(r.keysChecked).toBe(40 * 50);                 // every key read back through the handler
    expect(r.failures).toEqual([]);
    expect(r.passed).toBe(40);
  }, 180_000);

  it("kv-wal's cleaner: images cut in its trims, and in the commit of large values it logs again by reference", async () => {
    const trims = await runCrashtest({
      handler: kvWal, workload: "kv", requests: 3000, size: 100, keys: 50, poolSize: 4 << 20, aim: "trim", images: 16, seed: 4,
    });
    expect(trims.imageKinds.trim).toBe(trims.images);
    expect(trims.images).toBeGreaterThan(8);
    expect(trims.failures).toEqual([]);
    // records over three quarters of a buffer (packBelow: 1536 bytes) are not copied but logged again where they lie
    const relog = await runCrashtest({
      handler: kvWal, workload: "kv", requests: 3000, size: 1600, keys: 50, poolSize: 8 << 20, aim: "relog", images: 16, seed: 5,
    });
    expect(relog.imageKinds.relog).toBe(16);
    expect(relog.failures).toEqual([]);
  }, 180_000);

  it("the kv check catches a store that loses acknowledged values though every record is intact, by reading the keys back", async () => {
    // kv-forgetful, but logging every request it receives (so the commit path
    // has persist steps to crash at): every record is intact and none is ever
    // read back, so only a check that reads the keys through the handler can tell
    const amnesiac = await buildVariant("kv-amnesiac", "test/fixtures/handlers/kv-forgetful.ts", [
      ['import { Ring, Streams, replies, replyBuffer } from "paste-host/assembly";', 'import { Ring, Streams, log, replies, replyBuffer } from "paste-host/assembly";'],
      ["    const s = streams.of(slot.conn);", "    log(slot, 0, slot.len);          // durable, and never replayed\n    const s = streams.of(slot.conn);"],
    ]);
    const r = await runCrashtest({ handler: amnesiac, workload: "kv", requests: 60, size: 40, images: 10, seed: 3, keepDir: scratchDir("shm") });
    expect(r.failures.length).toBeGreaterThan(0);
    expect(r.failures[0].problem).toMatch(/^key:\d+ is absent after recovery, but acknowledged was the value of request \d+/);
    expect(r.failures[0].image).toMatch(/crash-seed3-step\d+-draw\d+\.pool$/);   // kept where asked
  }, 120_000);

  it("catches a commit path that persists the tail before the payload, and replays the failure exactly", () => {
    const dir = scratchDir("disk");
    const build = spawnSync("make", ["-s", "-C", join(root, "native"), `OUT=${join(dir, "lib")}`, "BROKEN_ORDER=1"], { encoding: "utf8" });
    expect(build.status, build.stderr).toBe(0);
    const env = { PASTE_NATIVE_LIB: join(dir, "lib", "libpaste.so") };
    const r = runCli(["crashtest", logAll, "--images", "120", "--seed", "5", "--keep-dir", dir], env, 170_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/crash images: 120\/120, \d+\/s, \d+ failed/);   // the progress line
    expect(r.stderr).toMatch(/PASTE_ERR_CRASHTEST: \d+ of \d+ crash images broke an invariant/);
    const fail = /FAIL step (\d+) draw (\d+): (.*)\n\s+image (\S+); replay: paste-host crashtest \S+ --seed 5 --point (\d+:\d+)/.exec(r.stdout);
    expect(fail, r.stdout).not.toBeNull();
    expect(fail![3]).toMatch(/committed .* missing|failing their checksum|does not hold the bytes/);
    expect(readdirSync(dir).some((f) => /^crash-seed5-step\d+-draw\d+\.pool$/.test(f))).toBe(true);
    // the printed point rebuilds the same image and the same verdict
    const again = runCli(["crashtest", logAll, "--seed", "5", "--point", fail![5], "--keep-dir", dir], env);
    expect(again.status).toBe(1);
    expect(again.stdout).toContain(fail![3]);
    // and the correct library passes that very point
    const fixed = runCli(["crashtest", logAll, "--seed", "5", "--point", fail![5], "--keep-dir", dir]);
    expect(fixed.status, fixed.stdout).toBe(0);
  }, 180_000);
});

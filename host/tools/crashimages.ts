// crashimages.ts -- `crashImages` of paste-host/testing: crashtest over a
// handler author's own workload.
//
// The workload is a function that drives a Harness (connections, sends, trims
// through h.runtime); it runs twice under the persistence simulator, as in
// crashtest.ts: once to count its persist steps, once to capture, at the
// chosen steps, the image a power failure there would leave. Each image is
// reopened with the handler (recovery and replay) and checked with the same
// record-level invariants crashtest checks (every committed record present
// byte for byte, nothing exposed that was not appended, dense sequence
// numbers, buffers accounted for, a pool that reopens), then by the author's
// check: a Harness over the recovered handler, and the replies that had left
// before the power failed. What the replies promised is the author's to say
// (a SET's +OK: the key reads back); a handler that acknowledges before its
// record is durable fails there.
//
// The workload must do the same thing both times (no clocks, no randomness
// without a fixed seed): the images are taken by step number.

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CrashtestFailedError } from "../core/errors.js";
import type { CompiledHandler } from "../core/handler.js";
import { check, native } from "../core/native.js";
import { Pool } from "../core/pool.js";
import { Runtime } from "../core/runtime.js";
import { parseSize } from "../core/size.js";
import { createHandlerMemory } from "../core/window.js";
import { checkLog, evictionSeed, plan, type Appended, type Point, type TakenPoint } from "./crashtest.js";
import { compileHandler, Harness, type DeliveredReply, type HarnessOptions } from "./harness.js";

export interface CrashImagesOptions extends Omit<HarnessOptions, "handler" | "dir"> {
  handler: string | Uint8Array;
  /** The requests: the same every run. Runs on a harness whose every batch may be followed by a crash image. */
  workload: (h: Harness) => void;
  /** Judge one recovered image: throw (an expect) if the handler's state breaks what the delivered replies promised. */
  check?: (h: Harness, at: CrashPoint) => void;
  /** Crash points to test (default 100): every persist step twice when there are fewer, else a seeded sample. */
  images?: number;
  /** Chooses the sample and the lines a crash loses (default 1); a failure names it with its step, to replay. */
  seed?: number;
  /** Keep each failing image there, as crash-seedS-stepN-drawD.pool (default: not kept). */
  keepDir?: string;
}

/** Where the power failed, and what the clients had been told by then. */
export interface CrashPoint {
  step: number;
  draw: number;
  /** The highest sequence number whose commit had completed. */
  committed: number;
  /** Replies that had left before the power failed, in order; each names the send (0-based) whose batch released it. */
  replies: DeliveredReply[];
}

export interface CrashImageFailure {
  step: number;
  draw: number;
  problem: string;
  image?: string;
}

export interface CrashImagesResult {
  /** Persist steps the workload made. */
  steps: number;
  images: number;
  passed: number;
  failures: CrashImageFailure[];
  seed: number;
}

const num = (v: number | bigint) => Number(v);

/** simulated -- the handler on a pool under the persistence simulator (never crashing: images are captured). */
function simulated(path: string, handler: CompiledHandler, seed: number, capture?: { steps: BigUint64Array; seeds: BigUint64Array }): Runtime {
  return Runtime.open(path, { handler, simulate: { crashAt: 0, seed, image: "", capture }, onHandlerError: () => {} });
}

/** crashImages -- every chosen crash image of the workload, recovered and checked; the failures say which and why. */
export async function crashImages(o: CrashImagesOptions): Promise<CrashImagesResult> {
  const compiled = await compileHandler(o.handler);
  const seed = o.seed ?? 1;
  const images = o.images ?? 100;
  const work = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "paste-crashimages-"));
  try {
    const template = join(work, "template.pool");
    const size = typeof o.poolSize === "string" ? parseSize(o.poolSize, "poolSize") : o.poolSize ?? 16 << 20;
    Pool.create(template, { size, bufSize: o.bufSize, slots: o.slots ?? 64, persist: o.persist });
    const fresh = (name: string) => {
      copyFileSync(template, join(work, name));
      return join(work, name);
    };
    const dry = simulated(fresh("dry.pool"), compiled, seed);
    let steps: number;
    try {
      o.workload(new Harness(dry));
      steps = num(native().simTags(dry.pool.handle, new Uint8Array(0), 0));
    } finally {
      dry.pool.close({ clean: false });
    }
    if (steps === 0) throw new CrashtestFailedError("the workload made no persist step (the handler logged nothing): there is no crash point to test");
    const points = plan({ images, seed }, new Uint8Array(steps));
    const failures = capture(o, compiled, seed, points, fresh("run.pool"), join(work, "image.pool"));
    return { steps, images: points.length, passed: points.length - failures.length, failures, seed };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** capture -- the second run: each point's image rebuilt between batches, recovered, checked. */
function capture(o: CrashImagesOptions, compiled: CompiledHandler, seed: number, points: Point[], pool: string, scratch: string): CrashImageFailure[] {
  // one memory for every check: making a 4 GiB memory costs more than a check
  const memory = createHandlerMemory(undefined, { fixed: true });
  const steps = BigUint64Array.from(points, (p) => BigInt(p.step));
  const seeds = BigUint64Array.from(points, (p) => evictionSeed({ seed }, p.draw));
  const rt = simulated(pool, compiled, seed, { steps, seeds });
  const h = new Harness(rt);
  const n = native();
  const appended = new Map<number, Appended>();
  const rec: Record<string, number | bigint> = {};
  const failures: CrashImageFailure[] = [];
  const seen = new Set<string>();
  const taken: Record<string, number | bigint> = {};
  h.afterBatch = () => {
    while (check(n.simTake(rt.pool.handle, scratch, taken)) === 1) {
      const pt: TakenPoint = { step: num(taken.step), committed: num(taken.committed), trimmed: num(taken.trimmed),
        appended: num(taken.appended), replies: num(taken.replies), tags: num(taken.tags) };
      for (let i = appended.size; i < pt.appended; i++) {   // the records appended so far: images come in step order
        check(n.simRecord(rt.pool.handle, i, rec));
        appended.set(num(rec.seq), { len: num(rec.len), crc: num(rec.crc) >>> 0 });
      }
      const draw = Number(BigInt(taken.seed) - evictionSeed({ seed }, 0));
      seen.add(`${pt.step}:${draw}`);
      const at: CrashPoint = { step: pt.step, draw, committed: pt.committed, replies: deliveredBefore(h, pt.replies) };
      const problem = verify(scratch, compiled, memory, rt, appended, pt, at, o.check);
      if (problem) failures.push({ step: pt.step, draw, problem, image: o.keepDir ? keep(o.keepDir, rt, seed, pt.step, draw) : undefined });
    }
  };
  try {
    o.workload(h);
    h.afterBatch();   // the images cut after the last batch
    for (const p of points.filter((q) => !seen.has(`${q.step}:${q.draw}`))) {
      failures.push({ step: p.step, draw: p.draw, problem: `no image was captured at persist step ${p.step}: the workload did not do the same thing twice` });
    }
  } finally {
    rt.pool.close({ clean: false });
  }
  return failures;
}

/** deliveredBefore -- the replies of the batches released, all of them, before `released` replies had left. */
function deliveredBefore(h: Harness, released: number): DeliveredReply[] {
  let upto = 0;
  for (const b of h.batches) {
    if (b.repliesAfter > released) break;
    upto = b.deliveredAfter;
  }
  return h.delivered.slice(0, upto);
}

/** verify -- recovery on one image, crashtest's invariants, then the author's check: the first problem, or null. */
function verify(image: string, handler: CompiledHandler, memory: WebAssembly.Memory, run: Runtime, appended: Map<number, Appended>,
  pt: TakenPoint, at: CrashPoint, userCheck: CrashImagesOptions["check"]): string | null {
  let rt: Runtime;
  try {
    rt = Runtime.open(image, { handler, memory, onHandlerError: () => {} });
  } catch (e) {
    return `the image does not reopen: ${(e as Error).message}`;
  }
  try {
    // what the check writes into the image is noted, so the next image rewrites only that
    check(native().simTrack(run.pool.handle, rt.pool.handle));
    const problem = checkLog(rt, appended, pt);
    if (problem || !userCheck) return problem;
    try {
      userCheck(new Harness(rt), at);
    } catch (e) {
      return `the check failed after recovery: ${(e as Error).message}`;
    }
    return null;
  } finally {
    rt.close();
  }
}

/** keep -- a failing image, rebuilt again (the check wrote into the scratch copy) where the author asked. */
function keep(dir: string, run: Runtime, seed: number, step: number, draw: number): string {
  mkdirSync(dir, { recursive: true });
  const kept = join(dir, `crash-seed${seed}-step${step}-draw${draw}.pool`);
  check(native().simWrite(run.pool.handle, kept));
  return kept;
}

// crashtest.ts -- `paste-host crashtest H.wasm`: simulated power failures at
// the persist steps of a handler's workload, and recovery checked on each
// image.
//
// The workload (mem port requests in a handler's protocol, batches, trims;
// crashload.ts) runs twice under the persistence simulator (native/sim.c).
// The first run counts its persist steps and what each was part of (the
// handler's on_clean, a trim, the commit of packed copies). The crash points
// are chosen from those steps, and the second run captures, at each of them,
// the image a power failure there would leave (what was fenced, plus a
// seeded random half of the lines written but not yet durable) without
// stopping: one run yields every image. Between batches, each captured image
// is rebuilt into one scratch file (only the lines where it differs from the
// file are written) and reopened with the same handler (recovery and
// replay), and checked:
//
//   - every record whose commit completed (its acknowledgement may have left),
//     and that no trim had begun to release, is present with its exact bytes;
//   - every exposed record is one the workload appended, byte for byte, and
//     passes its checksum; sequence numbers are dense and ordered;
//   - no buffer is both on the free list and referenced or in a ring;
//   - the pool reopens without manual repair;
//   - kv: every key reads back, through the handler (GET), as its last
//     acknowledged value, or as one written after it whose acknowledgement
//     had not left. The cleaner moves values: an acknowledged record may be
//     gone while its value lives on in a record the cleaner wrote.
//
// Small workloads are enumerated (every step, two eviction draws each); larger
// ones are sampled with the seed. A failure names the seed and the point, so
// `--seed S --point STEP:DRAW` rebuilds the very same image.

import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CrashtestFailedError, PoolFullError } from "../core/errors.js";
import { Handler, type CompiledHandler } from "../core/handler.js";
import { CONST } from "../core/layout.js";
import { check, native } from "../core/native.js";
import { Pool } from "../core/pool.js";
import { Runtime } from "../core/runtime.js";
import { createHandlerMemory } from "../core/window.js";
import { judgeKeys, KvModel, readKeys, request, rng, type Workload } from "./crashload.js";

export type { Workload } from "./crashload.js";

/** What a persist step can be part of, as the report counts them (native PASTE_SIM_TAG_*). */
export const STEP_KINDS = {
  clean: CONST.PASTE_SIM_TAG_CLEAN, trim: CONST.PASTE_SIM_TAG_TRIM, pack: CONST.PASTE_SIM_TAG_PACK, relog: CONST.PASTE_SIM_TAG_RELOG,
} as const;
export type StepKind = keyof typeof STEP_KINDS;
export type KindCounts = Record<StepKind, number>;

export interface CrashtestOptions {
  handler: string;
  images?: number;
  seed?: number;
  workload?: Workload;
  requests?: number;
  size?: number;
  batch?: number;
  /** kv: distinct keys (default 7): few keys, many dead values, a busy cleaner. */
  keys?: number;
  /** Trim all but the newest `keep` committed records after each batch (0: never; default 12, 0 for kv and http). */
  keep?: number;
  /** Pool file size (default 4 MiB). */
  poolSize?: number;
  /** Crash only among the last n persist steps (to aim at what happens late). */
  last?: number;
  /** Crash only at steps of this kind (inside on_clean, a trim, ...). */
  aim?: StepKind;
  /** Run only this point ("STEP:DRAW") and keep its image. */
  point?: string;
  /** Where failing images are kept (default: the current directory). */
  keepDir?: string;
  onProgress?: (done: number, total: number, failed: number) => void;
}

export interface CrashFailure {
  step: number;
  draw: number;
  problem: string;
  image?: string;
}

export interface CrashtestResult {
  steps: number;
  images: number;
  passed: number;
  failures: CrashFailure[];
  seed: number;
  committedMax: number;
  /** Highest seq the workload's trims released (the handler's cleaner trims too). */
  trimmedMax: number;
  /** Persist steps of the workload by kind, and the images cut at such steps. */
  stepKinds: KindCounts;
  imageKinds: KindCounts;
  /** kv: key reads checked through the handler, over all images. */
  keysChecked: number;
  /** images whose recovery found the last batch past the persistent tail (its tail had not reached the media) */
  beyondTail: number;
  seconds: number;
}

type Opts = Required<Omit<CrashtestOptions, "point" | "keepDir" | "onProgress" | "last" | "aim">> & CrashtestOptions;
export interface Appended { len: number; crc: number }
export interface Point { step: number; draw: number }
export type TakenPoint = { step: number; committed: number; trimmed: number; appended: number; replies: number; tags: number };

const kinds = (): KindCounts => ({ clean: 0, trim: 0, pack: 0, relog: 0 });
function countKinds(into: KindCounts, tags: number): void {
  for (const [k, bit] of Object.entries(STEP_KINDS)) if (tags & bit) into[k as StepKind]++;
}
const num = (v: number | bigint) => Number(v);

/**
 * Run -- one run of the workload on a fresh copy of the template pool,
 * under the simulator; with a capture plan, `each` is handed every captured
 * image, rebuilt into the scratch file, between batches.
 */
class Run {
  readonly rt: Runtime;
  readonly model: KvModel | null;
  readonly appended = new Map<number, Appended>();

  constructor(readonly o: Opts, pool: string, capture?: { steps: BigUint64Array; seeds: BigUint64Array }) {
    this.rt = Runtime.open(pool, { handler: o.handler, simulate: { crashAt: 0, seed: o.seed, image: "", capture }, onHandlerError: () => {} });
    this.model = o.workload === "kv" ? new KvModel(o.keys, o.size) : null;
  }

  report(): { steps: number; committed: number; trimmed: number; appended: number } {
    const rep: Record<string, number | bigint> = {};
    check(native().simReport(this.rt.pool.handle, rep));
    return { steps: num(rep.steps), committed: num(rep.committed), trimmed: num(rep.trimmed), appended: num(rep.appended) };
  }

  /** records -- the first n records appended (n only grows: images come in step order), fetched as needed. */
  records(n: number): Map<number, Appended> {
    const r: Record<string, number | bigint> = {};
    for (; this.#fetched < n; this.#fetched++) {
      check(native().simRecord(this.rt.pool.handle, this.#fetched, r));
      this.appended.set(num(r.seq), { len: num(r.len), crc: num(r.crc) >>> 0 });
    }
    return this.appended;
  }

  #fetched = 0;

  /** workload -- the deterministic requests; after each batch, each(): the place to take captured images. */
  workload(each: () => void): void {
    const { o, rt, model } = this;
    let k = 0;
    while (k < o.requests) {
      const first = k + 1;
      let filled = 0;
      while (filled < o.batch && k < o.requests && rt.memRequest(request(o.workload, k + 1, o.size, o.keys), 1 + (k % 3))) {
        model?.sent(k + 1, 1 + (k % 3));
        filled++;
        k++;
      }
      if (filled === 0) {
        throw new PoolFullError(`the workload stalled after ${k} requests: the pool or its log is full (use --keep, or a larger --pool-size)`);
      }
      const filledAt = this.report().steps;
      rt.runBatch();
      const replies = rt.takeReplies();
      if (model) {
        model.replies(replies);
        model.batch(first, k + 1, filledAt, rt.stats().replies);
      }
      if (o.keep) {
        const c = rt.stats().committedSeq;
        if (c > o.keep) rt.trim(c - o.keep);
      }
      each();
    }
    each();
  }

  /** tags -- what each persist step so far was part of (tags[i]: step i + 1). */
  tags(): Uint8Array {
    const n = native();
    const steps = num(n.simTags(this.rt.pool.handle, new Uint8Array(0), 0));
    const out = new Uint8Array(steps);
    n.simTags(this.rt.pool.handle, out, steps);
    return out;
  }

  close(): void {
    this.rt.pool.close({ clean: false });
  }
}

/** verifyImage -- recovery on a crash image, and the invariants; the first problem, or null. */
function verifyImage(image: string, handler: CompiledHandler, memory: WebAssembly.Memory, run: Run, pt: TakenPoint):
  { problem: string | null; keys: number; beyond: boolean } {
  let rt: Runtime;
  try {
    rt = Runtime.open(image, { handler, memory, onHandlerError: () => {} });
  } catch (e) {
    return { problem: `the image does not reopen: ${(e as Error).message}`, keys: 0, beyond: false };
  }
  try {
    // what this check writes into the image is noted, so the next image rewrites only that
    check(native().simTrack(run.rt.pool.handle, rt.pool.handle));
    const problem = checkLog(rt, run.records(pt.appended), pt);
    const beyond = rt.recovery.beyondTail > 0;
    if (problem || !run.model) return { problem, keys: 0, beyond };
    const keys = Array.from({ length: run.o.keys }, (_, i) => `key:${i}`);
    let values;
    try {
      values = readKeys(rt, keys, Math.min(32, run.o.batch * 4));
    } catch (e) {
      return { problem: (e as Error).message, keys: 0, beyond };
    }
    return { problem: judgeKeys(run.model, values, pt.step, pt.replies), keys: keys.length, beyond };
  } finally {
    rt.close();
  }
}

/** checkLog -- the record-level invariants of a recovered image: the first problem, or null (crashImages checks them too). */
export function checkLog(rt: Runtime, appended: Map<number, Appended>, pt: Pick<TakenPoint, "committed" | "trimmed">): string | null {
  if (rt.recovery.corrupt) return `recovery found ${rt.recovery.corrupt} committed record(s) failing their checksum, from seq ${rt.recovery.firstCorruptSeq}`;
  const seen = new Set<number>();
  let prev = 0;
  // the walk log verify does, without copying payloads out: the checksums are all it needs
  const n = native();
  check(n.walkBegin(rt.pool.handle));
  const r: Record<string, number | bigint> = {};
  while (check(n.walkNext(rt.pool.handle, r)) !== 0) {
    const seq = num(r.seq);
    if (r.status !== 0) return `seq ${seq} is exposed with a bad checksum`;
    if (prev && seq !== prev + 1) return `sequence numbers jump from ${prev} to ${seq}`;
    prev = seq;
    const a = appended.get(seq);   // the records appended before the crash, and only those
    if (!a) return `seq ${seq} is exposed but the workload never appended it`;
    if (a.len !== num(r.len) || a.crc !== num(r.computed_crc) >>> 0) return `seq ${seq} does not hold the bytes the workload logged`;
    seen.add(seq);
  }
  for (let s = pt.trimmed + 1; s <= pt.committed; s++) {
    if (!seen.has(s)) return `seq ${s} was committed (acknowledged) but is missing after recovery`;
  }
  const rc = native().checkBuffers(rt.pool.handle);
  if (rc < 0) return native().lastError();
  return null;
}

/** plan -- the crash points: one given, every candidate step twice when few, else a seeded sample; in step order. */
export function plan(o: Pick<Opts, "point" | "last" | "aim" | "images" | "seed">, tags: Uint8Array): Point[] {
  if (o.point) {
    const [s, d] = o.point.split(":").map(Number);
    return [{ step: s, draw: d || 0 }];
  }
  const first = o.last ? Math.max(1, tags.length - o.last + 1) : 1;
  const want = o.aim ? STEP_KINDS[o.aim] : 0;
  const cand: number[] = [];
  for (let s = first; s <= tags.length; s++) if (!want || tags[s - 1] & want) cand.push(s);
  const points: Point[] = [];
  if (cand.length * 2 <= o.images) {
    for (const s of cand) points.push({ step: s, draw: 0 }, { step: s, draw: 1 });
  } else {
    const r = rng(o.seed);
    for (let i = 0; i < o.images; i++) points.push({ step: cand[Math.floor(r() * cand.length)], draw: Math.floor(r() * 1000) });
  }
  return points.sort((a, b) => a.step - b.step || a.draw - b.draw);
}

export const evictionSeed = (o: { seed: number }, draw: number) => BigInt(o.seed) * 1000003n + BigInt(draw);

export async function runCrashtest(opts: CrashtestOptions): Promise<CrashtestResult> {
  // Handlers that manage their own log (kv-wal cleans, http-wal keeps a
  // window) must not have the host trim under them: keep defaults to 0 there.
  const workload = opts.workload ?? "mem";
  const o: Opts = {
    images: 300, seed: 1, workload, requests: 40, size: 600, batch: 6, keys: 7, poolSize: 4 << 20,
    ...opts, keep: opts.keep ?? (workload === "kv" || workload === "http" ? 0 : 12),
  };
  if (workload === "kv" && o.size < 8) throw new RangeError("crashtest --workload kv needs --size 8 or more: a value names its request in its first 8 bytes");
  const t0 = Date.now();
  const work = mkdtempSync(join("/dev/shm", "paste-crashtest-"));
  try {
    const template = join(work, "template.pool");
    Pool.create(template, { size: o.poolSize, slots: 64 });
    const fresh = (name: string) => {
      const p = join(work, name);
      copyFileSync(template, p);
      return p;
    };
    const dry = new Run(o, fresh("dry.pool"));
    let tags: Uint8Array;
    let end: ReturnType<Run["report"]>;
    try {
      dry.workload(() => {});
      tags = dry.tags();
      end = dry.report();
    } finally {
      dry.close();
    }
    rmSync(join(work, "dry.pool"));
    if (tags.length === 0) {
      throw new CrashtestFailedError("the workload made no persist step (the handler logged nothing): there is no crash point to test");
    }
    const stepKinds = kinds();
    for (const t of tags) countKinds(stepKinds, t);
    const points = plan(o, tags);
    const r = await capture(o, points, fresh("run.pool"), join(work, "image.pool"));
    return { ...r, steps: tags.length, images: points.length, seed: o.seed, committedMax: end.committed, trimmedMax: end.trimmed,
      stepKinds, seconds: (Date.now() - t0) / 1000 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** capture -- the second run: every point's image taken between batches, verified, kept if it fails. */
async function capture(o: Opts, points: Point[], pool: string, scratch: string) {
  // one module and one memory for every check: compiling and making a 4 GiB memory cost more than a check
  const handler = Handler.compile(o.handler);
  const memory = createHandlerMemory(undefined, { fixed: true });
  const steps = BigUint64Array.from(points, (p) => BigInt(p.step));
  const seeds = BigUint64Array.from(points, (p) => evictionSeed(o, p.draw));
  const run = new Run(o, pool, { steps, seeds });
  const failures: CrashFailure[] = [];
  const imageKinds = kinds();
  let done = 0;
  let keysChecked = 0;
  let beyondTail = 0;
  const seen = new Set<string>();
  const n = native();
  const taken: Record<string, number | bigint> = {};
  const takeAll = () => {
    while (check(n.simTake(run.rt.pool.handle, scratch, taken)) === 1) {
      const pt: TakenPoint = { step: num(taken.step), committed: num(taken.committed), trimmed: num(taken.trimmed),
        appended: num(taken.appended), replies: num(taken.replies), tags: num(taken.tags) };
      const draw = Number(BigInt(taken.seed) - evictionSeed(o, 0));
      seen.add(`${pt.step}:${draw}`);
      countKinds(imageKinds, pt.tags);
      const v = verifyImage(scratch, handler, memory, run, pt);
      keysChecked += v.keys;
      if (v.beyond) beyondTail++;
      if (v.problem) failures.push({ step: pt.step, draw, problem: v.problem, image: keep(o, run, pt.step, draw) });
      done++;
      o.onProgress?.(done, points.length, failures.length);
    }
  };
  try {
    run.workload(takeAll);
    const ran = run.report().steps;
    for (const p of points.filter((q) => !seen.has(`${q.step}:${q.draw}`))) {
      failures.push({ step: p.step, draw: p.draw, problem: `no image was captured at persist step ${p.step} (the run had ${ran} steps): ` +
        "the workload did not repeat itself, or the simulator ran out of memory" });
    }
  } finally {
    run.close();
  }
  return { passed: points.length - failures.length, failures, imageKinds, keysChecked, beyondTail };
}

/** keep -- the failing image, rebuilt again (the check wrote into the scratch copy) where the user can find it. */
function keep(o: Opts, run: Run, step: number, draw: number): string {
  const dir = o.keepDir ?? process.cwd();
  mkdirSync(dir, { recursive: true });
  const kept = join(dir, `crash-seed${o.seed}-step${step}-draw${draw}.pool`);
  check(native().simWrite(run.rt.pool.handle, kept));
  return kept;
}

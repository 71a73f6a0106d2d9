// crashtest.ts -- `paste-host crashtest H.wasm`: simulated power failures at
// every persist step of the commit path, and recovery checked on each image.
//
// The workload (mem port requests in a handler's protocol, batches, trims)
// runs once without a crash to count its persist steps, then once per crash
// point under the persistence simulator (native/sim.c), which writes the image
// a power failure at that step would leave: what was fenced, plus a seeded
// random half of the lines written but not yet durable. Each image is reopened
// with the same handler (recovery and replay), and checked:
//
//   - every record whose commit completed (its acknowledgement may have left),
//     and that no trim had begun to release, is present with its exact bytes;
//   - every exposed record is one the workload appended, byte for byte, and
//     passes its checksum; sequence numbers are dense and ordered;
//   - no buffer is both on the free list and referenced or in a ring;
//   - the pool reopens without manual repair.
//
// Small workloads are enumerated (every step, two eviction draws each); larger
// ones are sampled with the seed. A failure names the seed and the point, so
// `--seed S --point STEP:DRAW` rebuilds the very same image.

import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { crc32c } from "../core/crc32c.js";
import { PasteError, PoolFullError } from "../core/errors.js";
import { walkLog } from "../core/logwalk.js";
import { check, native } from "../core/native.js";
import { Pool } from "../core/pool.js";
import { Runtime } from "../core/runtime.js";

export type Workload = "mem" | "kv" | "frames" | "http";

export interface CrashtestOptions {
  handler: string;
  images?: number;
  seed?: number;
  workload?: Workload;
  requests?: number;
  size?: number;
  batch?: number;
  /** Trim all but the newest `keep` committed records after each batch (0: never; default 12, 0 for kv and http). */
  keep?: number;
  /** Pool file size (default 4 MiB). */
  poolSize?: number;
  /** Crash only among the last n persist steps (to aim at what happens late, like compaction). */
  last?: number;
  /** Run only this point ("STEP:DRAW") and keep its image. */
  point?: string;
  /** Where failing images are kept (default: the current directory). */
  keepDir?: string;
  onProgress?: (done: number, total: number) => void;
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
  /** Highest seq the workload's trims released (kv-wal's compaction trims too). */
  trimmedMax: number;
}

/** request -- bytes of request k in the workload's protocol. */
function request(w: Workload, k: number, size: number): Buffer {
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i++) payload[i] = (k * 31 + i) & 0xff;
  if (size >= 8) payload.writeBigUInt64LE(BigInt(k), 0);
  switch (w) {
    case "mem":
      return payload;
    case "frames": {
      const h = Buffer.alloc(4);
      h.writeUInt32LE(size, 0);
      return Buffer.concat([h, payload]);
    }
    case "kv": {
      const key = `key:${k % 7}`;
      return Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${size}\r\n`), payload, Buffer.from("\r\n")]);
    }
    case "http":
      return Buffer.concat([Buffer.from(`POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: ${size}\r\n\r\n`), payload]);
  }
}

interface Appended { len: number; crc: number }
interface RunInfo { steps: number; committed: number; trimmed: number; appended: Map<number, Appended>; crashed: boolean }

/** runWorkload -- the deterministic workload on `pool`, optionally until a simulated crash. */
function runWorkload(o: Required<Omit<CrashtestOptions, "point" | "keepDir" | "onProgress" | "images" | "poolSize" | "last">>, pool: string,
  sim: { crashAt: number; seed: number; image: string }): RunInfo {
  const rt = Runtime.open(pool, { handler: o.handler, simulate: sim, onHandlerError: () => {} });
  const n = native();
  try {
    let k = 0;
    try {
      while (k < o.requests) {
        let filled = 0;
        while (filled < o.batch && k < o.requests && rt.memRequest(request(o.workload, k + 1, o.size), 1 + (k % 3))) {
          filled++;
          k++;
        }
        if (filled === 0) {
          throw new PoolFullError(`the workload stalled after ${k} requests: the pool or its log is full (use --keep, or a larger --pool-size)`);
        }
        rt.runBatch();
        rt.takeReplies();
        if (o.keep) {
          const c = rt.stats().committedSeq;
          if (c > o.keep) rt.trim(c - o.keep);
        }
      }
    } catch (e) {
      if (!(e instanceof PasteError && e.code === "PASTE_ERR_SIM_CRASHED")) throw e;
    }
    const rep: Record<string, number | bigint> = {};
    check(n.simReport(rt.pool.handle, rep));
    const appended = new Map<number, Appended>();
    const r: Record<string, number | bigint> = {};
    for (let i = 0; i < Number(rep.appended); i++) {
      check(n.simRecord(rt.pool.handle, i, r));
      appended.set(Number(r.seq), { len: Number(r.len), crc: Number(r.crc) >>> 0 });
    }
    return { steps: Number(rep.steps), committed: Number(rep.committed), trimmed: Number(rep.trimmed), appended, crashed: rep.crashed === 1 };
  } finally {
    try {
      rt.pool.close({ clean: false });
    } catch {
      /* the power is out: closing cannot make anything durable */
    }
  }
}

/** verifyImage -- recovery on a crash image, and the invariants; the first problem, or null. */
function verifyImage(image: string, handler: string, run: RunInfo): string | null {
  let rt: Runtime;
  try {
    rt = Runtime.open(image, { handler, onHandlerError: () => {} });
  } catch (e) {
    return `the image does not reopen: ${(e as Error).message}`;
  }
  try {
    if (rt.recovery.corrupt) return `recovery found ${rt.recovery.corrupt} committed record(s) failing their checksum, from seq ${rt.recovery.firstCorruptSeq}`;
    const seen = new Map<number, Buffer>();
    let prev = 0;
    for (const r of walkLog(rt.pool)) {
      if (!r.crcOk) return `seq ${r.seq} is exposed with a bad checksum`;
      if (prev && r.seq !== prev + 1) return `sequence numbers jump from ${prev} to ${r.seq}`;
      prev = r.seq;
      const a = run.appended.get(r.seq);
      if (!a) return `seq ${r.seq} is exposed but the workload never appended it`;
      if (a.len !== r.len || a.crc !== crc32c(r.data)) return `seq ${r.seq} does not hold the bytes the workload logged`;
      seen.set(r.seq, r.data);
    }
    for (let s = run.trimmed + 1; s <= run.committed; s++) {
      if (!seen.has(s)) return `seq ${s} was committed (acknowledged) but is missing after recovery`;
    }
    const rc = native().checkBuffers(rt.pool.handle);
    if (rc < 0) return native().lastError();
    return null;
  } finally {
    rt.close();
  }
}

/** mulberry32 -- a small seeded generator, so a seed names the same sample everywhere. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runCrashtest(opts: CrashtestOptions): Promise<CrashtestResult> {
  // Handlers that manage their own log (kv-wal compacts, http-wal keeps a
  // window) must not have the host trim under them: keep defaults to 0 there.
  const workload = opts.workload ?? "mem";
  const o = {
    images: 300, seed: 1, workload, requests: 40, size: 600, batch: 6,
    ...opts, keep: opts.keep ?? (workload === "kv" || workload === "http" ? 0 : 12),
  };
  const work = mkdtempSync(join("/dev/shm", "paste-crashtest-"));
  try {
    const template = join(work, "template.pool");
    Pool.create(template, { size: o.poolSize ?? 4 << 20, slots: 64 });
    const fresh = () => {
      const p = join(work, "run.pool");
      copyFileSync(template, p);
      return p;
    };
    const dry = runWorkload(o, fresh(), { crashAt: 0, seed: o.seed, image: "" });
    const steps = dry.steps;
    let points: [number, number][] = [];
    if (o.point) {
      const [s, d] = o.point.split(":").map(Number);
      points = [[s, d || 0]];
    } else {
      const first = o.last ? Math.max(1, steps - o.last + 1) : 1;
      const span = steps - first + 1;
      if (span * 2 <= o.images) {
        for (let s = first; s <= steps; s++) points.push([s, 0], [s, 1]);
      } else {
        const r = rng(o.seed);
        for (let i = 0; i < o.images; i++) points.push([first + Math.floor(r() * span), Math.floor(r() * 1000)]);
      }
    }
    const failures: CrashFailure[] = [];
    let passed = 0;
    let done = 0;
    for (const [step, draw] of points) {
      const image = join(work, "crash.pool");
      const run = runWorkload(o, fresh(), { crashAt: step, seed: o.seed * 1000003 + draw, image });
      const problem = run.crashed ? verifyImage(image, o.handler, run) : `persist step ${step} never came (${run.steps} steps)`;
      if (problem) {
        const kept = join(o.keepDir ?? process.cwd(), `crash-seed${o.seed}-step${step}-draw${draw}.pool`);
        try {
          mkdirSync(o.keepDir ?? process.cwd(), { recursive: true });
          renameSync(image, kept);
        } catch {
          copyFileSync(image, kept);
        }
        failures.push({ step, draw, problem, image: kept });
      } else {
        passed++;
      }
      rmSync(image, { force: true });
      o.onProgress?.(++done, points.length);
    }
    return { steps, images: points.length, passed, failures, seed: o.seed, committedMax: dry.committed, trimmedMax: dry.trimmed };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

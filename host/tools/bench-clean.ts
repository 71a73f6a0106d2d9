// bench-clean.ts -- the cleaner's table of `paste-host bench`: kv-wal
// writing ten times its pool's size through it, next to the same server
// writing one key (nothing to clean), in one invocation.
//
//   one key     redis-benchmark -t set -d 1024 without -r: every SET replaces
//               the same key, the cleaner drops nearly everything it meets
//   random keys -r K, K chosen so the live values reach 60% of the pool's
//               buffer bytes (those not in ring slots): more keys than
//               buffers, so values must be
//               packed densely; first filled to half the pool's buffer
//               bytes, then measured, then written on to ten times the pool
//
// The row says each phase's throughput and its ratio to the one-key run,
// whether any SET was refused (redis-benchmark stops at an -OOM), and whether
// every key then reads back as a 1 KiB value (every key is hit: ten times the
// pool is many times K ln K SETs).

import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { rmSync } from "node:fs";
import { Pool } from "../core/pool.js";
import { parseSize } from "../core/size.js";
import { spawnHost } from "../server/spawn.js";

export interface CleanRow {
  config: string;
  client: string;
  requestsPerSec: number;
  /** Against the one-key run (1 for itself). */
  ratio: number;
  sets: number;
  keys: number;
  /** Keys that read back whole afterwards, of `keys`. */
  readBack: number;
  /** Keys never written (GET answered nil); the rest of `keys` came back damaged or as errors. */
  missing?: number;
}

const VALUE = 1024;

function setRun(port: number, n: number, keys: number, value = VALUE, pipeline = 1): number {
  const r = spawnSync("redis-benchmark", ["-p", String(port), "-t", "set", "-d", String(value), "-c", "50", "-n", String(n),
    "-P", String(pipeline), ...(keys ? ["-r", String(keys)] : [])], { encoding: "utf8", timeout: 1_800_000 });
  const out = r.stdout.replace(/\r/g, "\n");
  const rps = Number(/throughput summary: ([\d.]+) requests per second/.exec(out)?.[1]);
  if (r.status !== 0 || !rps) throw new Error(`redis-benchmark (-n ${n} -r ${keys}) failed: ${r.stderr || out.slice(-500)}`);
  return rps;
}

/**
 * readBack -- GET key:000000000000 .. K-1, pipelined on one connection; how
 * many came back as a whole 1 KiB value. (redis-benchmark's values are
 * random bytes chosen per run, so the length is what can be checked here;
 * test/clean.test.ts checks every value byte for byte against a model.)
 */
function readBack(port: number, keys: number, value = VALUE): Promise<{ whole: number; missing: number }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let whole = 0;
    let missing = 0;
    let replies = 0;
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const nl = buf.indexOf("\r\n");
        if (nl < 0) break;
        const len = buf[0] === 0x24 ? Number(buf.subarray(1, nl)) : -1;   // "$1024": a bulk string follows
        const end = len >= 0 ? nl + 2 + len + 2 : nl + 2;                  // "$-1" or "-ERR ...": one line
        if (buf.length < end) break;
        if (len === value && buf[end - 2] === 0x0d && buf[end - 1] === 0x0a) whole++;
        else if (buf.subarray(0, end).toString() === "$-1\r\n") missing++;
        buf = buf.subarray(end);
        if (++replies === keys) {
          sock.end();
          resolve({ whole, missing });
        }
      }
    });
    sock.on("error", reject);
    sock.on("connect", () => {
      for (let i = 0; i < keys; i += 1000) {
        const part: string[] = [];
        for (let k = i; k < Math.min(keys, i + 1000); k++) part.push(`*2\r\n$3\r\nGET\r\n$16\r\nkey:${String(k).padStart(12, "0")}\r\n`);
        sock.write(part.join(""));
      }
    });
  });
}

export interface CleanBenchOptions {
  /** kv-wal's .wasm. */
  handler: string;
  /** A fresh pool file's path for a run (tmpfs: pmem mode). */
  poolPath: (tag: string) => string;
  /** Pool size, e.g. "256M". */
  size: string;
  /** Progress: what runs now. */
  step: (what: string) => void;
}

/** The progress steps cleanBench reports (for the caller's ETA). */
export const CLEAN_STEPS = 7;

/** cleanBench -- the one-key run, then the random-key run in its three phases, then small values. */
export async function cleanBench(o: CleanBenchOptions): Promise<CleanRow[]> {
  const { handler, poolPath, size, step } = o;
  const bytes = parseSize(size);
  const geometry = (path: string) => {
    Pool.create(path, { size: bytes });
    const p = Pool.open(path, { readOnly: true });
    try {
      return p.info().geometry;
    } finally {
      p.close();
    }
  };
  const total = Math.round((10 * bytes) / VALUE);   // ten times the pool
  const rows: CleanRow[] = [];

  const one = poolPath("one-key");
  geometry(one);
  step(`cleaner: one key, ${total} SETs of 1 KiB`);
  const h1 = await spawnHost({ pool: one, handler, persist: "pmem", extra: ["--admin", "off"] });
  let base: number;
  try {
    base = setRun(h1.port, total, 0);
  } finally {
    await h1.stop();
    rmSync(one, { force: true });
  }
  rows.push({ config: "kv-wal, pmem: one key", client: `-n ${total}`, requestsPerSec: base, ratio: 1, sets: total, keys: 1, readBack: NaN });

  const rnd = poolPath("random");
  const g = geometry(rnd);
  // 60% of the buffer bytes data can use (not those parked in ring slots: a
  // third of a 16 MiB pool, 2.5% of 256 MiB)
  const keys = Math.round((0.6 * (g.buffers - g.ringBuffers) * g.bufSize) / VALUE);
  // distinct keys after n random SETs: K(1 - e^(-n/K)); half the buffer bytes is 5/6 of K
  const fill = Math.round(keys * Math.log(6));
  const measure = Math.round(keys / 2);
  const h2 = await spawnHost({ pool: rnd, handler, persist: "pmem", extra: ["--admin", "off"] });
  try {
    step(`cleaner: ${keys} random keys, filling to half the buffer bytes (${fill} SETs)`);
    setRun(h2.port, fill, keys);
    step(`cleaner: ${keys} random keys at half fill, measured over ${measure} SETs`);
    const half = setRun(h2.port, measure, keys);
    const rest = total - fill - measure;
    step(`cleaner: ${keys} random keys, ${rest} SETs more (ten times the pool in all)`);
    const after = setRun(h2.port, rest, keys);
    step(`cleaner: reading back ${keys} keys`);
    const ok = (await readBack(h2.port, keys)).whole;
    rows.push({ config: "kv-wal, pmem: random keys, 60% of buffer bytes live", client: `at 50% fill, -r ${keys} -n ${measure}`,
      requestsPerSec: half, ratio: half / base, sets: fill + measure, keys, readBack: ok });
    rows.push({ config: "kv-wal, pmem: random keys, 60% of buffer bytes live", client: `on to 10x the pool, -r ${keys} -n ${rest}`,
      requestsPerSec: after, ratio: after / base, sets: total, keys, readBack: ok });
  } finally {
    await h2.stop();
    rmSync(rnd, { force: true });
  }
  rows.push(await smallValues(o, geometry));
  return rows;
}

/**
 * smallValues -- 16-byte values on as many keys as 65% of the log's lines
 * (each live record keeps one): a million on the default 256 MiB pool, where
 * Redis 7 holds 981,712 such keys in 114 MB. 4K pipelined SETs leave
 * K(1 - e^-4) = 98% of the keys written; every key must then read back whole
 * or be one never written.
 */
async function smallValues(o: CleanBenchOptions, geometry: (path: string) => { logSize: number }): Promise<CleanRow> {
  const path = o.poolPath("small");
  const keys = Math.round((0.65 * geometry(path).logSize) / 64);
  const sets = 4 * keys;
  const h = await spawnHost({ pool: path, handler: o.handler, persist: "pmem", extra: ["--admin", "off"] });
  try {
    o.step(`cleaner: ${keys} random keys of 16-byte values, ${sets} SETs, -P 16`);
    const rps = setRun(h.port, sets, keys, 16, 16);
    o.step(`cleaner: reading back ${keys} keys`);
    const r = await readBack(h.port, keys, 16);
    return { config: "kv-wal, pmem: 16-byte values, random keys", client: `-P 16 -r ${keys} -n ${sets}`, requestsPerSec: rps,
      ratio: NaN, sets, keys, readBack: r.whole, missing: r.missing };
  } finally {
    await h.stop();
    rmSync(path, { force: true });
  }
}

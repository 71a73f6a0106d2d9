// bench.ts -- `npm run bench` / `paste-host bench`: every configuration side
// by side in one invocation, rounds interleaved so a noisy machine hurts all
// configurations alike, medians reported, every ratio computed within the run.
//
// Tables:
//   mem port   the mem-wal handler (bench/handlers/mem-wal.ts): no logging,
//              copy logging, zero-copy logging, and the same zero-copy WAL as
//              a plain C loop (the cost of the Wasm boundary); 64 B, 1 KiB, 4 KiB
//   kv-wal     redis-benchmark -t set -d 1024 at -c 1, -c 50, -c 50 -P 16:
//              persistence none / pmem (tmpfs) / msync (disk), next to Redis 7
//              with appendfsync always on tmpfs and on disk, and without persistence
//   http-wal   wrk, 1 KiB POST bodies, 1 and 50 connections: persistence none /
//              pmem, and the copy-logging variant of the same handler
//   cleaner    kv-wal writing ten times its pool through it with random keys
//              (60% of buffer bytes live) next to one key (bench-clean.ts)
//
// Server CPU: for every TCP configuration, the server's CPU time (user +
// system, every thread, from /proc/PID/stat) over a client run, divided by
// the requests it served. With two cores or more the server is pinned to one
// core and the client to another (taskset), so neither steals the other's.
//
// Latency: mem-port records get their batch's fill-to-commit time, recorded
// in an HDR histogram (hdr-histogram-js); redis-benchmark and wrk report their
// own percentiles (p99.9 from redis-benchmark's distribution and a wrk script).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import * as hdr from "hdr-histogram-js";
import { buildHandler } from "../core/build.js";
import { packageRoot } from "../core/native.js";
import { Runtime } from "../core/runtime.js";
import { freePort, spawnHost } from "../server/spawn.js";
import { CLEAN_STEPS, cleanBench, type CleanRow } from "./bench-clean.js";

export interface BenchOptions {
  /** CI smoke size: fewer requests and rounds (under two minutes). */
  quick?: boolean;
  /** Where results go (default bench/results). */
  outDir?: string;
  /** Directory for tmpfs pools (default /dev/shm: emulated NVMM). */
  poolDir?: string;
  /** Directory for disk pools, msync mode (default the OS temp directory). */
  diskDir?: string;
}

/** One configuration's result: throughput and latency percentiles (ms). */
export interface Result {
  table: "mem" | "kv" | "http";
  config: string;
  /** For the mem table: request size; for TCP: connections. */
  size?: number;
  client?: string;
  rounds: number[];
  requestsPerSec: number;
  p50ms: number;
  p99ms: number;
  p999ms: number;
  /** TCP: the server's CPU time per request, microseconds (all threads). */
  cpuUs?: number;
  /** TCP: bytes the server sent to storage per request (/proc/PID/io write_bytes; 0 on tmpfs). */
  diskBytes?: number;
}

export interface BenchReport {
  date: string;
  machine: Record<string, string | number>;
  command: string;
  results: Result[];
  /** The cleaner's table (empty without redis-benchmark). */
  cleaner: CleanRow[];
  skipped: string[];
}

const median = (xs: number[]) => {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}`);
  else process.stderr.write(`${text}\n`);
}

/** Interleaved rounds with an ETA on the progress line. */
class Rounds {
  #done = 0;
  #t0 = Date.now();
  constructor(private readonly total: number) {}
  step(what: string): void {
    const eta = this.#done ? `~${Math.round(((Date.now() - this.#t0) / this.#done) * (this.total - this.#done) / 1000)}s left` : "";
    progress(`${what} (${this.#done}/${this.total} runs${eta ? `, ${eta}` : ""})`);
    this.#done++;
  }
  finish(what: string): void {
    progress(`${what}: ${this.total} runs in ${((Date.now() - this.#t0) / 1000).toFixed(1)} s\n`);
  }
}

function describeMachine(info: { flush: string; fs: string }): Record<string, string | number> {
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? "unknown";
  return {
    cpu, cores: os.cpus().length, memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: `${os.type()} ${os.release()}`, node: process.version, flush: info.flush, poolFilesystem: info.fs,
  };
}

// ------------------------------------------------------------------- mem port

const MEM_MODES = ["no logging", "copy logging", "zero-copy logging", "zero-copy, C loop (no Wasm)"] as const;
const SIZES = [64, 1024, 4096];

async function memBench(o: BenchOptions, report: BenchReport): Promise<void> {
  const requests = o.quick ? 20_000 : 200_000;
  const rounds = o.quick ? 2 : 5;
  const root = packageRoot();
  const wasm = await buildHandler(join(root, "bench", "handlers", "mem-wal.ts"), join(root, "bench", ".build", "mem-wal.wasm"));
  const poolPath = join(o.poolDir ?? "/dev/shm", `paste-bench-${process.pid}.pool`);
  rmSync(poolPath, { force: true });
  const rt = Runtime.open(poolPath, {
    handler: wasm,
    create: { size: 256 << 20, bufSize: 4096, slots: 1024 },
    onHandlerError: (e) => { throw e; },
  });
  try {
    const info = rt.pool.info();
    Object.assign(report.machine, describeMachine({ flush: info.flush, fs: `${info.persist.filesystem} (${info.persist.mode})` }));
    const setMode = (rt.handler.exports as unknown as { set_mode(m: number): void }).set_mode;
    const keep = 4096;
    const run = (size: number, mode: number, count: number) => {
      const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: 3 });
      if (mode < 3) setMode(mode);
      const t0 = process.hrtime.bigint();
      let sent = 0;
      while (sent < count) {
        const b0 = process.hrtime.bigint();
        const want = Math.min(256, count - sent);
        const filled = mode === 3 ? rt.memNativeWal(size, want, 16) : rt.memBatch(size, want, 16).filled;
        if (filled <= 0) throw new Error(`bench stalled at ${sent} requests (pool or log full)`);
        h.recordValueWithCount(Number(process.hrtime.bigint() - b0), filled);   // each record waited for its batch
        sent += filled;
        rt.takeReplies();
        const c = rt.stats().committedSeq;
        if (c > keep) rt.trim(c - keep);   // steady state: trims are part of every logging mode's cost
      }
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const r = { secs, p50: h.getValueAtPercentile(50) / 1e6, p99: h.getValueAtPercentile(99) / 1e6, p999: h.getValueAtPercentile(99.9) / 1e6 };
      h.destroy();
      return r;
    };
    for (const size of SIZES) for (let m = 0; m < MEM_MODES.length; m++) run(size, m, 5000);   // warm up
    const acc = new Map<string, { secs: number; p50: number; p99: number; p999: number }[]>();
    const r = new Rounds(SIZES.length * MEM_MODES.length * rounds);
    for (let round = 0; round < rounds; round++) {
      for (const size of SIZES) {
        for (let m = 0; m < MEM_MODES.length; m++) {
          r.step(`mem port: ${size} B ${MEM_MODES[m]}, round ${round + 1}/${rounds}`);
          const key = `${size}|${m}`;
          acc.set(key, [...(acc.get(key) ?? []), run(size, m, requests)]);
        }
      }
    }
    r.finish("mem port");
    for (const size of SIZES) {
      for (let m = 0; m < MEM_MODES.length; m++) {
        const xs = acc.get(`${size}|${m}`)!;
        report.results.push({
          table: "mem", config: MEM_MODES[m], size, rounds: xs.map((x) => Math.round(requests / x.secs)),
          requestsPerSec: Math.round(requests / median(xs.map((x) => x.secs))),
          p50ms: median(xs.map((x) => x.p50)), p99ms: median(xs.map((x) => x.p99)), p999ms: median(xs.map((x) => x.p999)),
        });
      }
    }
  } finally {
    rt.close();
    rmSync(poolPath, { force: true });
  }
}

// ------------------------------------------------------------- TCP loopback

function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

interface Running { port: number; pid: number; stop(): Promise<void> }

/** With two cores or more: the server on core 1, the client on core 0. */
const PIN = os.cpus().length >= 2 && have("taskset");
const TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/** pinServer -- every thread of pid onto core 1 (threads made later inherit it). */
function pinServer(pid: number): void {
  if (PIN) spawnSync("taskset", ["-a", "-cp", "1", String(pid)], { stdio: "ignore" });
}

/** client -- a client command line, pinned to core 0 when the server has core 1. */
function client(cmd: string, args: string[]): [string, string[]] {
  return PIN ? ["taskset", ["-c", "0", cmd, ...args]] : [cmd, args];
}

/** writeBytes -- bytes pid has caused to be sent to storage so far (/proc/PID/io; needs the same user or root) */
function writeBytes(pid: number): number {
  try {
    return Number(/^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** cpuSeconds -- user + system time of every thread of pid so far (/proc/PID/stat, fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / TICKS;
}

function waitFor(child: ChildProcess, re: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = "";
    const t = setTimeout(() => reject(new Error(`${what} did not start:\n${out}`)), 20_000);
    const on = (d: Buffer) => {
      out += d;
      const m = re.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    };
    child.stdout?.on("data", on);
    child.stderr?.on("data", on);
    child.on("exit", () => reject(new Error(`${what} exited:\n${out}`)));
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.on("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 5000).unref();
  });
}

async function startPaste(handler: string, pool: string, persist: string, extra: string[] = []): Promise<Running> {
  const h = await spawnHost({ pool, handler, persist, createSize: "256M", extra: ["--admin", "off", ...extra] });
  pinServer(h.child.pid!);
  return { port: h.port, pid: h.child.pid!, stop: async () => { await h.stop(); rmSync(pool, { force: true }); } };
}

async function startRedis(dir: string, aof: boolean): Promise<Running> {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir,
    ...(aof ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"])];
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  await waitFor(child, /Ready to accept connections/, "redis-server");
  pinServer(child.pid!);
  const stop = stopper(child);
  return { port, pid: child.pid!, stop: async () => { await stop(); rmSync(dir, { recursive: true, force: true }); } };
}

interface Measure { rps: number; p50: number; p99: number; p999: number; requests: number; cpuUs?: number; diskBytes?: number }

/** redisBench -- redis-benchmark SET of 1 KiB values; throughput and its latency distribution. */
function redisBench(port: number, conns: number, pipeline: number, n: number): Measure {
  const r = spawnSync(...client("redis-benchmark", ["-p", String(port), "-t", "set", "-d", "1024", "-c", String(conns),
    "-P", String(pipeline), "-n", String(n)]), { encoding: "utf8", timeout: 600_000 });
  const out = r.stdout.replace(/\r/g, "\n");
  const rps = Number(/throughput summary: ([\d.]+) requests per second/.exec(out)?.[1]);
  if (r.status !== 0 || !rps) throw new Error(`redis-benchmark failed: ${r.stderr || out.slice(-500)}`);
  const dist = [...out.matchAll(/^\s*([\d.]+)% <= ([\d.]+) milliseconds/gm)].map((m) => [Number(m[1]), Number(m[2])]);
  const at = (p: number) => dist.find(([q]) => q >= p)?.[1] ?? dist[dist.length - 1]?.[1] ?? NaN;
  return { rps, p50: at(50), p99: at(99), p999: at(99.9), requests: n };
}

/** wrkBench -- wrk with 1 KiB POST bodies; throughput and latency percentiles. */
function wrkBench(port: number, conns: number, seconds: number): Measure {
  const r = spawnSync(...client("wrk", ["-t1", `-c${conns}`, `-d${seconds}s`, "-s", join(packageRoot(), "bench", "wrk-post.lua"),
    `http://127.0.0.1:${port}/`]), { encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  if (/Non-2xx|Socket errors/.test(r.stdout)) throw new Error(`wrk saw errors:\n${r.stdout}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const l = /paste-latency-us p50=(\d+) p99=(\d+) p999=(\d+)/.exec(r.stdout);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1]);
  return { rps, p50: Number(l?.[1]) / 1000, p99: Number(l?.[2]) / 1000, p999: Number(l?.[3]) / 1000, requests };
}

/** withCpu -- run a client against the server pid; with the server's CPU time and storage writes per request served. */
function withCpu(pid: number, run: () => Measure): Measure {
  const before = cpuSeconds(pid);
  const wrote = writeBytes(pid);
  const m = run();
  return { ...m, cpuUs: ((cpuSeconds(pid) - before) * 1e6) / m.requests, diskBytes: (writeBytes(pid) - wrote) / m.requests };
}

interface TcpConfig {
  table: "kv" | "http";
  config: string;
  start: () => Promise<Running>;
}

/** clientsFor -- the client runs of one TCP configuration (fewer requests on a disk pool, and in --quick). */
function clientsFor(c: TcpConfig, quick: boolean): { client: string; size: number; run: (port: number) => Measure }[] {
  const slowDisk = c.config.includes("disk");
  if (c.table === "http") {
    return [1, 50].map((conns) => ({ client: `wrk -c ${conns}`, size: conns, run: (p: number) => wrkBench(p, conns, quick ? 2 : 5) }));
  }
  const n = (disk: [number, number], mem: [number, number]) => (slowDisk ? disk : mem)[quick ? 0 : 1];
  return [
    { client: "redis-benchmark -c 1", size: 1, run: (p: number) => redisBench(p, 1, 1, n([500, 3000], [3000, 20000])) },
    { client: "redis-benchmark -c 50", size: 50, run: (p: number) => redisBench(p, 50, 1, n([3000, 20000], [20000, 100000])) },
    { client: "redis-benchmark -c 50 -P 16", size: 50 * 16, run: (p: number) => redisBench(p, 50, 16, n([20000, 100000], [50000, 300000])) },
  ];
}

/**
 * warmUp -- a short run against a fresh server, not measured: the handler's
 * Wasm and the host's JavaScript reach their optimizing tier, and the first
 * pool pages are faulted in, before the first measured client (-c 1, the
 * most sensitive) runs. Redis gets the same.
 */
function warmUp(c: TcpConfig, port: number, quick: boolean): void {
  if (c.table === "http") wrkBench(port, 50, 1);
  else redisBench(port, 50, 1, c.config.includes("disk") || quick ? 2000 : 10000);
}

async function tcpBench(o: BenchOptions, report: BenchReport): Promise<void> {
  const root = packageRoot();
  const rounds = o.quick ? 1 : 3;
  const shm = mkdtempSync(join(o.poolDir ?? "/dev/shm", "paste-bench-tcp-"));
  const disk = mkdtempSync(join(o.diskDir ?? os.tmpdir(), "paste-bench-tcp-"));
  try {
    const cfgs: TcpConfig[] = [];
    const kv = join(root, "samples", "kv-wal", "kv-wal.wasm");
    const http = join(root, "samples", "http-wal", "http-wal.wasm");
    let k = 0;
    const pool = (dir: string) => join(dir, `p${k++}.pool`);
    const redisDir = (dir: string) => mkdtempSync(join(dir, "redis-"));
    if (have("redis-benchmark")) {
      cfgs.push({ table: "kv", config: "kv-wal, no persistence", start: () => startPaste(kv, pool(shm), "none") });
      cfgs.push({ table: "kv", config: "kv-wal, pmem (tmpfs)", start: () => startPaste(kv, pool(shm), "pmem") });
      cfgs.push({ table: "kv", config: "kv-wal, pmem (tmpfs), epoll engine", start: () => startPaste(kv, pool(shm), "pmem", ["--port-engine", "epoll"]) });
      // what --busy-poll (on by default) is worth, side by side: the same server sleeping at every idle poll
      cfgs.push({ table: "kv", config: "kv-wal, pmem (tmpfs), busy poll off", start: () => startPaste(kv, pool(shm), "pmem", ["--busy-poll", "0"]) });
      cfgs.push({ table: "kv", config: "kv-wal, msync (disk)", start: () => startPaste(kv, pool(disk), "msync") });
      if (have("redis-server")) {
        cfgs.push({ table: "kv", config: "Redis, no persistence", start: () => startRedis(redisDir(shm), false) });
        cfgs.push({ table: "kv", config: "Redis, AOF fsync always (tmpfs)", start: () => startRedis(redisDir(shm), true) });
        cfgs.push({ table: "kv", config: "Redis, AOF fsync always (disk)", start: () => startRedis(redisDir(disk), true) });
      } else report.skipped.push("Redis: redis-server is not installed (apt-get install -y redis-server)");
    } else report.skipped.push("kv-wal and Redis: redis-benchmark is not installed (apt-get install -y redis-tools)");
    if (have("wrk")) {
      const src = readFileSync(join(root, "samples", "http-wal", "http-wal.ts"), "utf8");
      const copySrc = join(root, "samples", "http-wal", ".http-wal-copy.bench.ts");
      writeFileSync(copySrc, src.replace("const COPY_LOGGING: bool = false;", "const COPY_LOGGING: bool = true;"));
      let httpCopy: string;
      try {
        httpCopy = await buildHandler(copySrc, join(root, "bench", ".build", "http-wal-copy.wasm"));
      } finally {
        rmSync(copySrc, { force: true });
      }
      cfgs.push({ table: "http", config: "http-wal, no persistence", start: () => startPaste(http, pool(shm), "none") });
      cfgs.push({ table: "http", config: "http-wal, pmem (tmpfs)", start: () => startPaste(http, pool(shm), "pmem") });
      cfgs.push({ table: "http", config: "http-wal, copy logging, pmem (tmpfs)", start: () => startPaste(httpCopy, pool(shm), "pmem") });
    } else report.skipped.push("http-wal: wrk is not installed (apt-get install -y wrk)");

    const clients = (c: TcpConfig) => clientsFor(c, !!o.quick);
    const acc = new Map<string, Measure[]>();
    const total = cfgs.reduce((a, c) => a + clients(c).length, 0) * rounds;
    const r = new Rounds(total);
    for (let round = 0; round < rounds; round++) {
      for (const c of cfgs) {
        const srv = await c.start();
        try {
          warmUp(c, srv.port, !!o.quick);
          for (const cl of clients(c)) {
            r.step(`tcp: ${c.config}, ${cl.client}, round ${round + 1}/${rounds}`);
            const key = `${c.table}|${c.config}|${cl.client}|${cl.size}`;
            acc.set(key, [...(acc.get(key) ?? []), withCpu(srv.pid, () => cl.run(srv.port))]);
          }
        } finally {
          await srv.stop();
        }
      }
    }
    r.finish("tcp");
    for (const [key, ms] of acc) {
      const [table, config, client, size] = key.split("|");
      report.results.push({
        table: table as "kv" | "http", config, client, size: Number(size), rounds: ms.map((x) => Math.round(x.rps)),
        requestsPerSec: Math.round(median(ms.map((x) => x.rps))),
        p50ms: median(ms.map((x) => x.p50)), p99ms: median(ms.map((x) => x.p99)), p999ms: median(ms.map((x) => x.p999)),
        cpuUs: median(ms.map((x) => x.cpuUs ?? NaN)), diskBytes: median(ms.map((x) => x.diskBytes ?? NaN)),
      });
    }
  } finally {
    rmSync(shm, { recursive: true, force: true });
    rmSync(disk, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ reports

const fmt = (n: number) => n.toLocaleString("en-US");
const ms = (v: number) => (Number.isNaN(v) ? "n/a" : v < 0.1 ? v.toFixed(4) : v.toFixed(3));
const us = (v?: number) => (v === undefined || Number.isNaN(v) ? "n/a" : v.toFixed(2));
const ratio = (a?: number, b?: number) => (a === undefined || b === undefined || !b || Number.isNaN(a / b) ? "n/a" : `${(a / b).toFixed(2)}x`);
const sizeLabel = (b: number) => (b >= 1024 ? `${b / 1024} KiB` : `${b} B`);

/** markdown -- the tables as the README shows them. */
export function markdown(r: BenchReport): string {
  const m = r.machine;
  const L = [
    `# paste-host benchmark, ${r.date}`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memory}; ${m.kernel}; Node ${m.node}; flush ${m.flush}; pool on ${m.poolFilesystem}.`,
    `Command: \`${r.command}\`. Medians of interleaved rounds; every ratio is from this run.`,
  ];
  const mem = r.results.filter((x) => x.table === "mem");
  if (mem.length) {
    L.push("", "## mem port: the cost of logging, no network", "",
      "| request | mode | records/s | p50 ms | p99 ms | p99.9 ms | vs no logging | zero-copy vs copy |",
      "|---:|---|---:|---:|---:|---:|---:|---:|");
    for (const size of SIZES) {
      const row = (c: string) => mem.find((x) => x.size === size && x.config === c);
      const none = row("no logging")!;
      const copy = row("copy logging")!;
      for (const x of mem.filter((y) => y.size === size)) {
        const vsCopy = x.config === "zero-copy logging" ? `${(x.requestsPerSec / copy.requestsPerSec).toFixed(2)}x` : "";
        L.push(`| ${sizeLabel(size)} | ${x.config} | ${fmt(x.requestsPerSec)} | ${ms(x.p50ms)} | ${ms(x.p99ms)} | ${ms(x.p999ms)} | ${(x.requestsPerSec / none.requestsPerSec).toFixed(2)}x | ${vsCopy} |`);
      }
    }
    L.push("", "Latency here is a record's wait from its batch's fill to its commit (batches of 256).", "",
      "The Wasm boundary: the zero-copy handler in AssemblyScript runs at " + SIZES.map((size) => {
        const wasm = mem.find((x) => x.size === size && x.config === "zero-copy logging")!;
        const c = mem.find((x) => x.size === size && x.config.startsWith("zero-copy, C loop"))!;
        return `${(wasm.requestsPerSec / c.requestsPerSec).toFixed(2)}x (${sizeLabel(size)})`;
      }).join(", ") + " of the same WAL loop written in C inside the host.");
  }
  const kv = r.results.filter((x) => x.table === "kv");
  if (kv.length) {
    L.push("", "## TCP loopback: kv-wal and Redis 7, `redis-benchmark -t set -d 1024`", "",
      `Server CPU: user + system time of all its threads over the run (/proc/PID/stat) per request${PIN ? "; server pinned to core 1, client to core 0" : "; not pinned (one core)"}. ` +
      "Disk: bytes the server sent to storage per request (/proc/PID/io write_bytes), for the disk configurations.", "",
      "| server | client | requests/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/req | disk B/req | vs Redis, same persistence: throughput, CPU/req |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    const peerOf = (x: Result) => {
      const want = x.config.includes("no persistence") ? "Redis, no persistence"
        : x.config.includes("pmem") ? "Redis, AOF fsync always (tmpfs)" : x.config.includes("disk") ? "Redis, AOF fsync always (disk)" : "";
      return kv.find((y) => y.config === want && y.client === x.client);
    };
    for (const x of kv) {
      const peer = x.config.startsWith("kv-wal") ? peerOf(x) : undefined;
      const vs = peer ? `${(x.requestsPerSec / peer.requestsPerSec).toFixed(2)}x, ${ratio(x.cpuUs, peer.cpuUs)}` : "";
      const disk = x.config.includes("disk") && Number.isFinite(x.diskBytes) ? fmt(Math.round(x.diskBytes!)) : "";
      L.push(`| ${x.config} | ${x.client!.replace("redis-benchmark ", "")} | ${fmt(x.requestsPerSec)} | ${ms(x.p50ms)} | ${ms(x.p99ms)} | ${ms(x.p999ms)} | ${us(x.cpuUs)} | ${disk} | ${vs} |`);
    }
  }
  const http = r.results.filter((x) => x.table === "http");
  if (http.length) {
    L.push("", "## TCP loopback: http-wal, `wrk` with 1 KiB POST bodies", "",
      "| server | client | requests/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/req | vs no persistence | zero-copy vs copy |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const x of http) {
      const none = http.find((y) => y.config === "http-wal, no persistence" && y.client === x.client)!;
      const copy = http.find((y) => y.config.includes("copy") && y.client === x.client);
      const vsCopy = x.config === "http-wal, pmem (tmpfs)" && copy ? `${(x.requestsPerSec / copy.requestsPerSec).toFixed(2)}x` : "";
      L.push(`| ${x.config} | ${x.client} | ${fmt(x.requestsPerSec)} | ${ms(x.p50ms)} | ${ms(x.p99ms)} | ${ms(x.p999ms)} | ${us(x.cpuUs)} | ${(x.requestsPerSec / none.requestsPerSec).toFixed(2)}x | ${vsCopy} |`);
    }
  }
  if (r.cleaner?.length) {
    L.push("", "## The cleaner: kv-wal writing ten times its pool, `redis-benchmark -t set -d 1024 -c 50`", "",
      "| run | client | SETs | keys | SET/s | vs one key | keys read back whole |",
      "|---|---|---:|---:|---:|---:|---:|");
    for (const x of r.cleaner) {
      const back = Number.isNaN(x.readBack) ? "" : `${fmt(x.readBack)} of ${fmt(x.keys)}${x.missing ? ` (${fmt(x.missing)} never written)` : ""}`;
      L.push(`| ${x.config} | ${x.client} | ${fmt(x.sets)} | ${fmt(x.keys)} | ${fmt(Math.round(x.requestsPerSec))} | ${Number.isNaN(x.ratio) ? "" : `${x.ratio.toFixed(2)}x`} | ${back} |`);
    }
    L.push("", "A refused SET (-OOM) stops redis-benchmark and fails the run, so a row means none was refused.");
  }
  if (r.skipped.length) L.push("", "Skipped:", ...r.skipped.map((x) => `- ${x}`));
  return L.join("\n") + "\n";
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/**
 * svgChart -- one row per configuration: throughput as a bar (scaled within
 * its table), p50 and p99 latency as a second bar pair on a log scale.
 */
export function svgChart(r: BenchReport): string {
  const rows = r.results;
  const rowH = 18;
  const groups = ["mem", "kv", "http"] as const;
  const titles = { mem: "mem port (records/s)", kv: "kv-wal vs Redis, SET 1 KiB (requests/s)", http: "http-wal, 1 KiB POST (requests/s)" };
  const W = 1100;
  const labelW = 420;
  const barW = 330;
  const latX = labelW + barW + 30;
  const latW = W - latX - 20;
  let y = 50;
  const out: string[] = [];
  const allLat = rows.flatMap((x) => [x.p50ms, x.p99ms]).filter((v) => v > 0 && !Number.isNaN(v));
  const lo = Math.log10(Math.min(...allLat, 0.01));
  const hi = Math.log10(Math.max(...allLat, 1));
  const lx = (v: number) => latX + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo || 1)) * latW;
  for (const g of groups) {
    const rs = rows.filter((x) => x.table === g);
    if (!rs.length) continue;
    const max = Math.max(...rs.map((x) => x.requestsPerSec));
    out.push(`<text x="10" y="${y}" font-weight="bold">${esc(titles[g])}</text>`);
    y += 8;
    for (const x of rs) {
      y += rowH;
      const label = g === "mem" ? `${sizeLabel(x.size!)} ${x.config}` : `${x.config}, ${x.client}`;
      const w = (x.requestsPerSec / max) * barW;
      const ours = !x.config.startsWith("Redis");
      out.push(`<text x="10" y="${y}" font-size="11">${esc(label)}</text>`,
        `<rect x="${labelW}" y="${y - 11}" width="${w.toFixed(1)}" height="12" fill="${ours ? "#3b6ea5" : "#c0504d"}"/>`,
        `<text x="${(labelW + w + 4).toFixed(1)}" y="${y}" font-size="10">${fmt(x.requestsPerSec)}</text>`);
      if (x.p50ms > 0 && x.p99ms > 0) {
        out.push(`<line x1="${lx(x.p50ms).toFixed(1)}" x2="${lx(x.p99ms).toFixed(1)}" y1="${y - 5}" y2="${y - 5}" stroke="#888" stroke-width="2"/>`,
          `<circle cx="${lx(x.p50ms).toFixed(1)}" cy="${y - 5}" r="3.5" fill="#2a7f3f"/>`,
          `<circle cx="${lx(x.p99ms).toFixed(1)}" cy="${y - 5}" r="3.5" fill="#d08a1e"/>`);
      }
    }
    y += 24;
  }
  const ticks: string[] = [];
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) {
    const v = 10 ** e;
    ticks.push(`<line x1="${lx(v).toFixed(1)}" x2="${lx(v).toFixed(1)}" y1="40" y2="${y - 20}" stroke="#ddd"/>`,
      `<text x="${lx(v).toFixed(1)}" y="36" font-size="10" text-anchor="middle">${v >= 1 ? v : v.toFixed(Math.max(0, -e))} ms</text>`);
  }
  const m = r.machine;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 20}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">paste-host benchmark ${esc(r.date)}: ${esc(String(m.cpu))}, ${m.cores} cores, Node ${esc(String(m.node))}, ${esc(String(m.flush))}</text>`,
    `<text x="${latX}" y="18" font-size="11">latency (log scale): <tspan fill="#2a7f3f">● p50</tspan> <tspan fill="#d08a1e">● p99</tspan></text>`,
    `<text x="${labelW}" y="36" font-size="10">throughput, scaled within each table (blue: paste-host, red: Redis)</text>`,
    ...ticks, ...out, "</svg>", "",
  ].join("\n");
}

/** runBench -- every table, then results/<date>.json, .md and .svg. */
export async function runBench(o: BenchOptions = {}): Promise<{ report: BenchReport; files: string[] }> {
  const date = new Date().toISOString().replace(/:/g, "-").replace(/\..*/, "");
  const report: BenchReport = { date, machine: {}, command: `paste-host bench${o.quick ? " --quick" : ""}`, results: [], cleaner: [], skipped: [] };
  await memBench(o, report);
  await tcpBench(o, report);
  if (have("redis-benchmark")) {
    const dir = mkdtempSync(join(o.poolDir ?? "/dev/shm", "paste-bench-clean-"));
    try {
      const r = new Rounds(CLEAN_STEPS);
      report.cleaner = await cleanBench({
        handler: join(packageRoot(), "samples", "kv-wal", "kv-wal.wasm"), poolPath: (tag) => join(dir, `${tag}.pool`),
        size: o.quick ? "16M" : "256M", step: (what) => r.step(what),
      });
      r.finish("cleaner");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const outDir = o.outDir ?? join(packageRoot(), "bench", "results");
  mkdirSync(outDir, { recursive: true });
  const files = [join(outDir, `${date}.json`), join(outDir, `${date}.md`), join(outDir, `${date}.svg`)];
  writeFileSync(files[0], JSON.stringify(report, null, 2) + "\n");
  writeFileSync(files[1], markdown(report));
  writeFileSync(files[2], svgChart(report));
  return { report, files };
}

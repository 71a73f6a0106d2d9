// bench.ts -- `npm run bench` / `paste-host bench`: every configuration side
// by side in one invocation, rounds interleaved so a noisy machine hurts all
// configurations alike, medians reported, ratios computed within the run.
//
// The mem-port table: the same WAL handler (bench/handlers/mem-wal.ts) with no
// logging, copy logging (the host copies the payload into a fresh buffer and
// flushes the copy) and zero-copy logging (the record names the buffer the
// request arrived in), at 64 B, 1 KiB and 4 KiB requests.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { buildHandler } from "./build.js";
import { packageRoot } from "./native.js";
import { Runtime } from "./runtime.js";

export interface BenchOptions {
  /** CI smoke size: fewer requests and rounds. */
  quick?: boolean;
  /** Where results go (default bench/results). */
  outDir?: string;
  /** Directory for the scratch pool (default /dev/shm: emulated NVMM). */
  poolDir?: string;
}

const MODES = ["no logging", "copy logging", "zero-copy logging"] as const;
type Mode = (typeof MODES)[number];
const SIZES = [64, 1024, 4096];

export interface MemResult {
  size: number;
  mode: Mode;
  requests: number;
  /** Seconds per round, in round order. */
  rounds: number[];
  medianSeconds: number;
  recordsPerSec: number;
  nsPerRecord: number;
}

export interface TcpResult {
  /** Which server: "kv-wal pmem", "Redis AOF always", ... */
  server: string;
  client: string;
  conns: number;
  rounds: number[];
  requestsPerSec: number;
  p50ms: number;
  p99ms: number;
}

export interface BenchReport {
  date: string;
  machine: Record<string, string | number>;
  command: string;
  mem: MemResult[];
  tcp: TcpResult[];
  skipped: string[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function machine(poolFs: string, flush: string): Record<string, string | number> {
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? "unknown";
  return {
    cpu, cores: os.cpus().length, memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: `${os.type()} ${os.release()}`, node: process.version, flush, poolFilesystem: poolFs,
  };
}

function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}`);
  else process.stderr.write(`${text}\n`);
}

/** memBench -- the mem-port table. */
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
    Object.assign(report.machine, machine(`${info.persist.filesystem} (${info.persist.mode})`, info.flush));
    const setMode = (rt.handler.exports as unknown as { set_mode(m: number): void }).set_mode;
    const keep = 4096;
    const run = (size: number, mode: number, n: number): number => {
      setMode(mode);
      const t0 = process.hrtime.bigint();
      let sent = 0;
      while (sent < n) {
        const b = rt.memBatch(size, Math.min(256, n - sent), 16);
        if (b.filled === 0) throw new Error(`bench stalled at ${sent} requests (pool or log full)`);
        sent += b.filled;
        rt.takeReplies();
        const c = rt.stats().committedSeq;
        if (c > keep) rt.trim(c - keep);   // steady state: trims are part of every logging mode's cost
      }
      return Number(process.hrtime.bigint() - t0) / 1e9;
    };
    const total = SIZES.length * MODES.length * rounds;
    const times = new Map<string, number[]>();
    let done = 0;
    const start = Date.now();
    for (const size of SIZES) for (let m = 0; m < MODES.length; m++) run(size, m, 5000);   // warm up
    for (let r = 0; r < rounds; r++) {
      for (const size of SIZES) {
        for (let m = 0; m < MODES.length; m++) {
          const eta = done ? Math.round(((Date.now() - start) / done) * (total - done) / 1000) : "?";
          progress(`mem port: ${size} B ${MODES[m]}, round ${r + 1}/${rounds} (${done}/${total} runs, ~${eta}s left)`);
          const key = `${size}/${m}`;
          times.set(key, [...(times.get(key) ?? []), run(size, m, requests)]);
          done++;
        }
      }
    }
    progress(`mem port: ${total} runs done in ${((Date.now() - start) / 1000).toFixed(1)} s\n`);
    for (const size of SIZES) {
      for (let m = 0; m < MODES.length; m++) {
        const ts = times.get(`${size}/${m}`)!;
        const med = median(ts);
        report.mem.push({
          size, mode: MODES[m], requests, rounds: ts, medianSeconds: med,
          recordsPerSec: Math.round(requests / med), nsPerRecord: Math.round((med * 1e9) / requests),
        });
      }
    }
  } finally {
    rt.close();
    rmSync(poolPath, { force: true });
  }
}

function fmtSize(b: number): string {
  return b >= 1024 ? `${b / 1024} KiB` : `${b} B`;
}

// ------------------------------------------------------------ TCP loopback

function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
    srv.on("error", reject);
  });
}

interface Running { port: number; child: ChildProcess; stop(): Promise<void> }

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
    setTimeout(() => child.kill("SIGKILL"), 5000);
  });
}

async function startPaste(handler: string, pool: string, persist: string): Promise<Running> {
  const cli = join(packageRoot(), "dist", "host", "cli.js");
  const child = spawn(process.execPath, [cli, "run", "--pool", pool, "--handler", handler, "--listen", "tcp://127.0.0.1:0",
    "--create-size", "256M", "--persist", persist], { stdio: ["ignore", "pipe", "pipe"] });
  const m = await waitFor(child, /serving tcp:\/\/127\.0\.0\.1:(\d+)/, "paste-host run");
  return { port: Number(m[1]), child, stop: stopper(child) };
}

async function startRedis(dir: string, aof: boolean): Promise<Running> {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir,
    ...(aof ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"])];
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  await waitFor(child, /Ready to accept connections/, "redis-server");
  return { port, child, stop: stopper(child) };
}

/** redisBench -- redis-benchmark SET of 1 KiB values; requests/s and latency from its CSV. */
function redisBench(port: number, conns: number, n: number): { rps: number; p50: number; p99: number } {
  const r = spawnSync("redis-benchmark", ["-p", String(port), "-t", "set", "-d", "1024", "-c", String(conns), "-n", String(n), "--csv"],
    { encoding: "utf8", timeout: 300_000 });
  const row = r.stdout.split("\n").find((l) => l.startsWith('"SET"'));
  if (r.status !== 0 || !row) throw new Error(`redis-benchmark failed: ${r.stderr || r.stdout}`);
  const f = row.split(",").map((x) => Number(x.replace(/"/g, "")));
  return { rps: f[1], p50: f[4], p99: f[6] };
}

/** wrkBench -- wrk with 1 KiB POST bodies; requests/s and latency percentiles. */
function wrkBench(port: number, conns: number, seconds: number): { rps: number; p50: number; p99: number } {
  const r = spawnSync("wrk", ["-t1", `-c${conns}`, `-d${seconds}s`, "--latency", "-s", join(packageRoot(), "bench", "wrk-post.lua"),
    `http://127.0.0.1:${port}/`], { encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(r.stdout);
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === "us" ? 1e-3 : m[2] === "s" ? 1e3 : 1);
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  if (/Non-2xx|Socket errors/.test(r.stdout)) throw new Error(`wrk saw errors:\n${r.stdout}`);
  return { rps, p50: ms("50"), p99: ms("99") };
}

async function tcpBench(o: BenchOptions, report: BenchReport): Promise<void> {
  const root = packageRoot();
  const rounds = o.quick ? 1 : 3;
  const scratch = mkdtempSync(join(o.poolDir ?? "/dev/shm", "paste-bench-tcp-"));
  try {
    type Cfg = { server: string; client: "redis-benchmark" | "wrk"; start: () => Promise<Running> };
    const cfgs: Cfg[] = [];
    const kv = join(root, "samples", "kv-wal", "kv-wal.wasm");
    const http = join(root, "samples", "http-wal", "http-wal.wasm");
    if (have("redis-benchmark")) {
      cfgs.push({ server: "kv-wal, pmem (tmpfs)", client: "redis-benchmark", start: () => startPaste(kv, join(scratch, `kv-${Date.now()}.pool`), "pmem") });
      cfgs.push({ server: "kv-wal, no persistence", client: "redis-benchmark", start: () => startPaste(kv, join(scratch, `kvn-${Date.now()}.pool`), "none") });
      if (have("redis-server")) {
        cfgs.push({ server: "Redis, AOF fsync always (tmpfs)", client: "redis-benchmark", start: () => startRedis(mkdtempSync(join(scratch, "r-")), true) });
        cfgs.push({ server: "Redis, no persistence", client: "redis-benchmark", start: () => startRedis(mkdtempSync(join(scratch, "r-")), false) });
      } else report.skipped.push("Redis: redis-server is not installed (apt-get install -y redis-server)");
    } else report.skipped.push("kv-wal and Redis: redis-benchmark is not installed (apt-get install -y redis-tools)");
    if (have("wrk")) {
      cfgs.push({ server: "http-wal, pmem (tmpfs)", client: "wrk", start: () => startPaste(http, join(scratch, `h-${Date.now()}.pool`), "pmem") });
      cfgs.push({ server: "http-wal, no persistence", client: "wrk", start: () => startPaste(http, join(scratch, `hn-${Date.now()}.pool`), "none") });
    } else report.skipped.push("http-wal: wrk is not installed (apt-get install -y wrk)");

    const results = new Map<string, { rps: number; p50: number; p99: number }[]>();
    const total = cfgs.length * 2 * rounds;
    let done = 0;
    const t0 = Date.now();
    for (let r = 0; r < rounds; r++) {
      for (const c of cfgs) {
        const srv = await c.start();
        try {
          for (const conns of [1, 50]) {
            const eta = done ? Math.round(((Date.now() - t0) / done) * (total - done) / 1000) : "?";
            progress(`tcp: ${c.server}, ${c.client} -c ${conns}, round ${r + 1}/${rounds} (${done}/${total} runs, ~${eta}s left)`);
            const res = c.client === "wrk"
              ? wrkBench(srv.port, conns, o.quick ? 2 : 5)
              : redisBench(srv.port, conns, conns === 1 ? (o.quick ? 5000 : 20000) : (o.quick ? 20000 : 100000));
            const key = `${c.server}|${c.client}|${conns}`;
            results.set(key, [...(results.get(key) ?? []), res]);
            done++;
          }
        } finally {
          await srv.stop();
        }
      }
    }
    progress(`tcp: ${total} runs done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    for (const [key, rs] of results) {
      const [server, client, conns] = key.split("|");
      report.tcp.push({
        server, client, conns: Number(conns), rounds: rs.map((x) => x.rps),
        requestsPerSec: Math.round(median(rs.map((x) => x.rps))), p50ms: median(rs.map((x) => x.p50)), p99ms: median(rs.map((x) => x.p99)),
      });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** markdown -- the tables as the README shows them. */
export function markdown(r: BenchReport): string {
  const m = r.machine;
  const lines = [
    `# paste-host benchmark, ${r.date}`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memory}; ${m.kernel}; Node ${m.node}; flush ${m.flush}; pool on ${m.poolFilesystem}.`,
    `Command: \`${r.command}\`. Medians of interleaved rounds; ratios from the same run.`,
    "",
    "## mem port: logging cost without a network",
    "",
    "| request | mode | records/s | ns/record | vs no logging | zero-copy vs copy |",
    "|---:|---|---:|---:|---:|---:|",
  ];
  for (const size of SIZES) {
    const row = (mode: Mode) => r.mem.find((x) => x.size === size && x.mode === mode)!;
    const none = row("no logging");
    const copy = row("copy logging");
    for (const x of r.mem.filter((y) => y.size === size)) {
      const vsNone = (x.recordsPerSec / none.recordsPerSec).toFixed(2);
      const vsCopy = x.mode === "zero-copy logging" ? `${(x.recordsPerSec / copy.recordsPerSec).toFixed(2)}x` : "";
      lines.push(`| ${fmtSize(size)} | ${x.mode} | ${x.recordsPerSec.toLocaleString("en-US")} | ${x.nsPerRecord} | ${vsNone}x | ${vsCopy} |`);
    }
  }
  if (r.tcp.length) {
    lines.push("", "## TCP loopback: 1 KiB writes, requests/s and latency", "",
      "| server | client | conns | requests/s | p50 ms | p99 ms | vs Redis, same persistence |",
      "|---|---|---:|---:|---:|---:|---:|");
    const redis = (conns: number, aof: boolean) => r.tcp.find((x) => x.conns === conns && x.server.startsWith(aof ? "Redis, AOF" : "Redis, no"));
    for (const x of r.tcp) {
      let vs = "";
      if (x.server.startsWith("kv-wal")) {
        const peer = redis(x.conns, !x.server.includes("no persistence"));
        if (peer) vs = `${(x.requestsPerSec / peer.requestsPerSec).toFixed(2)}x`;
      }
      lines.push(`| ${x.server} | ${x.client} | ${x.conns} | ${x.requestsPerSec.toLocaleString("en-US")} | ${x.p50ms.toFixed(3)} | ${x.p99ms.toFixed(3)} | ${vs} |`);
    }
    lines.push("", "kv-wal and Redis: `redis-benchmark -t set -d 1024 -c N`; http-wal: `wrk -t1 -cN --latency -s bench/wrk-post.lua`.");
  }
  if (r.skipped.length) lines.push("", "Skipped:", ...r.skipped.map((x) => `- ${x}`));
  return lines.join("\n") + "\n";
}

/** runBench -- every table, then results/<date>.json and .md; returns the report. */
export async function runBench(o: BenchOptions = {}): Promise<{ report: BenchReport; files: string[] }> {
  const date = new Date().toISOString().replace(/:/g, "-").replace(/\..*/, "");
  const report: BenchReport = {
    date, machine: {}, command: `paste-host bench${o.quick ? " --quick" : ""}`, mem: [], tcp: [], skipped: [],
  };
  await memBench(o, report);
  await tcpBench(o, report);
  const outDir = o.outDir ?? join(packageRoot(), "bench", "results");
  mkdirSync(outDir, { recursive: true });
  const json = join(outDir, `${date}.json`);
  const md = join(outDir, `${date}.md`);
  writeFileSync(json, JSON.stringify(report, null, 2) + "\n");
  writeFileSync(md, markdown(report));
  return { report, files: [json, md] };
}

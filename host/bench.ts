// bench.ts -- `npm run bench` / `paste-host bench`: every configuration side
// by side in one invocation, rounds interleaved so a noisy machine hurts all
// configurations alike, medians reported, ratios computed within the run.
//
// The mem-port table: the same WAL handler (bench/handlers/mem-wal.ts) with no
// logging, copy logging (the host copies the payload into a fresh buffer and
// flushes the copy) and zero-copy logging (the record names the buffer the
// request arrived in), at 64 B, 1 KiB and 4 KiB requests.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

export interface BenchReport {
  date: string;
  machine: Record<string, string | number>;
  command: string;
  mem: MemResult[];
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
  return lines.join("\n") + "\n";
}

/** runBench -- every table, then results/<date>.json and .md; returns the report. */
export async function runBench(o: BenchOptions = {}): Promise<{ report: BenchReport; files: string[] }> {
  const date = new Date().toISOString().replace(/:/g, "-").replace(/\..*/, "");
  const report: BenchReport = {
    date, machine: {}, command: `paste-host bench${o.quick ? " --quick" : ""}`, mem: [],
  };
  await memBench(o, report);
  const outDir = o.outDir ?? join(packageRoot(), "bench", "results");
  mkdirSync(outDir, { recursive: true });
  const json = join(outDir, `${date}.json`);
  const md = join(outDir, `${date}.md`);
  writeFileSync(json, JSON.stringify(report, null, 2) + "\n");
  writeFileSync(md, markdown(report));
  return { report, files: [json, md] };
}

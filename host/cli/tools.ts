// tools.ts -- the tools around the runtime: the mem port driver, the wal
// client, the crash simulator, torture and the benchmarks.

import { Command, Option } from "commander";
import { markdown, runBench } from "../tools/bench.js";
import { CrashtestFailedError, TortureLossError } from "../core/errors.js";
import { Runtime } from "../core/runtime.js";
import { runWalClient, WalClientError } from "../tools/walclient.js";
import { runTorture, type TortureWorkload } from "../tools/torture.js";
import { runCrashtest, STEP_KINDS, type StepKind, type Workload } from "../tools/crashtest.js";
import type { PersistMode } from "../core/layout.js";
import { parseCount, parseSize } from "../core/size.js";
import { optionParser, persistOption } from "./options.js";

export function mem(parent: Command): void {
  parent
    .command("mem")
    .description("run a handler over the mem port: synthetic requests into RX slots, like netmap's pkt-gen")
    .requiredOption("--pool <path>", "pool file (created with --create-size if missing)")
    .requiredOption("--handler <file.wasm>", "handler module")
    .option("--size <bytes>", "request size (at most the buffer size)", optionParser((t) => parseSize(t, "--size")), 1024)
    .option("--requests <n>", "requests to send", optionParser((t) => parseCount(t, "--requests")), 100000)
    .option("--batch <n>", "requests per batch (at most the ring's slots - 1)", optionParser((t) => parseCount(t, "--batch")), 256)
    .option("--conns <n>", "connections to spread requests over", optionParser((t) => parseCount(t, "--conns")), 16)
    .option("--keep <n>", "trim all but the newest n committed records after each batch (default: never trim)", optionParser((t) => parseCount(t, "--keep")))
    .option("--create-size <size>", "create the pool with this size if it does not exist", optionParser((t) => parseSize(t, "--create-size")), 64 << 20)
    .addOption(persistOption())
    .action((o) => {
      const rt = Runtime.open(o.pool, { handler: o.handler, persist: o.persist as PersistMode, create: { size: o.createSize } });
      try {
        const r = rt.recovery;
        const info = rt.pool.info();
        console.log(`pool ${o.pool}: ${info.persist.mode} (${info.persist.reason}), flush ${info.flush}`);
        console.log(`recovered ${r.records} records (seq ${r.firstSeq}..${r.lastSeq}), replayed ${r.replayed}` +
          `${r.corrupt ? `, ${r.corrupt} CORRUPT from seq ${r.firstCorruptSeq}` : ""}${r.torn ? `, log torn at ${r.tornPos}: ${r.discarded} bytes cut` : ""}` +
          `${r.beyondTail ? `, ${r.beyondTail} found whole past the persistent tail` : ""}`);
        let sent = 0;
        let lastReport = Date.now();
        const t0 = process.hrtime.bigint();
        while (sent < o.requests) {
          const b = rt.memBatch(o.size, Math.min(o.batch, o.requests - sent), o.conns);
          rt.takeReplies();
          if (b.filled === 0) {
            const s = rt.stats();
            console.error(`paste-host: backpressure: ${s.freeBuffers} free buffers, log ${s.logUsed}/${s.logCapacity} bytes; ` +
              `stopping after ${sent} requests (pass --keep N to trim, or let the handler trim)`);
            break;
          }
          sent += b.filled;
          if (o.keep !== undefined) {
            const c = rt.stats().committedSeq;
            if (c > o.keep) rt.trim(c - o.keep);
          }
          if (Date.now() - lastReport > 1000 && process.stderr.isTTY) {
            process.stderr.write(`\r${sent}/${o.requests} requests`);
            lastReport = Date.now();
          }
        }
        const secs = Number(process.hrtime.bigint() - t0) / 1e9;
        const s = rt.stats();
        console.log(`${sent} requests of ${o.size} B in ${secs.toFixed(3)} s: ${Math.round(sent / secs)} req/s, ` +
          `${Math.round((secs * 1e9) / Math.max(sent, 1))} ns/request`);
        console.log(`logged ${s.records} records in ${s.batches} commits; payload bytes copied: ${s.payloadCopies}; ` +
          `handler errors: ${rt.handlerErrors.length}; committed seq ${s.committedSeq}`);
      } finally {
        rt.close();
      }
    });
}

export function walClient(parent: Command): void {
  parent
    .command("wal-client")
    .description("send length-prefixed frames to a wal-append server and check every acknowledgement")
    .option("--connect <url>", "server address, tcp://HOST:PORT", "tcp://127.0.0.1:7070")
    .option("--frames <n>", "frames to send", optionParser((t) => parseCount(t, "--frames")), 10000)
    .option("--size <bytes>", "payload bytes per frame (1 to 1M)", optionParser((t) => parseSize(t, "--size")), 1024)
    .option("--conns <n>", "connections", optionParser((t) => parseCount(t, "--conns")), 4)
    .option("--window <n>", "frames in flight per connection", optionParser((t) => parseCount(t, "--window")), 16)
    .option("--trim", "trim acknowledged frames every 1000 acks (or 4 MiB) per connection", false)
    .action(async (o) => {
      const r = await runWalClient({
        connect: o.connect, frames: o.frames, size: o.size, conns: o.conns, window: o.window, trim: o.trim,
        onProgress: (n) => process.stderr.isTTY && process.stderr.write(`\r${n}/${o.frames} acknowledged`),
      });
      if (process.stderr.isTTY) process.stderr.write("\n");
      console.log(`${r.acked} of ${r.sent} frames of ${o.size} B acknowledged in ${r.seconds.toFixed(3)} s ` +
        `(${Math.round(r.acked / r.seconds)} frames/s) over ${o.conns} connections; seq ${r.firstSeq}..${r.lastSeq}` +
        `${r.refused ? `; ${r.refused} refused${r.full ? ` (${r.full} for a full pool: trim, or use --trim)` : ""}` : ""}`);
      if (r.errors.length || r.acked !== r.sent) {
        throw new WalClientError(`${r.errors.length} problem(s): ${r.errors.slice(0, 5).join("; ")}`);
      }
    });
}

export function crashtest(parent: Command): void {
  parent
    .command("crashtest")
    .description("simulate power failures at every persist step of a handler's workload and check recovery on each image")
    .argument("<handler.wasm>", "the handler to test")
    .option("--images <n>", "crash images at most (small workloads are enumerated)", optionParser((t) => parseCount(t, "--images")), 300)
    .option("--seed <n>", "seed for sampling and cache evictions; failures print it", optionParser((t) => parseCount(t, "--seed")), 1)
    .addOption(new Option("--workload <kind>", "requests in the handler's protocol").choices(["mem", "kv", "frames", "http"]).default("mem"))
    .option("--requests <n>", "requests in the workload", optionParser((t) => parseCount(t, "--requests")), 40)
    .option("--size <bytes>", "payload bytes per request", optionParser((t) => parseSize(t, "--size")), 600)
    .option("--batch <n>", "requests per batch", optionParser((t) => parseCount(t, "--batch")), 6)
    .option("--keys <n>", "kv: distinct keys the SETs and DELs go to", optionParser((t) => parseCount(t, "--keys")), 7)
    .option("--keep <n>", "trim all but the newest n committed records after each batch (0: never; default 12, 0 for kv and http)", (t) => Number(t))
    .option("--pool-size <size>", "pool file size", optionParser((t) => parseSize(t, "--pool-size")), 4 << 20)
    .option("--last <n>", "crash only among the last n persist steps (aim at late work)", optionParser((t) => parseCount(t, "--last")))
    .addOption(new Option("--aim <kind>", "crash only at persist steps inside on_clean, a trim, the commit of packed copies or of re-logged records")
      .choices(Object.keys(STEP_KINDS)))
    .option("--point <step:draw>", "rebuild one image (from a failure's report) and keep it")
    .option("--keep-dir <dir>", "where failing images are kept", ".")
    .action(async (handler: string, o) => {
      const t0 = Date.now();
      let last = 0;
      const r = await runCrashtest({
        handler, images: o.images, seed: o.seed, workload: o.workload as Workload, requests: o.requests, size: o.size,
        batch: o.batch, keys: o.keys, keep: o.keep, point: o.point, keepDir: o.keepDir, poolSize: o.poolSize, last: o.last,
        aim: o.aim as StepKind | undefined,
        onProgress: (d, t, failed) => {
          // once a second, and at the end: on a terminal one line redrawn, elsewhere a line each
          if (d < t && Date.now() - last < 1000) return;
          last = Date.now();
          const secs = (Date.now() - t0) / 1000;
          const line = `crash images: ${d}/${t}, ${Math.round(d / Math.max(secs, 0.001))}/s, ${failed} failed, ${secs.toFixed(0)} s`;
          process.stderr.write(process.stderr.isTTY ? `\r\x1b[K${line}${d === t ? "\n" : ""}` : `${line}\n`);
        },
      });
      const kinds = (k: Record<StepKind, number>) => `${k.clean} in on_clean, ${k.pack} committing packed copies, ${k.relog} committing re-logged records, ${k.trim} in trims`;
      console.log(`${r.images} crash images over ${r.steps} persist steps (seed ${r.seed}): ${r.passed} recovered correctly, ${r.failures.length} failed (${r.seconds.toFixed(1)} s)`);
      console.log(`  persist steps: ${kinds(r.stepKinds)}`);
      console.log(`  images cut:    ${kinds(r.imageKinds)}`);
      console.log(`  images whose last batch was found past the persistent tail: ${r.beyondTail}`);
      if (o.workload === "kv") console.log(`  keys read back through the handler and checked: ${r.keysChecked}`);
      // the replay names every option the workload depends on
      const same = [`--workload ${o.workload}`, `--requests ${o.requests}`, `--size ${o.size}`, `--batch ${o.batch}`,
        `--pool-size ${o.poolSize}`, ...(o.workload === "kv" ? [`--keys ${o.keys}`] : []), ...(o.keep !== undefined ? [`--keep ${o.keep}`] : [])].join(" ");
      for (const f of r.failures.slice(0, 10)) {
        console.log(`  FAIL step ${f.step} draw ${f.draw}: ${f.problem}\n    image ${f.image}; ` +
          `replay: paste-host crashtest ${handler} --seed ${r.seed} --point ${f.step}:${f.draw} ${same}`);
      }
      if (r.failures.length) throw new CrashtestFailedError(`${r.failures.length} of ${r.images} crash images broke an invariant`);
    });
}

export function torture(parent: Command): void {
  parent
    .command("torture")
    .description("SIGKILL a kv-wal host at random moments under load, restart it, check every acknowledged write")
    .option("--kills <n>", "how many kills", optionParser((t) => parseCount(t, "--kills")), 5)
    .option("--duration <ms>", "each kill lands at a random moment within this many ms of load", optionParser((t) => parseCount(t, "--duration")), 600)
    .option("--conns <n>", "client connections", optionParser((t) => parseCount(t, "--conns")), 8)
    .addOption(new Option("--workload <kind>", "kv: each connection cycles over its own keys; kv-random: random keys from --keys, " +
      "on a pool of --create-size, so the cleaner keeps working").choices(["kv", "kv-random"]).default("kv"))
    .option("--keys <n>", "distinct keys: per connection (kv, default 50) or in all (kv-random, default 2000)", optionParser((t) => parseCount(t, "--keys")))
    .option("--value-size <bytes>", "bytes per value", optionParser((t) => parseSize(t, "--value-size")), 200)
    .option("--create-size <size>", "pool size when it is created (default 64M; kv-random: 12M, small enough that the cleaner must run)")
    .option("--redis-tools", "also load with redis-benchmark (random keys of its own) and read back with redis-cli (Debian: redis-tools)", false)
    .option("--handler <file.wasm>", "a kv-wal-compatible handler (default: the kv-wal sample)")
    .option("--pool <path>", "pool to use (default: a fresh one on /dev/shm, removed afterwards)")
    .option("--deploy-every <ms>", "also deploy handlers all through the load, this often (0: never)", optionParser((t) => parseCount(t, "--deploy-every")), 0)
    .option("--deploy-handler <file.wasm>", "what to deploy, alternating with --handler (default: the same handler)")
    .addOption(persistOption())
    .action(async (o) => {
      const random = o.workload === "kv-random";
      const r = await runTorture({
        kills: o.kills, maxMs: Math.max(o.duration, 20), minMs: Math.min(50, o.duration), conns: o.conns,
        workload: o.workload as TortureWorkload, keys: o.keys ?? (random ? 2000 : 50), valueSize: o.valueSize,
        createSize: o.createSize ?? (random ? "12M" : undefined),
        redisTools: o.redisTools,
        handler: o.handler, pool: o.pool, persist: o.persist, onProgress: (l) => console.error(l),
        deployEveryMs: o.deployEvery, deployHandler: o.deployHandler,
      });
      console.log(`kills: ${r.kills}, writes sent: ${r.written}, acknowledged: ${r.acked}, reads verified: ${r.verified}, ` +
        `${o.deployEvery ? `deploys: ${r.deploys}, ` : ""}losses: ${r.losses.length} (${r.seconds.toFixed(1)} s)`);
      console.log(`cleaner (kv-wal INFO, last seen before each kill, summed): ${r.cleaner.moved} live values moved, ${r.cleaner.dropped} dead ones dropped`);
      for (const l of r.losses.slice(0, 20)) console.log(`  LOSS ${l}`);
      if (r.losses.length) throw new TortureLossError(`${r.losses.length} acknowledged write(s) lost or damaged`);
    });
}

export function bench(parent: Command): void {
  parent
    .command("bench")
    .description("run every benchmark configuration side by side; write bench/results/<date>.json and .md")
    .option("--quick", "a short run for CI smoke use", false)
    .option("--out <dir>", "results directory (default: bench/results)")
    .action(async (o) => {
      const { report, files } = await runBench({ quick: o.quick, outDir: o.out });
      console.log(markdown(report));
      console.log(`wrote ${files.join(" and ")}`);
    });
}

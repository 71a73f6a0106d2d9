#!/usr/bin/env node
// cli.ts -- the paste-host command. commander gives every subcommand its
// --help and consistent errors; each action is a few lines over host/.
//
// Exit status: 0 success, 1 a PASTE_ERR_* error (printed with its code), 2 a
// usage error (unknown option, missing argument).

import { Command, InvalidArgumentError as CommanderArgError, Option } from "commander";
import { mkdirSync, realpathSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { buildHandler } from "./build.js";
import { markdown, runBench } from "./bench.js";
import { CrashtestFailedError, HandlerInvalidError, LogCorruptError, PasteError, TortureLossError, UsageError } from "./errors.js";
import { inspectHandler } from "./validate.js";
import { deployHandler, fetchStatus, formatDeploy, formatStatus } from "./status.js";
import { preview, walkLog } from "./logtool.js";
import { Runtime } from "./runtime.js";
import { DEFAULT_BATCH_BUDGET_MS, DEFAULT_DEPLOY_WAIT_MS, DEFAULT_MEMORY_LIMIT, serve } from "./server.js";
import { runWalClient, WalClientError } from "./walclient.js";
import { runTorture } from "./torture.js";
import { runCrashtest, type Workload } from "./crashtest.js";
import { formatPoolInfo } from "./format.js";
import { PERSIST_MODES, type PersistMode } from "./layout.js";
import { Pool } from "./pool.js";
import { formatSize, parseCount, parseSize } from "./size.js";

// commander calls these with the raw text; a UsageError becomes its usage error.
function optionParser<T>(parse: (text: string) => T) {
  return (text: string): T => {
    try {
      return parse(text);
    } catch (e) {
      throw new CommanderArgError((e as Error).message);
    }
  };
}

const persistOption = () =>
  new Option("--persist <mode>", "persistence mode: auto (DAX or tmpfs: pmem, else msync), pmem, msync or none")
    .choices(PERSIST_MODES as unknown as string[]);

export function buildProgram(): Command {
  const program = new Command("paste-host")
    .description("A WebAssembly-hosted logging runtime for non-volatile main memory (PASTE on Wasm).")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (s, write) => write(s) });

  const pool = program.command("pool").description("create and inspect pool files");

  pool
    .command("create")
    .description("create and format a pool file: superblock, log, netmap rings and buffers")
    .argument("<path>", "pool file to create (on /dev/shm to emulate NVMM, on a DAX mount for real NVMM)")
    .requiredOption("--size <size>", "file size, e.g. 64M or 1G (binary units)", optionParser((t) => parseSize(t, "--size")))
    .option("--buf-size <bytes>", "bytes per buffer, a power of two from 512 to 32768", optionParser((t) => parseSize(t, "--buf-size")), 2048)
    .option("--rings <n>", "ring pairs (one TX + one RX per data-path worker)", optionParser((t) => parseCount(t, "--rings")), 1)
    .option("--slots <n>", "slots per ring", optionParser((t) => parseCount(t, "--slots")), 1024)
    .option("--log-size <size>", "bytes for the log index (default: size/16, at least 256K)", optionParser((t) => parseSize(t, "--log-size")))
    .addOption(persistOption().default("auto"))
    .option("--force", "replace an existing file (refused while a host has it open)", false)
    .action((path: string, o) => {
      mkdirSync(dirname(path), { recursive: true });
      Pool.create(path, {
        size: o.size,
        bufSize: o.bufSize,
        rings: o.rings,
        slots: o.slots,
        logSize: o.logSize,
        persist: o.persist as PersistMode,
        force: o.force,
      });
      const p = Pool.open(path, { readOnly: true });
      try {
        const i = p.info();
        console.log(
          `created ${path}: ${formatSize(i.geometry.poolSize)}, ${i.geometry.buffers} buffers of ${i.geometry.bufSize} B, ` +
            `persist ${i.persist.mode} (${i.persist.reason})`,
        );
      } finally {
        p.close();
      }
    });

  pool
    .command("info")
    .description("show a pool's persistence mode, flush instruction, geometry, log usage and state")
    .argument("<path>", "pool file")
    .option("--json", "print machine-readable JSON", false)
    .addOption(persistOption().default("auto").hideHelp())
    .action((path: string, o) => {
      const p = Pool.open(path, { readOnly: true, persist: o.persist as PersistMode });
      try {
        const info = p.info();
        console.log(o.json ? JSON.stringify(info, null, 2) : formatPoolInfo(info));
      } finally {
        p.close();
      }
    });

  program
    .command("build")
    .description("compile an AssemblyScript handler with the SDK's settings (imported memory above the window, ABI export)")
    .argument("<handler.ts>", "the handler's entry file")
    .requiredOption("-o, --out <file.wasm>", "where to write the module")
    .option("--no-optimize", "skip -O3 (faster builds while developing)")
    .option("--debug", "keep debug names and write a source map", false)
    .action(async (entry: string, o) => {
      const t0 = Date.now();
      const out = await buildHandler(entry, o.out, { optimize: o.optimize, debug: o.debug });
      const { statSync } = await import("node:fs");
      console.log(`built ${out} (${statSync(out).size} bytes) in ${Date.now() - t0} ms`);
    });

  program
    .command("status")
    .description("one screen on a running host: handler, pool usage, connections, records/s, commit latency")
    .option("--pool <path>", "the host's pool: finds the admin address and token next to it")
    .option("--admin <url>", "admin API URL (default: from POOL.admin)")
    .option("--token-file <file>", "bearer token file (default: POOL.token)")
    .option("--json", "print the status as JSON", false)
    .action(async (o) => {
      const s = await fetchStatus(o);
      console.log(o.json ? JSON.stringify(s, null, 2) : formatStatus(s));
    });

  program
    .command("deploy")
    .description("swap the handler of a running host: validated first, replayed the live log, then takes over between two batches")
    .argument("<handler>", "the module to deploy (.wasm), or an AssemblyScript handler (.ts) to build first")
    .option("--pool <path>", "the host's pool: finds the admin address and token next to it")
    .option("--admin <url>", "admin API URL (default: from POOL.admin)")
    .option("--token-file <file>", "bearer token file (default: POOL.token)")
    .option("--json", "print the result as JSON", false)
    .action(async (file: string, o) => {
      let wasm = file;
      let scratch: string | null = null;
      if (file.endsWith(".ts")) {
        // build with the same settings as `paste-host build`, into a scratch directory
        const { mkdtempSync, rmSync } = await import("node:fs");
        const { tmpdir } = await import("node:os");
        const { basename, join } = await import("node:path");
        scratch = mkdtempSync(join(tmpdir(), "paste-deploy-"));
        wasm = join(scratch, basename(file).replace(/\.ts$/, ".wasm"));
        try {
          await buildHandler(file, wasm);
          if (!o.json) console.error(`built ${file}`);
        } catch (e) {
          rmSync(scratch, { recursive: true, force: true });
          throw e;
        }
      }
      try {
        const r = await deployHandler(wasm, o);
        console.log(o.json ? JSON.stringify(r, null, 2) : formatDeploy(r));
      } finally {
        if (scratch) (await import("node:fs")).rmSync(scratch, { recursive: true, force: true });
      }
    });

  program
    .command("validate")
    .description("check that a .wasm is a handler this host can run: size, format, memory layout, imports, exports, ABI")
    .argument("<handler.wasm>", "the module to check")
    .option("--json", "print what was found as JSON", false)
    .action(async (file: string, o) => {
      const { readFileSync } = await import("node:fs");
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (e) {
        throw new HandlerInvalidError(`cannot read ${file}: ${(e as Error).message}`);
      }
      const { info } = inspectHandler(bytes, file);
      if (o.json) console.log(JSON.stringify(info, null, 2));
      else {
        console.log(`${file}: a valid handler, ABI ${info.abi}, ${info.size} bytes, sha256 ${info.sha256}`);
        console.log(`  exports: ${info.exports.filter((e) => !e.startsWith("__")).join(", ")}`);
        console.log(`  imports: ${info.imports.join(", ")}`);
        console.log(`  memory: imports env.memory (at least ${info.memoryMinPages} pages), static data from 0x${(info.dataStart ?? 0).toString(16)}`);
      }
    });

  const log = program.command("log").description("inspect and check a pool's log (read-only; safe on a running pool)");

  log
    .command("dump")
    .description("print the live records from the head: sequence, length, extents, checksum, payload")
    .argument("<path>", "pool file")
    .option("--json", "one JSON object per line, payload in base64", false)
    .option("--from <seq>", "start at this sequence number", optionParser((t) => parseCount(t, "--from")), 0)
    .option("--limit <n>", "stop after n records", optionParser((t) => parseCount(t, "--limit")))
    .action((path: string, o) => {
      const pool = Pool.open(path, { readOnly: true });
      try {
        let n = 0;
        for (const r of walkLog(pool, o.from)) {
          if (o.limit !== undefined && n >= o.limit) break;
          n++;
          if (o.json) {
            console.log(JSON.stringify({
              seq: r.seq, len: r.len, crcOk: r.crcOk, crc: r.storedCrc, extents: r.extents, data: r.data.toString("base64"),
            }));
          } else {
            const ext = r.extents.map((e) => `${e.buf}+${e.off}:${e.len}`).join(",");
            console.log(`${String(r.seq).padStart(8)}  ${String(r.len).padStart(7)} B  [${ext}]  ${r.crcOk ? "crc ok " : "CRC BAD"}  ${preview(r.data)}`);
          }
        }
        if (!o.json) console.error(`${n} record${n === 1 ? "" : "s"}`);
      } finally {
        pool.close();
      }
    });

  log
    .command("verify")
    .description("check every live record's crc32c and the log's structure; exit 0 only if all hold")
    .argument("<path>", "pool file")
    .action((path: string) => {
      const pool = Pool.open(path, { readOnly: true });
      try {
        let ok = 0;
        const bad: number[] = [];
        for (const r of walkLog(pool)) {
          if (r.crcOk) ok++;
          else {
            bad.push(r.seq);
            console.log(`seq ${r.seq}: payload checksum mismatch (stored 0x${r.storedCrc.toString(16).padStart(8, "0")}, computed 0x${r.computedCrc.toString(16).padStart(8, "0")})`);
          }
        }
        if (bad.length) {
          throw new LogCorruptError(`${bad.length} of ${ok + bad.length} records fail their checksum: seq ${bad.slice(0, 20).join(", ")}${bad.length > 20 ? ", ..." : ""}`);
        }
        console.log(`ok: ${ok} record${ok === 1 ? "" : "s"}, every checksum holds`);
      } catch (e) {
        if (e instanceof PasteError && e.code === "PASTE_ERR_POOL_CORRUPT") throw new LogCorruptError(e.message, { cause: e });
        throw e;
      } finally {
        pool.close();
      }
    });

  program
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
          `${r.corrupt ? `, ${r.corrupt} CORRUPT from seq ${r.firstCorruptSeq}` : ""}${r.torn ? `, log torn at ${r.tornPos}: ${r.discarded} bytes cut` : ""}`);
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

  program
    .command("run")
    .description("serve a handler on a TCP port until SIGINT/SIGTERM, then shut down cleanly")
    .requiredOption("--pool <path>", "pool file (created with --create-size if missing)")
    .requiredOption("--handler <file.wasm>", "handler module (paste-host build)")
    .option("--listen <url>", "address to serve, tcp://HOST:PORT", "tcp://127.0.0.1:6380")
    .option("--create-size <size>", "create the pool with this size if it does not exist", optionParser((t) => parseSize(t, "--create-size")), 256 << 20)
    .option("--admin <host:port>", "admin API address (bearer token in POOL.token); \"off\" to disable", "127.0.0.1:0")
    .option("--batch-budget-ms <ms>", "stop a handler call that runs longer (the previous good handler takes over)",
      optionParser((t) => parseCount(t, "--batch-budget-ms")), DEFAULT_BATCH_BUDGET_MS)
    .addOption(new Option("--memory-limit <size>", "heap a handler may use (1M to 2G); one that runs out is stopped like one over budget")
      .argParser(optionParser((t) => parseSize(t, "--memory-limit"))).default(DEFAULT_MEMORY_LIMIT, "1G"))
    .option("--deploy-wait-ms <ms>", "how long a deploy waits for no request to be half received",
      optionParser((t) => parseCount(t, "--deploy-wait-ms")), DEFAULT_DEPLOY_WAIT_MS)
    .addOption(new Option("--log-format <format>", "log lines: pretty (paste-host: ...) or json (pino); auto: pretty on a TTY")
      .choices(["auto", "pretty", "json"]).default("auto"))
    .addOption(persistOption())
    .action(async (o) => {
      if (o.memoryLimit > 2 ** 31 || o.memoryLimit < 1 << 20) throw new UsageError(`--memory-limit must be from 1M to 2G, not ${o.memoryLimit} bytes`);
      if (o.batchBudgetMs < 1) throw new UsageError("--batch-budget-ms must be at least 1");
      const { done } = serve({ pool: o.pool, handler: o.handler, listen: o.listen, persist: o.persist as PersistMode, createSize: o.createSize,
        admin: o.admin, batchBudgetMs: o.batchBudgetMs, memoryLimit: o.memoryLimit, deployWaitMs: o.deployWaitMs, logFormat: o.logFormat });
      const code = await done;
      if (code) process.exitCode = code;
    });

  program
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
        `${r.refused ? `; ${r.refused} refused` : ""}`);
      if (r.errors.length || r.acked !== r.sent) {
        throw new WalClientError(`${r.errors.length} problem(s): ${r.errors.slice(0, 5).join("; ")}`);
      }
    });

  program
    .command("crashtest")
    .description("simulate power failures at every persist step of a handler's workload and check recovery on each image")
    .argument("<handler.wasm>", "the handler to test")
    .option("--images <n>", "crash images at most (small workloads are enumerated)", optionParser((t) => parseCount(t, "--images")), 300)
    .option("--seed <n>", "seed for sampling and cache evictions; failures print it", optionParser((t) => parseCount(t, "--seed")), 1)
    .addOption(new Option("--workload <kind>", "requests in the handler's protocol").choices(["mem", "kv", "frames", "http"]).default("mem"))
    .option("--requests <n>", "requests in the workload", optionParser((t) => parseCount(t, "--requests")), 40)
    .option("--size <bytes>", "payload bytes per request", optionParser((t) => parseSize(t, "--size")), 600)
    .option("--batch <n>", "requests per batch", optionParser((t) => parseCount(t, "--batch")), 6)
    .option("--keep <n>", "trim all but the newest n committed records after each batch (0: never; default 12, 0 for kv and http)", (t) => Number(t))
    .option("--pool-size <size>", "pool file size", optionParser((t) => parseSize(t, "--pool-size")), 4 << 20)
    .option("--last <n>", "crash only among the last n persist steps (aim at late work such as compaction)", optionParser((t) => parseCount(t, "--last")))
    .option("--point <step:draw>", "rebuild one image (from a failure's report) and keep it")
    .option("--keep-dir <dir>", "where failing images are kept", ".")
    .action(async (handler: string, o) => {
      const r = await runCrashtest({
        handler, images: o.images, seed: o.seed, workload: o.workload as Workload, requests: o.requests, size: o.size,
        batch: o.batch, keep: o.keep, point: o.point, keepDir: o.keepDir, poolSize: o.poolSize, last: o.last,
        onProgress: (d, t) => process.stderr.isTTY && process.stderr.write(`\r\x1b[Kcrash images: ${d}/${t}`),
      });
      if (process.stderr.isTTY) process.stderr.write("\n");
      console.log(`${r.images} crash images over ${r.steps} persist steps (seed ${r.seed}): ${r.passed} recovered correctly, ${r.failures.length} failed`);
      for (const f of r.failures.slice(0, 10)) {
        console.log(`  FAIL step ${f.step} draw ${f.draw}: ${f.problem}\n    image ${f.image}; replay: paste-host crashtest ${handler} --seed ${r.seed} --point ${f.step}:${f.draw}`);
      }
      if (r.failures.length) throw new CrashtestFailedError(`${r.failures.length} of ${r.images} crash images broke an invariant`);
    });

  program
    .command("torture")
    .description("SIGKILL a kv-wal host at random moments under load, restart it, check every acknowledged write")
    .option("--kills <n>", "how many kills", optionParser((t) => parseCount(t, "--kills")), 5)
    .option("--duration <ms>", "each kill lands at a random moment within this many ms of load", optionParser((t) => parseCount(t, "--duration")), 600)
    .option("--conns <n>", "client connections", optionParser((t) => parseCount(t, "--conns")), 8)
    .option("--handler <file.wasm>", "a kv-wal-compatible handler (default: the kv-wal sample)")
    .option("--pool <path>", "pool to use (default: a fresh one on /dev/shm, removed afterwards)")
    .option("--deploy-every <ms>", "also deploy handlers all through the load, this often (0: never)", optionParser((t) => parseCount(t, "--deploy-every")), 0)
    .option("--deploy-handler <file.wasm>", "what to deploy, alternating with --handler (default: the same handler)")
    .addOption(persistOption())
    .action(async (o) => {
      const r = await runTorture({
        kills: o.kills, maxMs: Math.max(o.duration, 20), minMs: Math.min(50, o.duration), conns: o.conns,
        handler: o.handler, pool: o.pool, persist: o.persist, onProgress: (l) => console.error(l),
        deployEveryMs: o.deployEvery, deployHandler: o.deployHandler,
      });
      console.log(`kills: ${r.kills}, writes sent: ${r.written}, acknowledged: ${r.acked}, reads verified: ${r.verified}, ` +
        `${o.deployEvery ? `deploys: ${r.deploys}, ` : ""}losses: ${r.losses.length} (${r.seconds.toFixed(1)} s)`);
      for (const l of r.losses.slice(0, 20)) console.log(`  LOSS ${l}`);
      if (r.losses.length) throw new TortureLossError(`${r.losses.length} acknowledged write(s) lost or damaged`);
    });

  program
    .command("bench")
    .description("run every benchmark configuration side by side; write bench/results/<date>.json and .md")
    .option("--quick", "a short run for CI smoke use", false)
    .option("--out <dir>", "results directory (default: bench/results)")
    .action(async (o) => {
      const { report, files } = await runBench({ quick: o.quick, outDir: o.out });
      console.log(markdown(report));
      console.log(`wrote ${files.join(" and ")}`);
    });

  return program;
}

/** run -- parse argv and run; returns the exit status instead of exiting. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride();
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number };
    if (typeof err.code === "string" && err.code.startsWith("commander.")) {
      // help and version exit 0; usage mistakes exit 2 (commander already printed them)
      return err.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof PasteError) {
      console.error(`paste-host: ${e.code}: ${e.message}`);
      return e instanceof UsageError ? 2 : e.exitCode;
    }
    throw e;
  }
}

// Run when executed directly (bin or `node dist/host/cli.js`), not when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // exitCode, not exit(): stdout to a pipe is written asynchronously, and
  // process.exit() would cut a long `log dump` short.
  run(process.argv.slice(2)).then(
    (code) => {
      if (code !== 0 || process.exitCode === undefined) process.exitCode = code;   // an action may have set it
    },
    (e) => {
      console.error(`paste-host: internal error: ${(e as Error).stack ?? e}`);
      process.exit(70);
    },
  );
}

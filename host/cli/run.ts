// run.ts -- `paste-host run` (the server) and `status` (one screen on a running one).

import { Command, Option } from "commander";
import { UsageError } from "../core/errors.js";
import { fetchStatus, formatStatus } from "../tools/status.js";
import { DEFAULT_BATCH_BUDGET_MS, DEFAULT_DEPLOY_WAIT_MS, DEFAULT_MEMORY_LIMIT, serve } from "../server/server.js";
import { CONST, type PersistMode } from "../core/layout.js";
import { parseCount, parseSize } from "../core/size.js";
import { defaultEngine, PORT_ENGINES, type PortEngine } from "../core/tcp.js";
import { optionParser, persistOption } from "./options.js";

/** parseBusyPoll -- --busy-poll's microseconds: 0 (or off) to 100000. */
function parseBusyPoll(text: string): number {
  const t = String(text).trim();
  if (t === "off") return 0;
  const max = CONST.PASTE_BUSY_POLL_MAX_US;
  if (!/^\d+$/.test(t) || Number(t) > max) throw new UsageError(`invalid --busy-poll '${text}': microseconds from 0 (off) to ${max}`);
  return Number(t);
}

export function run(parent: Command): void {
  parent
    .command("run")
    .description("serve a handler on a TCP port until SIGINT/SIGTERM, then shut down cleanly")
    .requiredOption("--pool <path>", "pool file (created with --create-size if missing)")
    .option("--handler <file.wasm>", "handler module (paste-host build); default: the one that served this pool last (POOL.handlers/, a deploy included)")
    .option("--handler-config <file>", "bytes the handler reads as its config in on_init (paste.config; at most 1 MiB); " +
      "default: with no --handler, the config that served last; with --handler, none")
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
    .addOption(new Option("--port-engine <engine>", "the TCP port's engine: uring (io_uring), epoll, or auto (io_uring where allowed, else epoll)")
      .choices(PORT_ENGINES).default(defaultEngine()))
    .option("--busy-poll <us>", "spin up to this many microseconds for the next request before sleeping, while requests come that often " +
      "(adaptive: an idle host sleeps); 0 or off never spins", optionParser(parseBusyPoll), CONST.PASTE_BUSY_POLL_US)
    .action(async (o, cmd: Command) => {
      if (o.memoryLimit > 2 ** 31 || o.memoryLimit < 1 << 20) throw new UsageError(`--memory-limit must be from 1M to 2G, not ${o.memoryLimit} bytes`);
      if (o.batchBudgetMs < 1) throw new UsageError("--batch-budget-ms must be at least 1");
      const { done } = serve({ pool: o.pool, handler: o.handler, handlerConfig: o.handlerConfig, listen: o.listen, persist: o.persist as PersistMode, createSize: o.createSize,
        admin: o.admin, batchBudgetMs: o.batchBudgetMs, memoryLimit: o.memoryLimit, deployWaitMs: o.deployWaitMs, logFormat: o.logFormat, busyPollUs: o.busyPoll,
        // left to the default, the startup line says it was the default
        portEngine: cmd.getOptionValueSource("portEngine") === "default" ? undefined : o.portEngine as PortEngine });
      const code = await done;
      if (code) process.exitCode = code;
    });
}

export function status(parent: Command): void {
  parent
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
}

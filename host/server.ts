// server.ts -- `paste-host run`: the control plane around the data path.
//
// The data path runs in a worker thread (worker.ts). This thread:
//  - prints the startup line and stops cleanly on SIGINT/SIGTERM;
//  - serves the admin API (admin.ts), including deploys: a module is
//    validated here, then the worker swaps it in between two batches;
//  - is the watchdog: a handler call that runs past --batch-budget-ms, or a
//    handler that runs out of its --memory-limit heap, gets its worker
//    terminated; a new worker takes over the same pool, port and connections
//    (Runtime.attach) with the previous good handler, or the same one afresh
//    if there is none. Committed records never depend on a worker: they are
//    in the pool, and the next handler replays them.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { AdminApi, tokenFor, type DeployResult, type HandlerEvent } from "./admin.js";
import {
  DeployBusyError, DeployFailedError, HandlerInvalidError, HandlerTimeoutError, PasteError, UsageError, catalogue,
} from "./errors.js";
import type { PersistMode } from "./layout.js";
import { createLogger, type LogFormat, type Logger } from "./logger.js";
import type { RecoveryReport } from "./runtime.js";
import { check, native } from "./native.js";
import { Pool } from "./pool.js";
import { inspectHandler } from "./validate.js";
import { Ctl, PHASES } from "./control.js";
import type { HandlerSummary, WorkerConfig, WorkerMessage } from "./worker.js";

export interface ServeOptions {
  pool: string;
  handler: string;
  listen: string;
  persist?: PersistMode;
  createSize?: number;
  /** Admin API address, HOST:PORT (port 0: any free port); "off" disables it. */
  admin?: string;
  /** A handler call running longer than this is stopped (default 500 ms). */
  batchBudgetMs?: number;
  /** Heap bytes a handler may use above its window (default 1 GiB). */
  memoryLimit?: number;
  /** How long a deploy waits for no request to be half received (default 5 s). */
  deployWaitMs?: number;
  /** Log format (default auto: pretty on a TTY, JSON otherwise). */
  logFormat?: LogFormat;
  /** Where lines go (default: a logger on stdout/stderr in logFormat). */
  log?: Logger;
}

export const DEFAULT_BATCH_BUDGET_MS = 500;
export const DEFAULT_MEMORY_LIMIT = 1 << 30;
export const DEFAULT_DEPLOY_WAIT_MS = 5000;
/**
 * Restarts in a row, each within a second of the last worker starting to
 * serve, after which the host gives up: a crash loop, not a client sending
 * poison now and then (each restart closes the offending connection).
 */
const MAX_RAPID_RESTARTS = 5;
/** Handlers kept for restoring, newest last. */
const KEEP_HANDLERS = 8;

/** parseListen -- "tcp://127.0.0.1:6380", "127.0.0.1:6380", "[::1]:6380" or ":6380". */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:tcp:\/\/)?(?:\[([^\]]+)\]|([^:/]*)):(\d{1,5})\/?$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(`invalid --listen '${text}': use tcp://HOST:PORT, e.g. tcp://127.0.0.1:6380`);
  }
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/** A handler the host can run: its bytes, what validation found, when it took over. */
interface Installed {
  bytes: Uint8Array;
  summary: HandlerSummary;
  since: string;
}

interface PendingDeploy {
  id: number;
  name: string;
  bytes: Uint8Array;
  resolve: (r: DeployResult) => void;
  reject: (e: Error) => void;
}

const short = (h: HandlerSummary) => `${h.name} (sha256 ${h.sha256.slice(0, 12)})`;

function errorFor(code: string, message: string): PasteError {
  const C = catalogue.find((c) => c.code === code);
  return C ? new C(message) : new PasteError(code, message);
}

/** serve -- run until a signal (or stop()); resolves with the exit status. */
export function serve(o: ServeOptions): { done: Promise<number>; stop: () => void; ready: Promise<number> } {
  const log = o.log ?? createLogger({ format: o.logFormat });
  const { host, port } = parseListen(o.listen);
  if (!existsSync(o.handler)) {
    throw new HandlerInvalidError(`handler ${o.handler} not found (build one with: paste-host build handler.ts -o ${o.handler})`);
  }
  const budgetMs = o.batchBudgetMs ?? DEFAULT_BATCH_BUDGET_MS;
  const first = new Uint8Array(readFileSync(o.handler));
  const { info: firstInfo } = inspectHandler(first, o.handler);   // refuse a bad module before touching the pool
  const handlers: Installed[] = [{
    bytes: first, since: new Date().toISOString(),
    summary: { name: o.handler, sha256: firstInfo.sha256, abi: firstInfo.abi, size: firstInfo.size },
  }];
  const current = () => handlers[handlers.length - 1];
  const events: HandlerEvent[] = [];
  const event = (kind: HandlerEvent["kind"], message: string) => {
    events.push({ at: new Date().toISOString(), kind, handler: current().summary.name, message });
    if (events.length > 20) events.shift();
  };

  const ctl = new Int32Array(new SharedArrayBuffer(Ctl.SIZE * 4));
  const epoch = Date.now();
  let worker!: Worker;
  let control!: MessagePort;
  let recovery: RecoveryReport | null = null;
  let boundPort = port;
  let stopping = false;
  let status = 0;
  /** Set while a worker is being terminated on purpose: what to start next. */
  let killing: { restore: Installed } | null = null;
  let pending: PendingDeploy | null = null;
  let nextDeployId = 1;
  let servingSince = 0;
  /** A worker is serving: false from a kill until its replacement is ready. */
  let dataPathUp = false;
  let rapidRestarts = 0;
  /** stopOnTrap: a trapping handler is replaced when there is an older one to go back to. */
  const handlersChanged = () => Atomics.store(ctl, Ctl.STOP_ON_TRAP, handlers.length > 1 ? 1 : 0);

  const adminAddr = o.admin === "off" ? null : parseListen(o.admin ?? "127.0.0.1:0");
  mkdirSync(dirname(resolve(o.pool)), { recursive: true });   // the token lives beside the pool
  const { token, file: tokenFile } = adminAddr ? tokenFor(o.pool) : { token: "", file: "" };
  const adminFile = `${o.pool}.admin`;
  const admin = adminAddr ? new AdminApi(token, {
    log: (line) => log.warn(line),
    deploy: (bytes, name) => deploy(bytes, name),
    serving: () => dataPathUp && !stopping,
    handler: () => ({ ...current().summary, deployedAt: current().since, previous: handlers.at(-2)?.summary.name ?? null, events }),
  }) : null;

  let readyResolve!: (port: number) => void;
  const ready = new Promise<number>((r) => (readyResolve = r));
  let doneResolve!: (status: number) => void;
  const done = new Promise<number>((r) => (doneResolve = r));

  const stop = () => {
    stopping = true;
    if (Atomics.load(ctl, Ctl.STOP) === 0) {
      Atomics.store(ctl, Ctl.STOP, 1);
      Atomics.notify(ctl, Ctl.STOP);
    }
  };
  const onSignal = (sig: string) => {
    log.warn(`${sig}: stopping (finishing the batch in flight, marking the pool clean)`);
    stop();
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);

  /** deploy -- validate here, swap in the worker; resolves when the new handler serves. */
  function deploy(bytes: Uint8Array, name: string): Promise<DeployResult> {
    if (pending || killing || stopping || !recovery) {
      return Promise.reject(new DeployBusyError(pending ? `a deploy of ${pending.name} is in progress` : "the data path is restarting or stopping"));
    }
    let info;
    try {
      info = inspectHandler(bytes, name).info;
    } catch (e) {
      log.warn(`deploy of ${name} refused: ${(e as Error).message}`, { code: (e as PasteError).code });
      return Promise.reject(e);
    }
    return new Promise<DeployResult>((resolve, reject) => {
      const id = nextDeployId++;
      pending = { id, name, bytes, resolve, reject };
      log.info(`deploying ${name} (sha256 ${info.sha256.slice(0, 12)}, ${info.size} bytes) over ${short(current().summary)}`);
      control.postMessage({ type: "deploy", id, bytes, name });
      Atomics.store(ctl, Ctl.MAIL, 1);
    });
  }

  /** kill -- terminate the worker; a new one takes over with restore. */
  function kill(err: PasteError, culpritIsNew: boolean): void {
    if (killing || stopping) return;
    dataPathUp = false;
    admin?.handlerStopped(err.code);
    rapidRestarts = Date.now() - servingSince < 1000 ? rapidRestarts + 1 : 0;
    let restore: Installed;
    let verb = "restoring";
    if (culpritIsNew) {
      restore = current();   // the deploy never took over: the old handler comes back as it was
      pending?.reject(new DeployFailedError(`${pending.name} failed while taking over; ${short(current().summary)} keeps serving: ${err.message}`));
      pending = null;
    } else {
      const bad = current();
      if (handlers.length > 1) handlers.pop();
      else verb = "no earlier handler: restarting";
      restore = current();
      event("stopped", `${short(bad.summary)}: ${err.message}`);
      if (pending) {
        pending.reject(new DeployBusyError(`the running handler was stopped before the deploy of ${pending.name} could start; retry`));
        pending = null;
      }
    }
    log.error(`${err.message}; ${verb} ${short(restore.summary)}`, { code: err.code });
    handlersChanged();
    if (rapidRestarts >= MAX_RAPID_RESTARTS) {
      log.fatal(`${rapidRestarts} handler restarts in a row, each within a second of the last: giving up`, { code: err.code });
      status = 1;
      stopping = true;
      void worker.terminate();
      return;
    }
    killing = { restore };
    void worker.terminate();
  }

  const watchdog = setInterval(() => {
    const since = Atomics.load(ctl, Ctl.BUSY_SINCE);
    if (!since || killing) return;
    const ran = Date.now() - epoch + 1 - since;
    if (ran <= budgetMs) return;
    const phase = PHASES[Atomics.load(ctl, Ctl.BUSY_PHASE)] ?? "a handler call";
    const installing = phase === "on_init" || phase === "on_replay";
    const name = installing && pending ? pending.name : current().summary.name;
    const err = new HandlerTimeoutError(`handler ${name} ran past the batch budget (${budgetMs} ms) in ${phase}: stopped`);
    if (installing && !pending) {
      // at startup or right after a restore: there is nothing older to go back to
      log.fatal(`${err.message} while starting; the host cannot serve with it`, { code: err.code });
      status = 1;
      stopping = true;
      void worker.terminate();
      return;
    }
    kill(err, installing);
  }, Math.max(5, Math.min(50, Math.floor(budgetMs / 5))));
  watchdog.unref();

  function startWorker(h: Installed): void {
    const channel = new MessageChannel();
    control = channel.port1;
    const data: WorkerConfig = {
      pool: o.pool, handler: h.bytes, handlerName: h.summary.name, host, port, persist: o.persist,
      createSize: o.createSize, memoryLimit: o.memoryLimit ?? DEFAULT_MEMORY_LIMIT, ctl, epoch,
      control: channel.port2, attach: recovery ? { recovery } : undefined,
      deployWaitMs: o.deployWaitMs ?? DEFAULT_DEPLOY_WAIT_MS,
    };
    Atomics.store(ctl, Ctl.BUSY_SINCE, 0);
    const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: data, transferList: [channel.port2] });
    worker = w;
    w.on("message", (m: WorkerMessage) => onMessage(m));
    w.on("error", (e) => {
      log.error(`internal error in the data path: ${e.stack ?? e}`, { code: "PASTE_ERR_INTERNAL" });
      status = 70;
    });
    w.on("exit", () => void onExit());
  }

  function onMessage(m: WorkerMessage): void {
    switch (m.type) {
      case "snapshot":
        admin?.update(m.snapshot);
        break;
      case "ready": {
        servingSince = Date.now();
        dataPathUp = true;
        if (recovery) {
          // a worker took over from a terminated one
          const t = m.takeover!;
          const msg = `${short(m.handler)} serves again on the same port: dropped ${t.dropped} uncommitted record(s) ` +
            `of the cut-off batch (never acknowledged), closed ${t.closed} connection(s) with a request cut off; ` +
            `replayed ${m.recovery.replayed} records`;
          event("restored", msg);
          log.info(msg);
          break;
        }
        recovery = m.recovery;
        boundPort = m.port;
        const r = m.recovery;
        log.info(`serving tcp://${host.includes(":") ? `[${host}]` : host}:${m.port} with ${o.handler}; ` +
          `pool ${o.pool}, persist ${m.mode} (${m.reason}), flush ${m.flush}; ` +
          `recovered ${r.records} records${r.corrupt ? `, ${r.corrupt} corrupt` : ""}${r.torn ? `, log cut at a torn record` : ""}` +
          `${r.wasClean ? "" : " after an unclean shutdown"}`);
        event("started", `${short(m.handler)} replayed ${r.replayed} records`);
        if (admin && adminAddr) {
          admin.listen(adminAddr.host, adminAddr.port).then((url) => {
            writeFileSync(adminFile, JSON.stringify({ url, pid: process.pid, tokenFile }) + "\n", { mode: 0o600 });
            log.info(`admin API on ${url} (bearer token in ${tokenFile})`);
            readyResolve(m.port);
          }, (e) => {
            log.error(`admin API cannot listen on ${o.admin}: ${(e as Error).message}`, { code: "PASTE_ERR_ADDR_IN_USE" });
            status = 1;
            stop();
            readyResolve(m.port);
          });
        } else {
          readyResolve(m.port);
        }
        break;
      }
      case "log":
        log[m.level](m.message, { ...m.fields, ...(m.code ? { code: m.code } : {}) });
        break;
      case "deployed": {
        const before = current().summary;
        if (pending?.id !== m.id) break;   // cannot happen: one deploy at a time
        handlers.push({ bytes: pending.bytes, summary: m.handler, since: new Date().toISOString() });
        if (handlers.length > KEEP_HANDLERS) handlers.splice(0, handlers.length - KEEP_HANDLERS);
        handlersChanged();
        const msg = `deployed ${short(m.handler)} replacing ${short(before)}: replayed ${m.replayed} records; ` +
          `prepared in ${m.prepareMs} ms, waited ${m.waitMs} ms for a quiet boundary, paused ${m.pauseMs} ms`;
        event("deployed", msg);
        log.info(msg);
        {
          pending.resolve({ handler: { ...m.handler, deployedAt: current().since }, previous: before, replayed: m.replayed,
            prepareMs: m.prepareMs, waitMs: m.waitMs, pauseMs: m.pauseMs });
          pending = null;
        }
        break;
      }
      case "deploy-failed": {
        const err = errorFor(m.code, m.message);
        log.warn(`deploy refused: ${m.message}`, { code: m.code });
        if (pending?.id === m.id) {
          pending.reject(err);
          pending = null;
        }
        break;
      }
      case "fatal-handler":
        kill(errorFor(m.code, m.message), false);
        break;
      case "error":
        log.error(m.message, { code: m.code });
        status = m.code === "PASTE_ERR_USAGE" ? 2 : 1;
        break;
      case "stopped":
        log.info(`stopped cleanly; committed seq ${m.committedSeq}`);
        break;
    }
  }

  async function onExit(): Promise<void> {
    if (killing && !stopping) {
      const { restore } = killing;
      killing = null;
      startWorker(restore);
      return;
    }
    releasePool();
    clearInterval(watchdog);
    pending?.reject(new DeployBusyError("the host stopped"));
    pending = null;
    if (admin) {
      await admin.close().catch(() => {});
      rmSync(adminFile, { force: true });
    }
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
    readyResolve(recovery ? boundPort : -1);
    doneResolve(status);
  }

  /**
   * releasePool -- when the last worker died without closing the pool (it was
   * terminated, or a restored handler failed to start), close it from here:
   * drop the cut-off batch as a takeover would, then close as a clean
   * shutdown does, so the next start does not count it as a crash. A worker
   * that stopped normally closed the pool itself, and attach finds nothing.
   */
  function releasePool(): void {
    let pool: Pool;
    try {
      pool = Pool.attach(o.pool);
    } catch {
      return;
    }
    try {
      check(native().workerTakeover(pool.handle, 0, [0], [0]));
      pool.close({ clean: true });
      log.warn(`closed ${o.pool} cleanly in place of the stopped data path`);
    } catch (e) {
      log.error(`closing ${o.pool}: ${(e as Error).message}`, { code: (e as PasteError).code });
    }
  }

  // Load the native library in this thread too, and keep it: koffi unloads a
  // library when the last thread that loaded it goes away, and with it would
  // go the pool, its lock and every connection a terminated worker leaves
  // for the next one (paste_pool_attach).
  native();
  startWorker(handlers[0]);
  return { done, stop, ready };
}

export { PasteError };

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

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { AdminApi, tokenFor, type DeployResult } from "./admin.js";
import { Handlers, type Installed } from "./handlers.js";
import {
  DeployBusyError, DeployFailedError, HandlerTimeoutError, IoError, NoPreviousHandlerError, DataPathDownError, PasteError, UsageError, catalogue,
} from "../core/errors.js";
import { HandlerStore, type ServedHow } from "../core/handlerstore.js";
import type { PersistMode } from "../core/layout.js";
import { createLogger, type LogFormat, type Logger } from "./logger.js";
import type { LogPage } from "../core/logwalk.js";
import type { RecoveryReport } from "../core/runtime.js";
import type { PortEngine } from "../core/tcp.js";
import { check, native } from "../core/native.js";
import { Pool } from "../core/pool.js";
import { inspectHandler } from "../core/validate.js";
import { checkConfig, configInfo } from "../core/config.js";
import { pickHandler } from "./pick.js";
import { Ctl, PHASES } from "./control.js";
import type { HandlerSummary, WorkerConfig, WorkerMessage } from "./worker.js";

export interface ServeOptions {
  pool: string;
  /** The handler module; default: the one that served the pool last (POOL.handlers/, pick.ts). */
  handler?: string;
  /** A file whose bytes the handler reads as its config (paste.config); default: with no --handler, the config that served last. */
  handlerConfig?: string;
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
  /** The TCP port's engine (default auto: io_uring where allowed, else epoll). */
  portEngine?: PortEngine;
  /** How long a poll spins before it sleeps, in microseconds (default 50; 0: never; native/busypoll.c). */
  busyPollUs?: number;
  /** Log format (default auto: pretty on a TTY, JSON otherwise). */
  logFormat?: LogFormat;
  /** Where lines go (default: a logger on stdout/stderr in logFormat). */
  log?: Logger;
}

export const DEFAULT_BATCH_BUDGET_MS = 500;

/** busyPollText -- the startup line's and the status screen's words for a busy-poll budget. */
export function busyPollText(us: number): string {
  return us ? `busy poll ${us} us` : "busy poll off";
}
export const DEFAULT_MEMORY_LIMIT = 1 << 30;
export const DEFAULT_DEPLOY_WAIT_MS = 5000;
/**
 * Restarts in a row, each within a second of the last worker starting to
 * serve, after which the host gives up: a crash loop, not a client sending
 * poison now and then (each restart closes the offending connection).
 */
const MAX_RAPID_RESTARTS = 5;

/** parseListen -- "tcp://127.0.0.1:6380", "127.0.0.1:6380", "[::1]:6380" or ":6380". */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:tcp:\/\/)?(?:\[([^\]]+)\]|([^:/]*)):(\d{1,5})\/?$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(`invalid --listen '${text}': use tcp://HOST:PORT, e.g. tcp://127.0.0.1:6380`);
  }
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}

interface PendingDeploy {
  id: number;
  name: string;
  bytes: Uint8Array;
  config: Uint8Array;
  /** A rollback: on success the replaced handler leaves the history. */
  rollback: boolean;
  resolve: (r: DeployResult) => void;
  reject: (e: Error) => void;
}

const short = (h: HandlerSummary) => `${h.name} (sha256 ${h.sha256.slice(0, 12)})`;

function errorFor(code: string, message: string): PasteError {
  const C = catalogue.find((c) => c.code === code);
  return C ? new C(message) : new PasteError(code, message);
}


/**
 * Host -- `paste-host run`'s control plane: one object whose state is the
 * data path's (the worker, what it recovered), the handlers', the deploy in
 * flight and the shutdown's. Its steps, in the order a run meets them:
 * startDataPath, watch (the watchdog), replace (a stopped handler), deploy,
 * shutDown.
 */
class Host {
  readonly log: Logger;
  readonly host: string;
  readonly port: number;
  readonly budgetMs: number;
  readonly ctl = new Int32Array(new SharedArrayBuffer(Ctl.SIZE * 4));
  readonly epoch = Date.now();
  readonly handlers: Handlers;
  readonly adminAddr: { host: string; port: number } | null;
  readonly admin: AdminApi | null = null;
  readonly adminFile: string;
  tokenFile = "";
  // the data path
  worker!: Worker;
  control!: MessagePort;
  recovery: RecoveryReport | null = null;
  boundPort: number;
  /** A worker is serving: false from a kill until its replacement is ready. */
  dataPathUp = false;
  servingSince = 0;
  rapidRestarts = 0;
  /** Set while a worker is being terminated on purpose: what to start next. */
  killing: { restore: Installed } | null = null;
  // deploys, and log pages asked of the data path
  pending: PendingDeploy | null = null;
  nextDeployId = 1;
  readonly logReads = new Map<number, { resolve: (p: LogPage) => void; reject: (e: Error) => void }>();
  // the end
  stopping = false;
  status = 0;
  readonly ready: Promise<number>;
  readonly done: Promise<number>;
  #readyResolve!: (port: number) => void;
  #wroteAdminFile = false;
  #doneResolve!: (status: number) => void;
  #watchdog?: NodeJS.Timeout;
  /** The pool's handler history (POOL.handlers/), and what run chose to start with. */
  readonly store: HandlerStore;
  readonly picked: ReturnType<typeof pickHandler>;
  readonly #onInt = () => this.#onSignal("SIGINT");
  readonly #onTerm = () => this.#onSignal("SIGTERM");

  constructor(readonly o: ServeOptions) {
    this.log = o.log ?? createLogger({ format: o.logFormat });
    ({ host: this.host, port: this.port } = parseListen(o.listen));
    this.boundPort = this.port;
    this.budgetMs = o.batchBudgetMs ?? DEFAULT_BATCH_BUDGET_MS;
    this.store = new HandlerStore(o.pool);
    // a bad module or config is refused before the pool is touched
    this.picked = pickHandler(o.handler, this.store, o.handlerConfig);
    const { bytes, name, info, config } = this.picked;
    this.handlers = new Handlers({
      bytes, config, since: new Date().toISOString(),
      summary: { name, sha256: info.sha256, abi: info.abi, size: info.size, config: configInfo(config) },
    }, this.ctl, (h, how) => this.#recordServed(h, how));
    this.adminAddr = o.admin === "off" ? null : parseListen(o.admin ?? "127.0.0.1:0");
    this.adminFile = `${o.pool}.admin`;
    mkdirSync(dirname(resolve(o.pool)), { recursive: true });   // the token lives beside the pool
    if (this.adminAddr) {
      const { token, file } = tokenFor(o.pool);
      this.tokenFile = file;
      this.admin = new AdminApi(token, {
        log: (line) => this.log.warn(line),
        deploy: (bytes, name, config) => this.deploy(bytes, name, config),
        rollback: () => this.rollback(),
        readLog: (from, limit) => this.readLog(from, limit),
        serving: () => this.dataPathUp && !this.stopping,
        stopping: () => this.stopping,
        handler: () => ({ ...this.handlers.view(), rollbackTo: this.store.previous()?.name ?? null }),
        history: () => ({ pool: this.o.pool, ...this.store.listing() }),
      });
    }
    this.ready = new Promise<number>((r) => (this.#readyResolve = r));
    this.done = new Promise<number>((r) => (this.#doneResolve = r));
  }

  // ------------------------------------------------------- start the data path

  /** start -- signals, the watchdog, and the first worker. */
  start(): void {
    process.on("SIGINT", this.#onInt);
    process.on("SIGTERM", this.#onTerm);
    this.#watchdog = setInterval(() => this.watch(), Math.max(5, Math.min(50, Math.floor(this.budgetMs / 5))));
    this.#watchdog.unref();
    // Load the native library in this thread too, and keep it: koffi unloads a
    // library when the last thread that loaded it goes away, and with it would
    // go the pool, its lock and every connection a terminated worker leaves
    // for the next one (paste_pool_attach).
    native();
    this.startDataPath(this.handlers.list[0]);
  }

  /** startDataPath -- a worker thread serving h: it opens the pool, or attaches to it after a takeover. */
  startDataPath(h: Installed): void {
    const o = this.o;
    const channel = new MessageChannel();
    this.control = channel.port1;
    const data: WorkerConfig = {
      pool: o.pool, handler: h.bytes, handlerName: h.summary.name, handlerConfig: h.config, host: this.host, port: this.port, persist: o.persist,
      createSize: o.createSize, memoryLimit: o.memoryLimit ?? DEFAULT_MEMORY_LIMIT, ctl: this.ctl, epoch: this.epoch,
      control: channel.port2, attach: this.recovery ? { recovery: this.recovery } : undefined,
      deployWaitMs: o.deployWaitMs ?? DEFAULT_DEPLOY_WAIT_MS, portEngine: o.portEngine, busyPollUs: o.busyPollUs,
    };
    Atomics.store(this.ctl, Ctl.BUSY_SINCE, 0);
    const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: data, transferList: [channel.port2] });
    this.worker = w;
    w.on("message", (m: WorkerMessage) => this.#onMessage(m));
    w.on("error", (e) => {
      this.log.error(`internal error in the data path: ${e.stack ?? e}`, { code: "PASTE_ERR_INTERNAL" });
      this.status = 70;
    });
    w.on("exit", () => void this.#onExit());
  }

  /** #onReady -- a worker serves: the first one prints the startup line and opens the admin API. */
  #onReady(m: Extract<WorkerMessage, { type: "ready" }>): void {
    this.servingSince = Date.now();
    this.dataPathUp = true;
    if (this.recovery) {
      // a worker took over from a terminated one
      const t = m.takeover!;
      const msg = `${short(m.handler)} serves again on the same port: dropped ${t.dropped} uncommitted record(s) ` +
        `of the cut-off batch (never acknowledged), closed ${t.closed} connection(s) with a request cut off; ` +
        `replayed ${m.recovery.replayed} records`;
      this.handlers.event("restored", msg);
      this.log.info(msg);
      return;
    }
    this.recovery = m.recovery;
    this.boundPort = m.port;
    const r = m.recovery;
    const host = this.host.includes(":") ? `[${this.host}]` : this.host;
    const { name, note, isNew } = this.picked;
    if (isNew) this.#recordServed(this.handlers.current, "run");
    this.log.info(`serving tcp://${host}:${m.port} with ${name}${note ? ` (${note})` : ""}; ` +
      `pool ${this.o.pool}, persist ${m.mode} (${m.reason}), flush ${m.flush}; port engine ${m.engine.engine} (${m.engine.reason}), ${busyPollText(m.busyPollUs)}; ` +
      `recovered ${r.records} records${r.corrupt ? `, ${r.corrupt} corrupt` : ""}${r.torn ? `, log cut at a torn record` : ""}` +
      `${r.beyondTail ? `, ${r.beyondTail} of them past the persistent tail` : ""}` +
      `${r.wasClean ? "" : " after an unclean shutdown"}`);
    this.handlers.event("started", `${short(m.handler)} replayed ${r.replayed} records`);
    if (!this.admin || !this.adminAddr) return this.#readyResolve(m.port);
    this.admin.listen(this.adminAddr.host, this.adminAddr.port).then((url) => {
      writeFileSync(this.adminFile, JSON.stringify({ url, pid: process.pid, tokenFile: this.tokenFile }) + "\n", { mode: 0o600 });
      this.#wroteAdminFile = true;
      this.log.info(`admin API on ${url} (bearer token in ${this.tokenFile})`);
      this.#readyResolve(m.port);
    }, (e) => {
      this.log.error(`admin API cannot listen on ${this.o.admin}: ${(e as Error).message}`, { code: "PASTE_ERR_ADDR_IN_USE" });
      this.status = 1;
      this.stop();
      this.#readyResolve(m.port);
    });
  }

  #onMessage(m: WorkerMessage): void {
    switch (m.type) {
      case "snapshot":
        return this.admin?.update(m.snapshot);
      case "ready":
        return this.#onReady(m);
      case "log":
        return this.log[m.level](m.message, { ...m.fields, ...(m.code ? { code: m.code } : {}) });
      case "deployed":
        return this.#onDeployed(m);
      case "deploy-failed":
        return this.#onDeployFailed(m);
      case "log-page":
      case "log-failed":
        return this.#logAnswered(m);
      case "fatal-handler":
        return this.replace(errorFor(m.code, m.message), false);
      case "error":
        this.log.error(m.message, { code: m.code });
        this.status = m.code === "PASTE_ERR_USAGE" ? 2 : 1;
        return;
      case "stopped":
        return this.log.info(`stopped cleanly; committed seq ${m.committedSeq}`);
    }
  }

  // ---------------------------------------------------------------- watch it

  /** watch -- the watchdog's tick: a handler call past the batch budget gets its worker stopped. */
  watch(): void {
    const since = Atomics.load(this.ctl, Ctl.BUSY_SINCE);
    if (!since || this.killing) return;
    const ran = Date.now() - this.epoch + 1 - since;
    if (ran <= this.budgetMs) return;
    const phase = PHASES[Atomics.load(this.ctl, Ctl.BUSY_PHASE)] ?? "a handler call";
    const installing = phase === "on_init" || phase === "on_replay";
    const name = installing && this.pending ? this.pending.name : this.handlers.current.summary.name;
    const err = new HandlerTimeoutError(`handler ${name} ran past the batch budget (${this.budgetMs} ms) in ${phase}: stopped`);
    if (installing && !this.pending) {
      // at startup or right after a restore: there is nothing older to go back to
      this.#giveUp(`${err.message} while starting; the host cannot serve with it`, err.code);
      return;
    }
    this.replace(err, installing);
  }

  #giveUp(message: string, code: string): void {
    this.log.fatal(message, { code });
    this.status = 1;
    this.stopping = true;
    void this.worker.terminate();
  }

  // ------------------------------------------------ replace a stopped handler

  /**
   * replace -- terminate the worker; a new one takes over the same pool, port
   * and connections with the previous good handler (or, if culpritIsNew, the
   * serving one, whose deploy never took over).
   */
  replace(err: PasteError, culpritIsNew: boolean): void {
    if (this.killing || this.stopping) return;
    this.dataPathUp = false;
    this.admin?.handlerStopped(err.code);
    this.rapidRestarts = Date.now() - this.servingSince < 1000 ? this.rapidRestarts + 1 : 0;
    const h = this.handlers;
    let verb = "restoring";
    if (culpritIsNew) {
      // the deploy never took over: the old handler comes back as it was
      this.#settleDeploy(new DeployFailedError(`${this.pending?.name} failed while taking over; ${short(h.current.summary)} keeps serving: ${err.message}`));
    } else {
      const bad = h.current;
      if (!h.drop()) verb = "no earlier handler: restarting";
      h.event("stopped", `${short(bad.summary)}: ${err.message}`);
      this.#settleDeploy(new DeployBusyError(`the running handler was stopped before the deploy of ${this.pending?.name} could start; retry`));
    }
    this.log.error(`${err.message}; ${verb} ${short(h.current.summary)}`, { code: err.code });
    if (this.rapidRestarts >= MAX_RAPID_RESTARTS) {
      this.#giveUp(`${this.rapidRestarts} handler restarts in a row, each within a second of the last: giving up`, err.code);
      return;
    }
    this.killing = { restore: h.current };
    void this.worker.terminate();
  }

  /**
   * #recordServed -- h serves now: keep it in the pool's history, so the next
   * run starts it. A failure to write there costs only that, never the
   * serving: it is logged, and the host goes on.
   */
  #recordServed(h: Installed, how: ServedHow): void {
    try {
      this.store.record(h.bytes, h.summary.name, how, h.config);
    } catch (e) {
      this.log.warn(`cannot record the serving handler in ${this.store.dir}: ${(e as Error).message}; a restart needs --handler`, { code: "PASTE_ERR_IO" });
    }
  }

  // ------------------------------------------------------------------ deploy

  /** deploy -- validate here, swap in the worker; resolves when the new handler serves, with config. */
  deploy(bytes: Uint8Array, name: string, config: Uint8Array = new Uint8Array(0), rollback = false): Promise<DeployResult> {
    if (this.pending || this.killing || this.stopping || !this.recovery) {
      return Promise.reject(new DeployBusyError(this.pending ? `a deploy of ${this.pending.name} is in progress` : "the data path is restarting or stopping"));
    }
    let info;
    try {
      info = inspectHandler(bytes, name).info;
      checkConfig(config, `the config of ${name}`);
    } catch (e) {
      this.log.warn(`deploy of ${name} refused: ${(e as Error).message}`, { code: (e as PasteError).code });
      return Promise.reject(e);
    }
    return new Promise<DeployResult>((resolve, reject) => {
      const id = this.nextDeployId++;
      this.pending = { id, name, bytes, config, rollback, resolve, reject };
      this.log.info(`${rollback ? "rolling back to" : "deploying"} ${name} (sha256 ${info.sha256.slice(0, 12)}, ${info.size} bytes) over ${short(this.handlers.current.summary)}`);
      this.control.postMessage({ type: "deploy", id, bytes, name, config });
      Atomics.store(this.ctl, Ctl.MAIL, 1);
    });
  }

  #onDeployed(m: Extract<WorkerMessage, { type: "deployed" }>): void {
    const p = this.pending;
    if (p?.id !== m.id) return;   // cannot happen: one deploy at a time
    const before = this.handlers.current.summary;
    this.handlers.push({ bytes: p.bytes, config: p.config, summary: m.handler, since: new Date().toISOString() }, p.rollback);
    const msg = `${p.rollback ? "rolled back to" : "deployed"} ${short(m.handler)} replacing ${short(before)}: replayed ${m.replayed} records; ` +
      `prepared in ${m.prepareMs} ms, waited ${m.waitMs} ms for a quiet boundary, paused ${m.pauseMs} ms`;
    this.handlers.event(p.rollback ? "rolled back" : "deployed", msg);
    this.log.info(msg);
    this.pending = null;
    p.resolve({ handler: { ...m.handler, deployedAt: this.handlers.current.since }, previous: before, replayed: m.replayed,
      prepareMs: m.prepareMs, waitMs: m.waitMs, pauseMs: m.pauseMs, ...(p.rollback ? { rolledBack: true } : {}) });
  }

  /**
   * rollback -- the handler (module and config) that served the pool before
   * the serving one, from POOL.handlers/ (the same choice as a rollback of a
   * stopped pool: HandlerStore.previous), deployed through the same path as
   * any deploy (validated, swapped between batches, replayed); the one it
   * replaces leaves the rollback stack, so a second one goes further back.
   */
  rollback(): Promise<DeployResult> {
    let to: Installed["bytes"], config: Uint8Array, name: string;
    try {
      const prev = this.store.previous();
      if (!prev) {
        return Promise.reject(new NoPreviousHandlerError(`${short(this.handlers.current.summary)} is the only handler ${this.o.pool} has ` +
          "served (paste-host handlers list shows its history): nothing to roll back to"));
      }
      [to, config, name] = [new Uint8Array(readFileSync(this.store.modulePath(prev.sha256))), this.store.configOf(prev), prev.name];
    } catch (e) {
      return Promise.reject(new IoError(`cannot read the handler to roll back to from ${this.store.dir}: ${(e as Error).message}`));
    }
    return this.deploy(to, name, config, true);
  }

  /** readLog -- a page of the log, read by the worker between batches (the walk is the data path's to make). */
  readLog(from: number, limit: number): Promise<LogPage> {
    if (this.killing || this.stopping || !this.dataPathUp) return Promise.reject(new DataPathDownError("the data path is restarting or stopping; retry"));
    return new Promise<LogPage>((resolve, reject) => {
      const id = this.nextDeployId++;
      this.logReads.set(id, { resolve, reject });
      this.control.postMessage({ type: "log", id, from, limit });
      Atomics.store(this.ctl, Ctl.MAIL, 1);
    });
  }

  /** #logAnswered -- the worker's answer to a readLog. */
  #logAnswered(m: Extract<WorkerMessage, { type: "log-page" | "log-failed" }>): void {
    const r = this.logReads.get(m.id);
    this.logReads.delete(m.id);
    if (m.type === "log-page") r?.resolve(m.page);
    else r?.reject(errorFor(m.code, m.message));
  }

  /** #dropLogReads -- the worker that was asked is gone: its answers never come. */
  #dropLogReads(): void {
    for (const r of this.logReads.values()) r.reject(new DataPathDownError("the data path restarted before reading the log; retry"));
    this.logReads.clear();
  }

  #onDeployFailed(m: Extract<WorkerMessage, { type: "deploy-failed" }>): void {
    this.log.warn(`deploy refused: ${m.message}`, { code: m.code });
    if (this.pending?.id === m.id) this.#settleDeploy(errorFor(m.code, m.message));
  }

  /** #settleDeploy -- the deploy in flight, if any, fails with e. */
  #settleDeploy(e: Error): void {
    this.pending?.reject(e);
    this.pending = null;
  }

  // --------------------------------------------------------------- shut down

  /** stop -- the worker stops after the batch in flight and closes the pool cleanly. */
  stop(): void {
    this.stopping = true;
    if (Atomics.load(this.ctl, Ctl.STOP) === 0) {
      Atomics.store(this.ctl, Ctl.STOP, 1);
      Atomics.notify(this.ctl, Ctl.STOP);
    }
  }

  #onSignal(sig: string): void {
    this.log.warn(`${sig}: stopping (finishing the batch in flight, marking the pool clean)`);
    this.stop();
  }

  /** #onExit -- a worker ended: start the replacement, or shut down. */
  async #onExit(): Promise<void> {
    this.#dropLogReads();
    if (this.killing && !this.stopping) {
      const { restore } = this.killing;
      this.killing = null;
      this.startDataPath(restore);
      return;
    }
    await this.shutDown();
  }

  /** shutDown -- the last worker is gone: release the pool, the admin API and the signals; resolve done. */
  async shutDown(): Promise<void> {
    this.#releasePool();
    clearInterval(this.#watchdog);
    this.#settleDeploy(new DeployBusyError("the host stopped"));
    if (this.admin) {
      await this.admin.close().catch(() => {});
      // only the file this host wrote: a run that failed (pool locked, port
      // taken) must not hide the host that is running from status and deploy
      if (this.#wroteAdminFile) rmSync(this.adminFile, { force: true });
    }
    process.off("SIGINT", this.#onInt);
    process.off("SIGTERM", this.#onTerm);
    this.#readyResolve(this.recovery ? this.boundPort : -1);
    this.#doneResolve(this.status);
  }

  /**
   * #releasePool -- when the last worker died without closing the pool (it was
   * terminated, or a restored handler failed to start), close it from here:
   * drop the cut-off batch as a takeover would, then close as a clean
   * shutdown does, so the next start does not count it as a crash. A worker
   * that stopped normally closed the pool itself, and attach finds nothing.
   */
  #releasePool(): void {
    let pool: Pool;
    try {
      pool = Pool.attach(this.o.pool);
    } catch {
      return;
    }
    try {
      check(native().workerTakeover(pool.handle, 0, [0], [0]));
      pool.close({ clean: true });
      this.log.warn(`closed ${this.o.pool} cleanly in place of the stopped data path`);
    } catch (e) {
      this.log.error(`closing ${this.o.pool}: ${(e as Error).message}`, { code: (e as PasteError).code });
    }
  }
}

/** serve -- run until a signal (or stop()); resolves with the exit status. */
export function serve(o: ServeOptions): { done: Promise<number>; stop: () => void; ready: Promise<number> } {
  const host = new Host(o);
  host.start();
  return { done: host.done, stop: () => host.stop(), ready: host.ready };
}

export { PasteError };

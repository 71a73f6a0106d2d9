// worker.ts -- the data path, in a worker thread so the main thread stays
// free for control: signals, the admin API, and the watchdog that stops this
// thread when a handler call runs past its budget.
//
// The worker owns the handler; the pool, its lock, the TCP port and every
// connection belong to the process (native state), so when the main thread
// terminates a worker, the next one attaches to them (Runtime.attach) and no
// connection that was not mid-request is lost.
//
// Main -> worker: a shared Int32Array (see Ctl) it checks between polls, and a
// MessagePort read synchronously (receiveMessageOnPort) when Ctl.MAIL is set.
// Worker -> main: postMessage (WorkerMessage).

import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import type { HostSnapshot } from "./admin.js";
import { DeployBusyError, DeployFailedError, HandlerMemoryError, HandlerTrapError, PasteError } from "../core/errors.js";
import { CONST, type PersistMode } from "../core/layout.js";
import type { LogLevel } from "./logger.js";
import { Runtime, type HandlerPhase, type PreparedHandler, type RecoveryReport, type RuntimeStats, type TakeoverReport } from "../core/runtime.js";
import type { HandlerInfo } from "../core/validate.js";
import { configInfo, type ConfigInfo } from "../core/config.js";
import { logPage, type LogPage } from "../core/logwalk.js";
import { Ctl, PHASES } from "./control.js";
import type { EngineChoice, PortEngine } from "../core/tcp.js";

export interface WorkerConfig {
  pool: string;
  /** The handler's bytes and the name it is known by (its path, or the deployed name). */
  handler: Uint8Array;
  handlerName: string;
  /** Its config (empty: none): what paste.config reads. */
  handlerConfig: Uint8Array;
  host: string;
  port: number;
  persist?: PersistMode;
  createSize?: number;
  memoryLimit?: number;
  ctl: Int32Array;
  epoch: number;
  control: MessagePort;
  /** Set when this worker replaces a terminated one: attach, do not open. */
  attach?: { recovery: RecoveryReport };
  /** How long a deploy waits for no request to be half received. */
  deployWaitMs: number;
  /** The TCP port's engine, asked for (tcp.ts). */
  /** None: the default (defaultEngine), named so on the startup line. */
  portEngine?: PortEngine;
  /** How long a poll spins before it sleeps (native/busypoll.c); none: the native default. */
  busyPollUs?: number;
}

export interface HandlerSummary {
  name: string;
  sha256: string;
  abi: number;
  size: number;
  /** The config it serves with: size and sha256, null for none. */
  config: ConfigInfo | null;
}

export type ControlMessage =
  | { type: "deploy"; id: number; bytes: Uint8Array; name: string; config: Uint8Array }
  | { type: "log"; id: number; from: number; limit: number };

export type WorkerMessage =
  | { type: "snapshot"; snapshot: Omit<HostSnapshot, "handler"> }
  | { type: "ready"; port: number; engine: EngineChoice; busyPollUs: number; mode: string; reason: string; flush: string; recovery: RecoveryReport;
      handler: HandlerSummary; takeover?: TakeoverReport }
  | { type: "log"; level: LogLevel; code?: string; message: string; fields?: Record<string, unknown> }
  | { type: "deployed"; id: number; handler: HandlerSummary; replayed: number; prepareMs: number; waitMs: number; pauseMs: number }
  | { type: "deploy-failed"; id: number; code: string; message: string }
  | { type: "log-page"; id: number; page: LogPage }
  | { type: "log-failed"; id: number; code: string; message: string }
  | { type: "fatal-handler"; code: string; message: string }
  | { type: "error"; code: string; message: string }
  | { type: "stopped"; records: number; committedSeq: number };

const post = (m: WorkerMessage) => parentPort!.postMessage(m);
const cfg = workerData as WorkerConfig;
const ctl = cfg.ctl;

const summary = (name: string, i: HandlerInfo, config: Uint8Array): HandlerSummary =>
  ({ name, sha256: i.sha256, abi: i.abi, size: i.size, config: configInfo(config) });

/** watch -- publish which handler call runs since when, for the main thread's watchdog. */
function watch(phase: HandlerPhase | null): void {
  if (phase === null) {
    Atomics.store(ctl, Ctl.BUSY_SINCE, 0);
  } else {
    Atomics.store(ctl, Ctl.BUSY_PHASE, PHASES.indexOf(phase));
    Atomics.store(ctl, Ctl.BUSY_SINCE, Date.now() - cfg.epoch + 1);
  }
}

function open(): Runtime {
  const o = {
    handler: cfg.handler,
    handlerName: cfg.handlerName,
    config: cfg.handlerConfig,
    persist: cfg.persist,
    create: cfg.createSize ? { size: cfg.createSize } : undefined,
    memoryLimit: cfg.memoryLimit,
    watch,
    stopOnTrap: () => Atomics.load(ctl, Ctl.STOP_ON_TRAP) === 1,
    onHandlerError: (e: Error) => post({ type: "log", level: "error", code: (e as PasteError).code, message: e.message }),
    onTrace: (level: LogLevel, message: string) =>
      post({ type: "log", level, message: `handler ${rtName()}: ${message}`, fields: { source: "trace", handler: rtName() } }),
  };
  return cfg.attach ? Runtime.attach(cfg.pool, o, cfg.attach.recovery) : Runtime.open(cfg.pool, o);
}

let current: Runtime | null = null;
const rtName = () => current?.handler.name ?? cfg.handlerName;

/**
 * deploy -- swap handlers between batches. First wait (serving on) until no
 * connection has a request half received, reading meanwhile only from the
 * connections that do, so the new handler never meets the tail of a request
 * whose head the old one kept; then install the new handler (replay included)
 * while no batch runs.
 */
function deploy(rt: Runtime, m: Extract<ControlMessage, { type: "deploy" }>): void {
  const t0 = Date.now();
  const refuse = (e: PasteError) => post({ type: "deploy-failed", id: m.id, code: e.code, message: e.message });
  const failed = (e: PasteError) =>
    refuse(new DeployFailedError(`${m.name} failed while taking over; the old handler keeps serving: ${e.message}`, { cause: e }));
  // compile, make its memory, map the window: while the old handler serves on
  let next: PreparedHandler;
  try {
    next = rt.prepareHandler(m.bytes, m.name, m.config);
  } catch (e) {
    if (!(e instanceof PasteError)) throw e;
    return failed(e);
  }
  const tq = Date.now();
  let holding = rt.quiesce(true);
  try {
    while (holding > 0) {
      if (Date.now() - tq > cfg.deployWaitMs) {
        rt.discardHandler(next);
        return refuse(new DeployBusyError(`${holding} connection(s) kept a request half sent for ${cfg.deployWaitMs} ms; ` +
          `the old handler keeps serving; retry the deploy`));
      }
      rt.pollTcp(10);   // the running handler's errors here are its own: they propagate
      holding = rt.quiesce(true);
    }
    const t1 = Date.now();
    let replayed: number;
    try {
      replayed = rt.replaceHandler(next);
    } catch (e) {
      if (!(e instanceof PasteError)) throw e;
      return failed(e);
    }
    post({ type: "deployed", id: m.id, handler: summary(m.name, rt.handler.info, rt.handler.config), replayed,
      prepareMs: tq - t0, waitMs: t1 - tq, pauseMs: Date.now() - t1 });
  } finally {
    rt.quiesce(false);
  }
}

/**
 * obey -- a message from the main thread, between two batches. The log is
 * read here, not there: the walk cursor is the pool's, and only this thread
 * may move it (a deploy's replay uses it too) or change the log under it.
 */
function obey(rt: Runtime, m: ControlMessage): void {
  if (m.type === "deploy") return deploy(rt, m);
  try {
    post({ type: "log-page", id: m.id, page: logPage(rt.pool, m.from, m.limit) });
  } catch (e) {
    if (!(e instanceof PasteError)) throw e;
    post({ type: "log-failed", id: m.id, code: e.code, message: e.message });
  }
}

/** space -- the snapshot's view of the pool's pressure (what the host calls on_clean for). */
function space(rt: Runtime, stats: RuntimeStats): HostSnapshot["space"] {
  const p = rt.pressure();
  const pressure = [
    p.flags & CONST.PASTE_PRESSURE_BUFS ? "buffers" : "",
    p.flags & CONST.PASTE_PRESSURE_LOG ? "log" : "",
    p.flags & CONST.PASTE_PRESSURE_FULL ? "full" : "",
  ].filter(Boolean);
  return { ringBuffers: p.ringBuffers, cleaner: !!rt.handler.exports.on_clean, reserveBuffers: p.reserveBuffers, logReserve: p.logReserve, pressure, usage: rt.space(stats) };
}

/**
 * sayWhenFull -- while the pool is down to the cleaner's reserve, a handler's
 * writes are refused (kv-wal: -OOM): log it once when refusals start, with
 * what is full, and once when a second passes without one. Returns the
 * refusal count seen and whether refusals are going on.
 */
function sayWhenFull(snap: Omit<HostSnapshot, "handler">, was: { refused: number; full: boolean }): { refused: number; full: boolean } {
  const refused = snap.stats.refused;
  const now = refused > was.refused;
  if (now !== was.full) {
    const b = snap.space.usage.buffers;
    const what = `${b.free} of ${b.total} buffers free (the last ${snap.space.reserveBuffers} kept for the cleaner), ` +
      `${snap.stats.logUsed} of ${snap.stats.logCapacity} log bytes used (the last ${snap.space.logReserve} kept)`;
    post(now
      ? { type: "log", level: "warn", code: "PASTE_ERR_POOL_FULL", message: `pool full: the handler's writes are refused until space is freed; ${what}` }
      : { type: "log", level: "info", message: `pool has room again: no write refused in the last second; ${what}` });
  }
  return { refused, full: now };
}

function main(): void {
  const rt = open();
  current = rt;
  let port: number;
  try {
    port = cfg.attach ? rt.port() : rt.listen(cfg.host, cfg.port, cfg.portEngine);
    if (!cfg.attach && cfg.busyPollUs !== undefined) rt.busyPoll(cfg.busyPollUs);   // a takeover finds the port as it was
  } catch (e) {
    rt.close();
    throw e;
  }
  const info = rt.pool.info();
  post({ type: "ready", port, engine: rt.portEngine!, busyPollUs: rt.busyPoll().budgetUs, mode: info.persist.mode, reason: info.persist.reason, flush: info.flush, recovery: rt.recovery,
    handler: summary(rt.handler.name, rt.handler.info, rt.handler.config), takeover: rt.takeover });

  const snapshot = (stats = rt.stats()): Omit<HostSnapshot, "handler"> => ({
    pool: cfg.pool, listen: `tcp://${cfg.host}:${port}`, portEngine: rt.portEngine!, persist: { mode: info.persist.mode, reason: info.persist.reason },
    flush: info.flush, recovery: { ...rt.recovery }, stats, buffers: rt.pool.buffers, space: space(rt, stats),
    connections: rt.connections(), busyPoll: rt.busyPoll(), commit: rt.takeCommitLatency(), at: Date.now(),
  });
  post({ type: "snapshot", snapshot: snapshot() });
  let lastSnapshot = Date.now();
  let blockedSince = 0;
  let warned = false;
  let full = { refused: 0, full: false };
  while (Atomics.load(ctl, Ctl.STOP) === 0) {
    if (Atomics.load(ctl, Ctl.MAIL) !== 0) {
      Atomics.store(ctl, Ctl.MAIL, 0);
      for (let m; (m = receiveMessageOnPort(cfg.control));) obey(rt, m.message as ControlMessage);
    }
    const got = rt.pollTcp(50);
    if (Date.now() - lastSnapshot >= 1000) {
      const snap = snapshot();
      post({ type: "snapshot", snapshot: snap });   // for the admin API, once a second
      lastSnapshot = Date.now();
      full = sayWhenFull(snap, full);
    }
    if (got === 0 && rt.backpressured) {
      // Every buffer is referenced by the log, or the index is full: nothing
      // is read until the handler trims. Say so once, and do not spin.
      blockedSince ||= Date.now();
      if (!warned && Date.now() - blockedSince > 1000) {
        const s = rt.stats();
        post({ type: "log", level: "warn", code: "PASTE_ERR_POOL_FULL",
          message: `pool full: receiving paused until the handler trims (${s.freeBuffers} free buffers, log ${s.logUsed}/${s.logCapacity} bytes)` });
        warned = true;
      }
      Atomics.wait(ctl, Ctl.STOP, 0, 5);
    } else {
      blockedSince = 0;
      warned = false;
    }
  }
  // Clean shutdown: no new connections; the batch in flight has finished
  // (polls are whole); send what is owed; close marks the pool clean.
  rt.stopAccepting();
  rt.pollTcp(0);
  const s = rt.stats();
  rt.close();
  post({ type: "stopped", records: s.records, committedSeq: s.committedSeq });
}

try {
  main();
} catch (e) {
  const err = e as PasteError;
  if (e instanceof HandlerMemoryError || e instanceof HandlerTrapError) {
    // Out of memory, or a trap with a previous handler to go back to
    // (stopOnTrap): stopped the same way as a handler over its time budget.
    // The main thread terminates this thread and a new one takes over with
    // the previous handler. Until then, nothing here touches the pool.
    post({ type: "fatal-handler", code: err.code, message: err.message });
    Atomics.wait(ctl, Ctl.STOP, 0);
  } else {
    post({ type: "error", code: err.code ?? "PASTE_ERR_INTERNAL", message: err.message ?? String(e) });
  }
}

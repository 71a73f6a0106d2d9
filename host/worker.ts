// worker.ts -- the data path, in a worker thread so the main thread stays
// free for control (signals, later the admin API). It owns the pool, the
// handler and the TCP port; the main thread asks it to stop through a shared
// flag it checks between polls, so a batch in flight always finishes.

import { parentPort, workerData } from "node:worker_threads";
import { PasteError } from "./errors.js";
import type { PersistMode } from "./layout.js";
import { Runtime } from "./runtime.js";
import type { HostSnapshot } from "./admin.js";

export interface WorkerConfig {
  pool: string;
  handler: string;
  host: string;
  port: number;
  persist?: PersistMode;
  createSize?: number;
  stop: Int32Array;
}

export type WorkerMessage =
  | { type: "snapshot"; snapshot: HostSnapshot }
  | { type: "ready"; port: number; mode: string; reason: string; flush: string; recovery: Runtime["recovery"] }
  | { type: "log"; level: "info" | "warn" | "error"; code?: string; message: string }
  | { type: "error"; code: string; message: string }
  | { type: "stopped"; records: number; committedSeq: number };

const post = (m: WorkerMessage) => parentPort!.postMessage(m);
const cfg = workerData as WorkerConfig;

function main(): void {
  const rt = Runtime.open(cfg.pool, {
    handler: cfg.handler,
    persist: cfg.persist,
    create: cfg.createSize ? { size: cfg.createSize } : undefined,
    onHandlerError: (e) => post({ type: "log", level: "error", code: (e as PasteError).code, message: e.message }),
  });
  let port: number;
  try {
    port = rt.listen(cfg.host, cfg.port);
  } catch (e) {
    rt.close();
    throw e;
  }
  const info = rt.pool.info();
  post({ type: "ready", port, mode: info.persist.mode, reason: info.persist.reason, flush: info.flush, recovery: rt.recovery });

  const loadedAt = new Date().toISOString();
  const snapshot = (): HostSnapshot => {
    const s = rt.stats();
    const i = rt.handler.info;
    return {
      pool: cfg.pool, listen: `tcp://${cfg.host}:${port}`, persist: { mode: info.persist.mode, reason: info.persist.reason },
      flush: info.flush, handler: { name: cfg.handler, sha256: i.sha256, abi: i.abi, size: i.size, loadedAt },
      recovery: { ...rt.recovery }, stats: s, buffers: rt.pool.buffers, connections: rt.connections(),
      commit: rt.takeCommitLatency(), at: Date.now(),
    };
  };
  post({ type: "snapshot", snapshot: snapshot() });
  let lastSnapshot = Date.now();
  let blockedSince = 0;
  let warned = false;
  while (Atomics.load(cfg.stop, 0) === 0) {
    const got = rt.pollTcp(50);
    if (Date.now() - lastSnapshot >= 1000) {
      post({ type: "snapshot", snapshot: snapshot() });   // for the admin API, once a second
      lastSnapshot = Date.now();
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
      Atomics.wait(cfg.stop, 0, 0, 5);
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
  post({ type: "error", code: err.code ?? "PASTE_ERR_INTERNAL", message: err.message ?? String(e) });
}

// server.ts -- `paste-host run`: start the data-path worker, print one
// startup line, stop cleanly on SIGINT/SIGTERM.

import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { AdminApi, tokenFor } from "./admin.js";
import { Worker } from "node:worker_threads";
import { HandlerInvalidError, PasteError, UsageError } from "./errors.js";
import type { PersistMode } from "./layout.js";
import type { WorkerMessage } from "./worker.js";

export interface ServeOptions {
  pool: string;
  handler: string;
  listen: string;
  persist?: PersistMode;
  createSize?: number;
  /** Admin API address, HOST:PORT (port 0: any free port); "off" disables it. */
  admin?: string;
  /** Called with each line the server prints (default: stdout/stderr). */
  print?: (line: string, stream: "out" | "err") => void;
}

/** parseListen -- "tcp://127.0.0.1:6380", "127.0.0.1:6380", "[::1]:6380" or ":6380". */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:tcp:\/\/)?(?:\[([^\]]+)\]|([^:/]*)):(\d{1,5})\/?$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(`invalid --listen '${text}': use tcp://HOST:PORT, e.g. tcp://127.0.0.1:6380`);
  }
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/** serve -- run until a signal (or stop()); resolves with the exit status. */
export function serve(o: ServeOptions): { done: Promise<number>; stop: () => void; ready: Promise<number> } {
  const print = o.print ?? ((line, s) => (s === "out" ? console.log(line) : console.error(line)));
  const { host, port } = parseListen(o.listen);
  if (!existsSync(o.handler)) {
    throw new HandlerInvalidError(`handler ${o.handler} not found (build one with: paste-host build handler.ts -o ${o.handler})`);
  }
  const stopFlag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL("./worker.js", import.meta.url), {
    workerData: { pool: o.pool, handler: o.handler, host, port, persist: o.persist, createSize: o.createSize, stop: stopFlag },
  });
  const adminAddr = o.admin === "off" ? null : parseListen(o.admin ?? "127.0.0.1:0");
  mkdirSync(dirname(resolve(o.pool)), { recursive: true });   // the token lives beside the pool
  const { token, file: tokenFile } = adminAddr ? tokenFor(o.pool) : { token: "", file: "" };
  const admin = adminAddr ? new AdminApi(token, (line) => print(`paste-host: ${line}`, "err")) : null;
  const adminFile = `${o.pool}.admin`;
  let readyResolve!: (port: number) => void;
  const ready = new Promise<number>((r) => (readyResolve = r));
  let status = 0;
  const stop = () => {
    if (Atomics.load(stopFlag, 0) === 0) {
      Atomics.store(stopFlag, 0, 1);
      Atomics.notify(stopFlag, 0);
    }
  };
  const onSignal = (sig: string) => {
    print(`paste-host: ${sig}: stopping (finishing the batch in flight, marking the pool clean)`, "err");
    stop();
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);

  worker.on("message", (m: WorkerMessage) => {
    switch (m.type) {
      case "snapshot":
        admin?.update(m.snapshot);
        break;
      case "ready": {
        const r = m.recovery;
        print(`paste-host: serving tcp://${host.includes(":") ? `[${host}]` : host}:${m.port} with ${o.handler}; ` +
          `pool ${o.pool}, persist ${m.mode} (${m.reason}), flush ${m.flush}; ` +
          `recovered ${r.records} records${r.corrupt ? `, ${r.corrupt} corrupt` : ""}${r.torn ? `, log cut at a torn record` : ""}` +
          `${r.wasClean ? "" : " after an unclean shutdown"}`, "out");
        if (admin && adminAddr) {
          admin.listen(adminAddr.host, adminAddr.port).then((url) => {
            writeFileSync(adminFile, JSON.stringify({ url, pid: process.pid, tokenFile }) + "\n", { mode: 0o600 });
            print(`paste-host: admin API on ${url} (bearer token in ${tokenFile})`, "out");
            readyResolve(m.port);
          }, (e) => {
            print(`paste-host: PASTE_ERR_ADDR_IN_USE: admin API cannot listen on ${o.admin}: ${(e as Error).message}`, "err");
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
        print(`paste-host: ${m.code ? `${m.code}: ` : ""}${m.message}`, "err");
        break;
      case "error":
        print(`paste-host: ${m.code}: ${m.message}`, "err");
        status = m.code === "PASTE_ERR_USAGE" ? 2 : 1;
        break;
      case "stopped":
        print(`paste-host: stopped cleanly; committed seq ${m.committedSeq}`, "err");
        break;
    }
  });
  const done = new Promise<number>((resolve) => {
    worker.on("error", (e) => {
      print(`paste-host: internal error in the data path: ${e.stack ?? e}`, "err");
      status = 70;
    });
    worker.on("exit", async () => {
      if (admin) {
        await admin.close().catch(() => {});
        rmSync(adminFile, { force: true });
      }
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      readyResolve(-1);
      resolve(status);
    });
  });
  return { done, stop, ready };
}

export { PasteError };

// spawn.ts -- start `paste-host run` as a child process and wait until it
// serves: what the benchmark, the torture tool and the tests share.

import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { packageRoot } from "../core/native.js";

export interface SpawnedHost {
  port: number;
  child: ChildProcess;
  /** Everything the host printed so far. */
  output(): string;
  /** Send a signal (default SIGTERM) and wait for the exit: the exit code, or the signal's name. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface SpawnOptions {
  pool: string;
  /** The handler; none: the one that served the pool last. */
  handler?: string;
  persist?: string;
  createSize?: string;
  /** More arguments for `paste-host run`. */
  extra?: string[];
  /** How long to wait for the startup line (default 20 s). */
  timeoutMs?: number;
  /** Variables added to this process's environment for the host. */
  env?: NodeJS.ProcessEnv;
}

/** spawnHost -- `paste-host run` on a free loopback port; resolves once it serves. */
export function spawnHost(o: SpawnOptions): Promise<SpawnedHost> {
  const cli = join(packageRoot(), "dist", "host", "cli.js");
  const child = spawn(process.execPath, [cli, "run", "--pool", o.pool, ...(o.handler ? ["--handler", o.handler] : []), "--listen", "tcp://127.0.0.1:0",
    "--create-size", o.createSize ?? "64M", ...(o.persist ? ["--persist", o.persist] : []), ...(o.extra ?? [])],
  { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...o.env } });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, sig) => resolve(code ?? sig ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`paste-host run did not start in ${(o.timeoutMs ?? 20_000) / 1000} s:\n${out}`)), o.timeoutMs ?? 20_000);
    const check = () => {
      const m = /serving tcp:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off("data", check);
      resolve({
        port: Number(m[1]), child, output: () => out,
        stop: (signal: NodeJS.Signals = "SIGTERM") => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout!.on("data", check);
    child.on("exit", () => {
      clearTimeout(timer);
      reject(new Error(`paste-host run exited before serving:\n${out}`));
    });
  });
}

/** freePort -- a TCP port on loopback that was free a moment ago (for a peer that must be told its port, like redis-server). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
    srv.on("error", reject);
  });
}

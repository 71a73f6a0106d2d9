// One writer per pool: a second process is refused with the lock error and
// the pid that holds it; a killed holder releases the lock and leaves the pool
// marked not clean.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PoolLockedError } from "../host/core/errors.js";
import { Pool } from "../host/core/pool.js";
import { root, runCli, scratchDir } from "./helpers.js";

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

function holdPool(path: string): Promise<{ child: ChildProcess; pid: number }> {
  const child = spawn(process.execPath, [join(root, "test", "fixtures", "hold-pool.mjs"), path], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, pid: Number(m[1]) });
    });
    child.on("exit", (code) => reject(new Error(`holder exited ${code}: ${err}`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.on("exit", () => resolve())));
}

describe("pool lock", () => {
  it("a second process is refused with PASTE_ERR_POOL_LOCKED naming the holder", async () => {
    const path = join(scratchDir("shm"), "l.pool");
    Pool.create(path, { size: 16 << 20, slots: 64 });
    const { child, pid } = await holdPool(path);

    let err: unknown;
    try {
      Pool.open(path).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PoolLockedError);
    expect((err as PoolLockedError).code).toBe("PASTE_ERR_POOL_LOCKED");
    expect((err as Error).message).toContain(`pid ${pid}`);

    // Read-only inspection of a live pool works and says who holds it.
    const info = runCli(["pool", "info", path]);
    expect(info.status).toBe(0);
    expect(info.stdout).toContain(`in use by pid ${pid}`);

    // create --force must not pull a live pool from under its host.
    const force = runCli(["pool", "create", path, "--size", "16M", "--slots", "64", "--force"]);
    expect(force.status).toBe(1);
    expect(force.stderr).toContain("PASTE_ERR_POOL_LOCKED");

    child.kill("SIGKILL");
    await exited(child);
    const p = Pool.open(path);   // the kernel dropped the dead holder's lock
    try {
      const s = p.info().state;
      expect(s.cleanShutdown).toBe(false);
      expect(s.openCount).toBe(2);
    } finally {
      p.close();
    }
  });

  it("the same process cannot open a pool twice for writing", () => {
    const path = join(scratchDir("shm"), "l2.pool");
    Pool.create(path, { size: 16 << 20, slots: 64 });
    const a = Pool.open(path);
    try {
      expect(() => Pool.open(path)).toThrow(PoolLockedError);
    } finally {
      a.close();
    }
    Pool.open(path).close();
  });
});

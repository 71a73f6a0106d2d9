// paste-host as a user meets it: help everywhere, pools on tmpfs and on disk
// with the right mode for each, refusals with clear errors and exit codes.
import { spawn } from "node:child_process";
import Redis from "ioredis";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { root, runCli, scratchDir } from "./helpers.js";

function info(path: string) {
  const r = runCli(["pool", "info", path, "--json"]);
  expect(r.status, r.out).toBe(0);
  return JSON.parse(r.stdout);
}

describe("paste-host CLI", () => {
  it("has --help on every command and subcommand", () => {
    for (const args of [[], ["pool"], ["pool", "create"], ["pool", "info"]]) {
      const r = runCli([...args, "--help"]);
      expect(r.status, args.join(" ")).toBe(0);
      expect(r.stdout).toContain(`Usage: paste-host${args.length ? " " + args.join(" ") : ""}`);
    }
    expect(runCli(["pool", "create", "--help"]).stdout).toMatch(/--persist <mode>.*auto/s);
  });

  it("creates a pool on tmpfs in pmem mode and one on disk in msync mode", () => {
    const shm = join(scratchDir("shm"), "a.pool");
    const disk = join(scratchDir("disk"), "sub", "b.pool");   // parent directories are made
    for (const p of [shm, disk]) {
      const r = runCli(["pool", "create", p, "--size", "32M"]);
      expect(r.status, r.out).toBe(0);
      expect(r.stdout).toContain(`created ${p}: 32.0 MiB`);
    }
    const a = info(shm);
    expect(a.persist).toMatchObject({ mode: "pmem", medium: "tmpfs", filesystem: "tmpfs", preference: "auto" });
    expect(a.persist.reason).toMatch(/tmpfs/);
    const b = info(disk);
    expect(b.persist).toMatchObject({ mode: "msync", medium: "file", preference: "auto" });
    expect(b.persist.reason).toMatch(/MAP_SYNC refused/);

    for (const i of [a, b]) {
      expect(["clwb", "clflushopt", "clflush"]).toContain(i.flush);
      expect(i.formatVersion).toBe(1);
      expect(i.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(i.geometry).toMatchObject({ poolSize: 32 << 20, bufSize: 2048, rings: 1, slotsPerRing: 1024, windowBase: 0x200000 });
      expect(i.geometry.buffers).toBeGreaterThan(9000);
      expect(i.log).toMatchObject({ head: 0, tail: 0, headSeq: 1, usedBytes: 0 });
      expect(i.state.cleanShutdown).toBe(true);
    }

    const human = runCli(["pool", "info", shm]);
    expect(human.status).toBe(0);
    for (const row of ["persist   pmem: tmpfs", "flush", "buffers", "rings", "window", "log", "shutdown  clean"]) {
      expect(human.stdout).toContain(row);
    }
  });

  it("refuses to overwrite a pool without --force, and replaces it with --force", () => {
    const p = join(scratchDir("shm"), "c.pool");
    expect(runCli(["pool", "create", p, "--size", "16M", "--slots", "64"]).status).toBe(0);
    const before = readFileSync(p);
    const again = runCli(["pool", "create", p, "--size", "16M", "--slots", "64"]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain("PASTE_ERR_EXISTS");
    expect(again.stderr).toContain("--force");
    expect(readFileSync(p).equals(before)).toBe(true);

    const uuid = info(p).uuid;
    const forced = runCli(["pool", "create", p, "--size", "24M", "--slots", "64", "--force", "--persist", "none"]);
    expect(forced.status, forced.out).toBe(0);
    const after = info(p);
    expect(after.uuid).not.toBe(uuid);
    expect(after.geometry.poolSize).toBe(24 << 20);
    expect(after.persist).toMatchObject({ mode: "none", preference: "none" });
  });

  it("honours --buf-size, --rings, --slots and --log-size", () => {
    const p = join(scratchDir("shm"), "d.pool");
    const r = runCli(["pool", "create", p, "--size", "64M", "--buf-size", "4K", "--rings", "2", "--slots", "256", "--log-size", "1M"]);
    expect(r.status, r.out).toBe(0);
    expect(info(p).geometry).toMatchObject({ bufSize: 4096, rings: 2, slotsPerRing: 256, ringBuffers: 1024, logSize: 1 << 20 });
  });

  it("explains bad sizes (exit 2) and impossible geometries (exit 1), creating nothing", () => {
    const dir = scratchDir("shm");
    const bad = runCli(["pool", "create", join(dir, "x.pool"), "--size", "lots"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("invalid --size 'lots'");

    const small = runCli(["pool", "create", join(dir, "y.pool"), "--size", "1M"]);
    expect(small.status).toBe(1);
    expect(small.stderr).toMatch(/PASTE_ERR_INVALID_ARG: .*too small.*needs at least \d+ bytes/);

    const huge = runCli(["pool", "create", join(dir, "z.pool"), "--size", "5G"]);
    expect(huge.status).toBe(1);
    expect(huge.stderr).toMatch(/wasm32/);

    const buf = runCli(["pool", "create", join(dir, "w.pool"), "--size", "64M", "--buf-size", "3000"]);
    expect(buf.status).toBe(1);
    expect(buf.stderr).toMatch(/power of two/);

    expect(runCli(["pool", "create", join(dir, "v.pool")]).status).toBe(2);   // --size is required
    for (const f of ["x", "y", "z", "w", "v"]) expect(existsSync(join(dir, `${f}.pool`))).toBe(false);
  });

  it("npm start serves kv-wal on a fresh pool; SIGTERM stops it cleanly", async () => {
    const pool = join(scratchDir("shm"), "data", "kv.pool");
    const script = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts.start as string;
    const child = spawn("sh", ["-c", `exec ${script}`], {
      cwd: root, env: { ...process.env, PASTE_POOL: pool, PASTE_LISTEN: "tcp://127.0.0.1:0" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no startup line:\n${out}`)), 20_000);
        child.stdout.on("data", () => {
          const m = /serving tcp:\/\/127\.0\.0\.1:(\d+) with samples\/kv-wal\/kv-wal\.wasm; pool .*kv\.pool, persist pmem .*flush (clwb|clflushopt|clflush)/.exec(out);
          if (m) { clearTimeout(t); resolve(Number(m[1])); }
        });
      });
      const r = new Redis({ port, host: "127.0.0.1" });
      expect(await r.set("k", "v")).toBe("OK");
      expect(await r.get("k")).toBe("v");
      r.disconnect();
      child.kill("SIGTERM");
      const code = await new Promise((resolve) => child.on("exit", resolve));
      expect(code).toBe(0);
      expect(out).toMatch(/stopped cleanly/);
      expect(existsSync(pool)).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});

// A pool that cleans itself, and a full pool that still answers (kv-wal and
// the SDK's Cleaner, driven by the host's on_clean calls), with the clients a
// Redis user runs first: redis-benchmark with random keys, redis-cli.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import Redis from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { Runtime } from "../host/core/runtime.js";
import { haveProgram, root, scratchDir, startServer, until, type Server } from "./helpers.js";

const kvWal = join(root, "samples", "kv-wal", "kv-wal.wasm");
const running: Server[] = [];
const clients: Redis[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of running.splice(0)) await s.stop("SIGKILL");
});

async function server(pool: string, size: string): Promise<Server> {
  const s = await startServer({ pool, handler: kvWal, createSize: size });
  running.push(s);
  return s;
}

function client(port: number): Redis {
  const c = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  clients.push(c);
  return c;
}

const resp = (...a: string[]) => Buffer.from(`*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join("")}`);

describe("the pool cleans itself", () => {
  it("random-key SETs writing seven times the pool through it: every one acknowledged, every last value reads back", () => {
    // 16 MiB pool, 6122 buffers of 2 KiB: 300 keys of 1 KiB and 3000 keys of
    // 16 B; without cleaning the first would stop after about 6000 SETs
    for (const [keys, size, sets] of [[300, 1000, 50_000], [3000, 16, 60_000]]) {
      const rt = Runtime.open(join(scratchDir("shm"), "clean.pool"), { handler: kvWal, create: { size: 16 << 20, slots: 256 } });
      try {
        const last = new Map<string, string>();
        let ok = 0;
        for (let i = 0; i < sets;) {
          for (let k = 0; k < 32 && i < sets; k++, i++) {
            const key = `k${(i * 7919) % keys}`;
            const v = `${i}:`.padEnd(size, "x");
            expect(rt.memRequest(resp("SET", key, v), 1 + (i % 8))).toBe(true);
            last.set(key, v);
          }
          rt.runBatch();
          ok += rt.takeReplies().filter((r) => r.data.toString() === "+OK\r\n").length;
        }
        expect(ok).toBe(sets);
        expect(rt.stats().trimmed).toBeGreaterThan(sets / 2);   // the cleaner trimmed behind itself
        for (const [k, v] of last) {
          rt.memRequest(resp("GET", k));
          rt.runBatch();
          expect(rt.takeReplies().map((r) => r.data.toString()).join(""), k).toBe(`$${v.length}\r\n${v}\r\n`);
        }
      } finally {
        rt.close();
      }
    }
  });

  it("redis-benchmark with random keys runs through a pool a fifth the size of what it writes", async (ctx) => {
    haveProgram("redis-benchmark", "redis-tools", ctx);
    const s = await server(join(scratchDir("shm"), "bench.pool"), "16M");
    // 40 000 SETs of 1 KiB (40 MiB) over at most 5 000 keys, into 12 MiB of buffers
    const b = spawnSync("redis-benchmark", ["-p", String(s.port), "-t", "set", "-d", "1024", "-r", "5000", "-n", "40000", "-c", "50", "-q"],
      { encoding: "utf8", timeout: 120_000 });
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/SET: [\d.]+ requests per second/);
    const r = client(s.port);
    const keys = Number(await r.dbsize());
    expect(keys).toBeGreaterThan(1000);
    expect(keys).toBeLessThanOrEqual(5000);
    const info = await r.info();
    expect(Number(/paste_cleaner_dropped:(\d+)/.exec(info)![1])).toBeGreaterThan(0);
    expect(s.output()).not.toMatch(/PASTE_ERR/);
  }, 150_000);
});

describe("a full pool still answers", () => {
  it("over capacity: SET gets -OOM, GET, PING and new connections are served, DEL frees space, a restart recovers it all", async (ctx) => {
    haveProgram("redis-cli", "redis-tools", ctx);
    const pool = join(scratchDir("shm"), "full.pool");
    let s = await server(pool, "12M");
    const r = client(s.port);
    const value = "v".repeat(1500);
    const acked: string[] = [];
    let refused = "";
    for (let i = 0; i < 20_000 && !refused; i++) {
      try {
        await r.set(`key${i}`, value);
        acked.push(`key${i}`);
      } catch (e) {
        refused = (e as Error).message;
      }
    }
    expect(refused).toMatch(/^OOM pool full: \d+ of \d+ buffers live; free space with DEL or FLUSHALL, or use a bigger pool/);
    expect(acked.length).toBeGreaterThan(500);
    // many more refusals than the host's reserve of buffers, one request a
    // read each: every one is answered, none strands the buffer it came in
    let oom = 0;
    for (let i = 0; i < 1000; i++) await r.set(`more${i}`, value).catch((e: Error) => { if (/^OOM pool full/.test(e.message)) oom++; });
    expect(oom).toBe(1000);
    // the host's log says so, once, with what is full
    await until(() => /pool full: the handler's writes are refused until space is freed; \d+ of \d+ buffers free/.test(s.output()));
    // reads, PING and a new connection still work on the full pool
    expect(await r.get(acked[0])).toBe(value);
    expect(await r.ping()).toBe("PONG");
    const cli = spawnSync("redis-cli", ["-p", String(s.port), "get", acked[acked.length - 1]], { encoding: "utf8", timeout: 20_000 });
    expect(cli.stdout.trim()).toBe(value);
    // a delete frees space; then writes succeed again (the cleaner drops the dead records)
    const gone = acked.splice(0, 300);
    for (let i = 0; i < gone.length; i += 50) expect(await r.del(...gone.slice(i, i + 50))).toBe(50);
    let written = false;
    for (let t = 0; t < 200 && !written; t++) {
      try {
        written = (await r.set("after-del", "yes")) === "OK";
      } catch {
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    expect(written).toBe(true);
    await until(() => /pool has room again: no write refused in the last second/.test(s.output()));
    expect(s.output().match(/pool full: the handler's writes are refused/g)).toHaveLength(1);
    r.disconnect();
    expect(await s.stop("SIGKILL")).toBe("SIGKILL");
    running.splice(0);

    s = await server(pool, "12M");
    const r2 = client(s.port);
    expect(await r2.get("after-del")).toBe("yes");
    for (let i = 0; i < gone.length; i += 50) expect(await r2.exists(...gone.slice(i, i + 50))).toBe(0);
    for (const k of acked) expect(await r2.get(k), k).toBe(value);
  }, 150_000);
});

describe("http-wal on a full pool", () => {
  it("answers a POST it cannot keep with 507 at once, serves /healthz, and every 201 it gave is in the log", async () => {
    const pool = join(scratchDir("shm"), "http-full.pool");
    const s = await startServer({ pool, handler: join(root, "samples", "http-wal", "http-wal.wasm"), createSize: "12M" });
    running.push(s);
    const url = `http://127.0.0.1:${s.port}`;
    const body = Buffer.alloc(1 << 20, 0x61);   // 1 MiB: 512 buffers of 2 KiB each
    let created = 0;
    let refused: Response | null = null;
    for (let i = 0; i < 40 && !refused; i++) {
      const r = await fetch(`${url}/wal`, { method: "POST", body });
      if (r.status === 201) created++;
      else refused = r;
    }
    const small = await fetch(`${url}/wal`, { method: "POST", body: "small" });
    if (small.status === 201) created++;
    expect(created).toBeGreaterThan(2);
    expect(refused?.status).toBe(507);
    expect(await refused!.text()).toMatch(/the pool is full of retained bodies/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect([201, 507]).toContain(small.status);   // a small body still fits above the reserve, or is refused: never a hang
    expect(await s.stop("SIGTERM")).toBe(0);
    running.splice(0);
    const verify = spawnSync(process.execPath, [join(root, "dist", "host", "cli.js"), "log", "verify", pool], { encoding: "utf8" });
    expect(verify.stdout).toContain(`ok: ${created} records, every checksum holds`);
  }, 120_000);
});

// kv-wal end to end over loopback with real clients: redis-cli, ioredis and
// raw sockets; values from 0 B to 1 MiB, binary, pipelined, split at every
// byte, many connections; a restart after SIGKILL; malformed input.
import { converse } from "./fuzz/wire.js";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import Redis from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { root, scratchDir, startServer, haveProgram, type Server } from "./helpers.js";

const handler = join(root, "samples", "kv-wal", "kv-wal.wasm");
const clients: Redis[] = [];
const running: Server[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of running.splice(0)) await s.stop("SIGKILL");
});

async function server(pool?: string): Promise<Server> {
  const s = await startServer({ pool: pool ?? join(scratchDir("shm"), "kv.pool"), handler });
  running.push(s);
  return s;
}

function client(port: number): Redis {
  const c = new Redis({ port, host: "127.0.0.1", lazyConnect: false, maxRetriesPerRequest: 0, enableOfflineQueue: true });
  clients.push(c);
  return c;
}

function redisCli(port: number, args: string[], input?: string | Buffer) {
  return spawnSync("redis-cli", ["-p", String(port), ...args], { input, encoding: "utf8", timeout: 20_000 });
}

/** rawExchange -- write chunks (with a pause between), read until `want` bytes of reply arrived. */
function rawExchange(port: number, chunks: Buffer[], want: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(port, "127.0.0.1");
    sock.setNoDelay(true);
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`timeout; got ${JSON.stringify(got.toString())}`)); }, 10_000);
    sock.on("data", (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= want) {
        clearTimeout(timer);
        sock.end();
        resolve(got.toString("latin1"));
      }
    });
    sock.on("error", reject);
    sock.on("connect", async () => {
      for (const c of chunks) {
        sock.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
    });
  });
}

/** rawExchangeUntilClose -- the whole answer to input, and whether the server closed after it. */
async function rawExchangeUntilClose(port: number, input: Buffer): Promise<{ data: string; closed: boolean }> {
  const r = await converse(port, [input], { idleMs: 500 });
  return { data: r.data.toString("latin1"), closed: r.closed };
}

const resp = (...args: (string | Buffer)[]) =>
  Buffer.concat([Buffer.from(`*${args.length}\r\n`), ...args.flatMap((a) => {
    const b = Buffer.from(a);
    return [Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n")];
  })]);

describe("kv-wal", () => {
  it("redis-cli: set, get, del, exists, dbsize, echo, ping, info", async (ctx) => {
    haveProgram("redis-cli", "redis-tools", ctx);
    const s = await server();
    expect(redisCli(s.port, ["ping"]).stdout.trim()).toBe("PONG");
    expect(redisCli(s.port, ["set", "k", "v"]).stdout.trim()).toBe("OK");
    expect(redisCli(s.port, ["get", "k"]).stdout.trim()).toBe("v");
    expect(redisCli(s.port, ["get", "missing"]).stdout.trim()).toBe("");
    expect(redisCli(s.port, ["exists", "k", "missing"]).stdout.trim()).toBe("1");
    expect(redisCli(s.port, ["dbsize"]).stdout.trim()).toBe("1");
    expect(redisCli(s.port, ["echo", "hello world"]).stdout.trim()).toBe("hello world");
    expect(redisCli(s.port, ["info"]).stdout).toMatch(/redis_version:7/);
    expect(redisCli(s.port, ["del", "k", "missing"]).stdout.trim()).toBe("1");
    expect(redisCli(s.port, ["get", "k"]).stdout.trim()).toBe("");
    expect(redisCli(s.port, ["frobnicate", "x"]).stdout.trim()).toBe("ERR unknown command 'frobnicate', with args beginning with: 'x'");
    // a 100 KB value from a file, read back whole
    const dir = scratchDir("shm");
    const big = randomBytes(50 * 1024).toString("hex");
    writeFileSync(join(dir, "v"), big);
    expect(redisCli(s.port, ["-x", "set", "big"], big).stdout.trim()).toBe("OK");
    expect(redisCli(s.port, ["get", "big"]).stdout.trim()).toBe(big);
    expect(redisCli(s.port, ["flushall"]).stdout.trim()).toBe("OK");
    expect(redisCli(s.port, ["dbsize"]).stdout.trim()).toBe("0");
  });

  it("ioredis: values of 0 B, 1 KiB, 100 KiB and 1 MiB, binary, byte-exact", async () => {
    const s = await server();
    const r = client(s.port);
    const values = [Buffer.alloc(0), randomBytes(1024), randomBytes(100 * 1024), randomBytes(1 << 20),
      Buffer.from([0, 13, 10, 36, 42, 255, 0])];
    for (const [i, v] of values.entries()) expect(await r.set(`bin${i}`, v)).toBe("OK");
    for (const [i, v] of values.entries()) expect((await r.getBuffer(`bin${i}`))!.equals(v)).toBe(true);
    expect(await r.dbsize()).toBe(values.length);
  });

  it("pipelining: 1000 commands in one write, replies in order", async () => {
    const s = await server();
    const r = client(s.port);
    const p = r.pipeline();
    for (let i = 0; i < 500; i++) p.set(`p${i}`, `value-${i}`);
    for (let i = 0; i < 500; i++) p.get(`p${i}`);
    const res = await p.exec();
    expect(res!.slice(0, 500).every(([e, v]) => !e && v === "OK")).toBe(true);
    expect(res!.slice(500).map(([, v]) => v)).toEqual(Array.from({ length: 500 }, (_, i) => `value-${i}`));
  });

  it("pipelining: 6000 small commands of four kinds in one write, every reply in order", async () => {
    // Thousands of replies in one batch: copied ones (+OK, PONG, ECHO) gathered
    // in the handler and handed over in bulk, GETs' values sent from the pool
    // by reference in between; a connection's replies keep their order.
    const s = await server();
    const r = client(s.port);
    const p = r.pipeline();
    const want: unknown[] = [];
    for (let i = 0; i < 1500; i++) {
      p.set(`q${i}`, `v${i}`);
      p.ping();
      p.echo(`e${i}`);
      p.get(`q${i}`);
      want.push("OK", "PONG", `e${i}`, `v${i}`);
    }
    const res = await p.exec();
    expect(res!.map(([e, v]) => e ?? v)).toEqual(want);
  });

  it("a request split at every byte boundary is understood", async () => {
    const s = await server();
    const req = resp("SET", "split", "a value that spans");
    for (let cut = 1; cut < req.length; cut++) {
      const reply = await rawExchange(s.port, [req.subarray(0, cut), req.subarray(cut)], 5);
      expect(reply, `cut at ${cut}`).toBe("+OK\r\n");
    }
    const get = resp("GET", "split");
    expect(await rawExchange(s.port, [get.subarray(0, 7), get.subarray(7)], 24)).toBe("$18\r\na value that spans\r\n");
  });

  it("thousands of concurrent connections", async () => {
    const { native } = await import("../host/core/native.js");
    const limit = Number(native().raiseNofile());   // this process holds the client ends
    const s = await server();
    const N = Math.min(2000, limit - 200);
    expect(N).toBeGreaterThanOrEqual(900);
    const replies = await Promise.all(Array.from({ length: N }, (_, i) =>
      rawExchange(s.port, [Buffer.concat([resp("SET", `c${i}`, `v${i}`), resp("GET", `c${i}`)])], `+OK\r\n$${`v${i}`.length}\r\nv${i}\r\n`.length)));
    replies.forEach((r, i) => expect(r).toBe(`+OK\r\n$${`v${i}`.length}\r\nv${i}\r\n`));
    const r = client(s.port);
    expect(await r.dbsize()).toBe(N);
  });

  it("a protocol error gets Redis's reply and a closed connection, and the server keeps serving", async () => {
    const s = await server();
    // as redis-server 7 answers them (test/fuzz/kv-wal.fuzz.test.ts compares the two)
    const cases: [string, string][] = [
      ["*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"],
      ["*1\r\n+nope\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"],
      ["*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n"],
      ["PING\r\n*01\r\n$4\r\nPING\r\n", "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"],
    ];
    for (const [input, reply] of cases) {
      const got = await rawExchangeUntilClose(s.port, Buffer.from(input));
      expect(got, input).toEqual({ data: reply, closed: true });
    }
    const r = client(s.port);
    expect(await r.set("after", "ok")).toBe("OK");
    expect(await r.get("after")).toBe("ok");
  });

  it("a DEL of 300 keys, counted as Redis counts them; QUIT closes after +OK", async () => {
    const s = await server();
    const r = client(s.port);
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    for (const k of keys.slice(0, 150)) await r.set(k, "v");
    expect(await r.del(...keys, "k0", "k1")).toBe(150);   // a key named twice is deleted once
    expect(await r.dbsize()).toBe(0);
    r.disconnect();
    expect(await rawExchangeUntilClose(s.port, Buffer.from("QUIT\r\nPING\r\n"))).toEqual({ data: "+OK\r\n", closed: true });
  });

  it("every acknowledged write survives SIGKILL and a restart", async () => {
    const pool = join(scratchDir("shm"), "restart.pool");
    let s = await server(pool);
    const r = client(s.port);
    const acked = new Map<string, Buffer>();
    const writes = Array.from({ length: 400 }, (_, i) => {
      const v = randomBytes(1 + (i * 37) % 3000);
      return r.set(`key${i}`, v).then((ok) => { if (ok === "OK") acked.set(`key${i}`, v); });
    });
    await Promise.all(writes);
    await r.del("key7");
    acked.delete("key7");
    r.disconnect();
    expect(await s.stop("SIGKILL")).toBe("SIGKILL");
    running.splice(0);

    s = await server(pool);
    expect(s.output()).toMatch(/recovered \d+ records after an unclean shutdown/);
    const r2 = client(s.port);
    expect(await r2.dbsize()).toBe(acked.size);
    for (const [k, v] of acked) expect((await r2.getBuffer(k))!.equals(v), k).toBe(true);
    expect(await r2.get("key7")).toBeNull();
  });

  it("keys are byte strings: keys that differ only in bytes that are not UTF-8 stay apart, across a restart", async () => {
    const pool = join(scratchDir("shm"), "binary-keys.pool");
    let s = await server(pool);
    const r = client(s.port);
    const a = Buffer.from([0xff, 0x01]);
    const b = Buffer.from([0xfe, 0x01]);
    const c = Buffer.from([0xc3, 0x28, 0x00, 0x80]);   // an invalid UTF-8 sequence with a NUL
    expect(await r.set(a, "first")).toBe("OK");
    expect(await r.set(b, "second")).toBe("OK");
    expect(await r.set(c, "third")).toBe("OK");
    const check = async (rc: Redis) => {
      expect(await rc.get(a)).toBe("first");
      expect(await rc.get(b)).toBe("second");
      expect(await rc.get(c)).toBe("third");
      expect(await rc.dbsize()).toBe(3);
      expect(await rc.exists(a, b, Buffer.from([0xfd, 0x01]))).toBe(2);
    };
    await check(r);
    expect(await r.del(b)).toBe(1);
    expect(await r.get(a)).toBe("first");
    expect(await r.set(b, "second")).toBe("OK");
    r.disconnect();
    expect(await s.stop("SIGKILL")).toBe("SIGKILL");
    running.splice(0);

    s = await server(pool);   // the index is rebuilt by replay: the same keys, byte for byte
    await check(client(s.port));
  });

  it("redis-benchmark runs set and get with pipelining through a small pool (compaction)", async (ctx) => {
    haveProgram("redis-benchmark", "redis-tools", ctx);
    const s = await server();
    const b = spawnSync("redis-benchmark", ["-p", String(s.port), "-t", "set,get", "-n", "200000", "-d", "1024", "-P", "16", "-q"],
      { encoding: "utf8", timeout: 120_000 });
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/SET: [\d.]+ requests per second/);
    expect(b.stdout).toMatch(/GET: [\d.]+ requests per second/);
    // 200 000 SETs of 1 KiB went through a 64 MiB pool: the log was compacted
    expect(redisCli(s.port, ["dbsize"]).stdout.trim()).toBe("1");
    expect(s.output()).not.toMatch(/PASTE_ERR/);
  });

  it("SIGTERM shuts down cleanly and marks the pool clean", async () => {
    const pool = join(scratchDir("shm"), "clean.pool");
    const s = await server(pool);
    const r = client(s.port);
    await r.set("x", "y");
    r.disconnect();
    expect(await s.stop("SIGTERM")).toBe(0);
    running.splice(0);
    expect(s.output()).toMatch(/stopped cleanly; committed seq 1/);
    const s2 = await server(pool);
    expect(s2.output()).toMatch(/recovered 1 records(?! after)/);
  });
});

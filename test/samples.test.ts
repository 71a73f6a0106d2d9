// wal-append and http-wal end to end over loopback with real clients:
// paste-host wal-client and raw sockets for frames; curl, node:http and raw
// pipelined sockets for HTTP; wrk for a short run. Malformed input gets an
// error reply or a clean close, and other connections keep being served.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Pool } from "../host/core/pool.js";
import { walkLog } from "../host/core/logwalk.js";
import { runWalClient, walFrame } from "../host/tools/walclient.js";
import { haveProgram, root, runCli, scratchDir, startServer, type Server } from "./helpers.js";

const running: Server[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop("SIGKILL");
});

async function server(sample: string, pool?: string): Promise<Server> {
  const s = await startServer({ pool: pool ?? join(scratchDir("shm"), `${sample}.pool`), handler: join(root, "samples", sample, `${sample}.wasm`) });
  running.push(s);
  return s;
}

/** exchange -- write chunks with pauses, collect what comes back until the peer closes or `until` matches. */
function exchange(port: number, chunks: Buffer[], until: (got: Buffer) => boolean): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    sock.setNoDelay(true);
    let data = Buffer.alloc(0);
    let settled = false;
    const done = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => { settled = true; sock.destroy(); reject(new Error(`timeout; got ${JSON.stringify(data.toString("latin1"))}`)); }, 10_000);
    sock.on("data", (d) => {
      data = Buffer.concat([data, d]);
      if (until(data)) done(false);
    });
    sock.on("end", () => done(true));
    sock.on("error", reject);
    sock.on("connect", async () => {
      for (const c of chunks) {
        sock.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
    });
  });
}

describe("wal-append", () => {
  it("the Node client sends frames over 8 connections and checks every ack; log dump shows the frames", async () => {
    const pool = join(scratchDir("shm"), "wa.pool");
    const s = await server("wal-append", pool);
    const r = await runWalClient({ connect: `tcp://127.0.0.1:${s.port}`, frames: 3000, size: 700, conns: 8, window: 8 });
    expect(r.errors).toEqual([]);
    expect(r).toMatchObject({ sent: 3000, acked: 3000, refused: 0, firstSeq: 1, lastSeq: 3000 });
    await s.stop("SIGTERM");
    running.splice(0);
    const p = Pool.open(pool, { readOnly: true });
    try {
      const recs = [...walkLog(p)];
      expect(recs).toHaveLength(3000);
      // each record is one frame's payload, byte for byte
      for (const rec of recs) {
        const k = Number(rec.data.readBigUInt64LE(0));
        expect(rec.data.equals(walFrame(k, 700).subarray(4))).toBe(true);
      }
      expect(new Set(recs.map((x) => Number(x.data.readBigUInt64LE(0)))).size).toBe(3000);
    } finally {
      p.close();
    }
  });

  it("frames of 0..1 MiB edge sizes, a frame split at every byte, and the CLI client", async () => {
    const s = await server("wal-append");
    const frame = walFrame(42, 37);
    for (let cut = 1; cut < frame.length; cut++) {
      const { data } = await exchange(s.port, [frame.subarray(0, cut), frame.subarray(cut)], (d) => d.length >= 8);
      expect(Number(data.readBigUInt64LE(0)), `cut ${cut}`).toBe(cut);
    }
    const big = await runWalClient({ connect: `tcp://127.0.0.1:${s.port}`, frames: 8, size: 1 << 20, conns: 2, window: 2 });
    expect(big.errors).toEqual([]);
    const cli = runCli(["wal-client", "--connect", `tcp://127.0.0.1:${s.port}`, "--frames", "2000", "--size", "100", "--conns", "4", "--trim"]);
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^2000 of 2000 frames of 100 B acknowledged/);
  });

  it("a pool full of untrimmed frames refuses new ones with 2^64-1 at once, still takes a trim, then accepts again", async () => {
    const pool = join(scratchDir("shm"), "full.pool");
    const s = await startServer({ pool, handler: join(root, "samples", "wal-append", "wal-append.wasm"), createSize: "16M" });
    running.push(s);
    const url = `tcp://127.0.0.1:${s.port}`;
    // 12,000 frames of 1500 B (18 MB) into a 16 MiB pool, never trimmed
    const first = await runWalClient({ connect: url, frames: 12_000, size: 1500, conns: 2, window: 16 });
    expect(first.errors).toEqual([]);
    expect(first.acked).toBeGreaterThan(1000);
    expect(first.full).toBeGreaterThan(1000);
    expect(first.refused).toBe(first.full);                 // none for being too long
    // the consumer's trim still gets through, and frees space
    const t = Buffer.alloc(12);
    t.writeUInt32LE(0xffffffff, 0);
    t.writeBigUInt64LE(BigInt(first.lastSeq), 4);
    const { data } = await exchange(s.port, [t], (d) => d.length >= 8);
    expect(Number(data.readBigUInt64LE(0))).toBe(first.acked);
    const again = await runWalClient({ connect: url, frames: 500, size: 1500, conns: 1, window: 8 });
    expect(again).toMatchObject({ acked: 500, refused: 0, errors: [] });
    expect(s.output()).not.toMatch(/PASTE_ERR_HANDLER/);    // the handler never trapped
    await s.stop("SIGTERM");
    running.splice(0);
    const p = Pool.open(pool, { readOnly: true });
    try {
      const recs = [...walkLog(p)];
      expect(recs.map((x) => x.seq)).toEqual(Array.from({ length: 500 }, (_, i) => first.lastSeq + 1 + i));
    } finally {
      p.close();
    }
  }, 60_000);

  it("an oversized frame is refused with 0 and the connection closed; others keep going", async () => {
    const s = await server("wal-append");
    const bad = Buffer.alloc(4);
    bad.writeUInt32LE(5 << 20, 0);
    const { data, closed } = await exchange(s.port, [bad], () => false);
    expect(closed).toBe(true);
    expect(data.length).toBe(8);
    expect(data.readBigUInt64LE(0)).toBe(0n);
    const ok = await runWalClient({ connect: `tcp://127.0.0.1:${s.port}`, frames: 10, size: 10, conns: 1, window: 1 });
    expect(ok.acked).toBe(10);
  });

  it("a client that disconnects mid-frame loses nothing committed and leaks no buffer", async () => {
    // In-process, to read the runtime's buffer accounting while the port runs.
    const { Runtime } = await import("../host/core/runtime.js");
    const rt = Runtime.open(join(scratchDir("shm"), "leak.pool"), {
      handler: join(root, "samples", "wal-append", "wal-append.wasm"), create: { size: 32 << 20, slots: 256 },
    });
    const port = rt.listen("127.0.0.1", 0);
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        rt.pollTcp(0);
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      const first = await runWalClient({ connect: `tcp://127.0.0.1:${port}`, frames: 100, size: 3000, conns: 1, window: 4 });
      expect(first.acked).toBe(100);
      // 200 clients each send half of a 10 KiB frame (several buffers, held) and vanish
      const half = walFrame(1, 10_000).subarray(0, 5000);
      await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
        const c = connect(port, "127.0.0.1", () => c.write(half, () => setTimeout(() => { c.destroy(); resolve(); }, 20)));
      })));
      const deadline = Date.now() + 5000;
      while (rt.connections().open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(rt.connections()).toEqual({ open: 0, accepted: 201 });
      const recs = [...walkLog(rt.pool)];
      expect(recs).toHaveLength(100);
      expect(recs.every((r) => r.crcOk)).toBe(true);
      // out of the rings are exactly the buffers the 100 records use: no hold survived its connection
      const used = new Set(recs.flatMap((r) => r.extents.map((e) => e.buf)));
      expect(rt.stats().liveBuffers).toBe(used.size);
    } finally {
      stop = true;
      await loop;
      rt.close();
    }
  });
});

describe("http-wal", () => {
  it("curl: POST bodies (small, 5 KB with Expect: 100-continue, binary) get 201 and their seq", async (ctx) => {
    haveProgram("curl", "curl", ctx);
    const s = await server("http-wal");
    const url = `http://127.0.0.1:${s.port}/events`;
    const small = spawnSync("curl", ["-s", "-i", "-d", "hello, log", url], { encoding: "utf8" });
    expect(small.stdout).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
    expect(small.stdout).toMatch(/X-Seq: 1\r\n/);
    expect(small.stdout.endsWith("\r\n\r\n1\n")).toBe(true);
    const file = join(scratchDir("shm"), "body.bin");
    writeFileSync(file, randomBytes(5000));
    const big = spawnSync("curl", ["-s", "--data-binary", `@${file}`, url], { encoding: "utf8" });
    expect(big.stdout).toBe("2\n");
    expect(spawnSync("curl", ["-s", `http://127.0.0.1:${s.port}/healthz`], { encoding: "utf8" }).stdout).toBe("ok\n");
    const put = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", url], { encoding: "utf8" });
    expect(put.stdout).toBe("405");
    const chunked = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Transfer-Encoding: chunked", "-d", "abc", url], { encoding: "utf8" });
    expect(chunked.stdout).toBe("501");
  });

  it("node:http with keep-alive: 200 requests on few sockets, bodies in the log byte-exact", async () => {
    const pool = join(scratchDir("shm"), "http.pool");
    const s = await server("http-wal", pool);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const bodies = Array.from({ length: 200 }, (_, i) => randomBytes(1 + ((i * 97) % 4000)));
    const seqs = await Promise.all(bodies.map((b) => new Promise<number>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: s.port, method: "POST", path: "/", agent, headers: { "Content-Length": b.length } }, (res) => {
        let t = "";
        res.on("data", (d) => (t += d));
        res.on("end", () => (res.statusCode === 201 ? resolve(Number(t)) : reject(new Error(`${res.statusCode} ${t}`))));
      });
      req.on("error", reject);
      req.end(b);
    })));
    agent.destroy();
    expect(new Set(seqs).size).toBe(200);
    await s.stop("SIGTERM");
    running.splice(0);
    const p = Pool.open(pool, { readOnly: true });
    try {
      const bySeq = new Map([...walkLog(p)].map((r) => [r.seq, r.data]));
      seqs.forEach((seq, i) => expect(bySeq.get(seq)!.equals(bodies[i])).toBe(true));
    } finally {
      p.close();
    }
  });

  it("pipelined requests in one write are answered in order", async () => {
    const s = await server("http-wal");
    const reqs = Array.from({ length: 20 }, (_, i) => `POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: ${String(i).length}\r\n\r\n${i}`).join("");
    const { data } = await exchange(s.port, [Buffer.from(reqs)], (d) => (d.toString().match(/201 Created/g) ?? []).length === 20 && d.toString().endsWith("\n"));
    const seqs = [...data.toString().matchAll(/X-Seq: (\d+)/g)].map((m) => Number(m[1]));
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it("malformed and unsupported requests get their status and a clean close; the server keeps serving", async () => {
    const s = await server("http-wal");
    const cases: [string, RegExp][] = [
      ["GARBAGE\r\n\r\n", /^HTTP\/1\.1 400 Bad Request/],
      ["POST / HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 411 Length Required/],
      ["POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", /^HTTP\/1\.1 413 Content Too Large/],
      ["POST / HTTP/1.1\r\nHost: x\r\nContent-Length: x1\r\n\r\n", /^HTTP\/1\.1 400 Bad Request/],
      ["POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", /^HTTP\/1\.1 501 Not Implemented/],
      [`GET / HTTP/1.1\r\n${"X-Long: y\r\n".repeat(1000)}\r\n`, /^HTTP\/1\.1 431 Request Header Fields Too Large/],
    ];
    for (const [req, status] of cases) {
      const { data, closed } = await exchange(s.port, [Buffer.from(req)], () => false);
      expect(data.toString(), req.slice(0, 40)).toMatch(status);
      expect(closed).toBe(true);
    }
    const split = Buffer.from("POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    for (const cut of [1, 10, 20, 38, 40]) {
      const { data } = await exchange(s.port, [split.subarray(0, cut), split.subarray(cut)], (d) => d.toString().endsWith("\n"));
      expect(data.toString()).toMatch(/^HTTP\/1\.1 201 Created/);
    }
  });

  it("wrk drives it with 1 KiB POST bodies over 20 connections, without errors", async (ctx) => {
    haveProgram("wrk", "wrk", ctx);
    const s = await server("http-wal");
    const w = spawnSync("wrk", ["-t1", "-c20", "-d2s", "-s", join(root, "bench", "wrk-post.lua"), `http://127.0.0.1:${s.port}/`], { encoding: "utf8", timeout: 30_000 });
    expect(w.status, w.stderr).toBe(0);
    expect(w.stdout).toMatch(/Requests\/sec:\s+[\d.]+/);
    expect(w.stdout).not.toMatch(/Non-2xx|Socket errors/);
    expect(s.output()).not.toMatch(/PASTE_ERR/);
  });
});

describe("paste-host run errors", () => {
  it("port in use, pool locked, handler missing, handler invalid: one line each, exit 1", async () => {
    const pool = join(scratchDir("shm"), "e.pool");
    const s = await server("wal-append", pool);
    const handler = join(root, "samples", "wal-append", "wal-append.wasm");
    const port = runCli(["run", "--pool", join(scratchDir("shm"), "other.pool"), "--handler", handler, "--listen", `tcp://127.0.0.1:${s.port}`, "--create-size", "16M", "--log-format", "pretty"]);
    expect(port.status).toBe(1);
    expect(port.stderr.trim()).toBe(`paste-host: PASTE_ERR_ADDR_IN_USE: 127.0.0.1:${s.port} is already in use by another process`);
    // the same failure in the default format off a terminal: one pino JSON line
    const locked = runCli(["run", "--pool", pool, "--handler", handler, "--listen", "tcp://127.0.0.1:0"]);
    expect(locked.status).toBe(1);
    const line = JSON.parse(locked.stderr.trim());
    expect(line).toMatchObject({ level: "error", code: "PASTE_ERR_POOL_LOCKED", name: "paste-host" });
    expect(line.msg).toMatch(new RegExp(`e\\.pool is locked by another process \\(pid ${s.child.pid}\\); stop it first$`));
    const missing = runCli(["run", "--pool", join(scratchDir("shm"), "m.pool"), "--handler", "/nonexistent/h.wasm"]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^paste-host: PASTE_ERR_HANDLER_INVALID: handler \/nonexistent\/h\.wasm not found/);
    const junk = join(scratchDir("shm"), "junk.wasm");
    writeFileSync(junk, "nope");
    const invalid = runCli(["run", "--pool", join(scratchDir("shm"), "i.pool"), "--handler", junk, "--listen", "tcp://127.0.0.1:0", "--create-size", "16M"]);
    expect(invalid.status).toBe(1);
    expect(invalid.stderr).toMatch(/PASTE_ERR_HANDLER_INVALID: .*junk\.wasm: not a WebAssembly module/);
    const bad = runCli(["run", "--pool", pool, "--handler", handler, "--listen", "http://nope"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/PASTE_ERR_USAGE: invalid --listen 'http:\/\/nope'/);
  });
});

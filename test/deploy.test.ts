// Deploying handlers to a running host, as a user does it: `paste-host deploy`
// against `paste-host run`, with clients on real sockets the whole time.
//  - under load: writes never stop, two deploys happen, no acknowledged write
//    is lost and no connection is dropped; a request half sent when the
//    deploy starts is answered by exactly one handler;
//  - bad modules: each refused with its own message, the old handler serves on;
//  - a handler that loops, traps or eats its memory: the host answers on
//    other connections and restores the previous handler; every acknowledged
//    record survives, through a restart too.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import RedisParser from "redis-parser";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildVariant, cliPath, root, runCli, scratchDir, startServer, until, type Server } from "./helpers.js";

const KV = join(root, "samples", "kv-wal", "kv-wal.wasm");
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

const running: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const c of sockets.splice(0)) c.destroy();
  for (const s of running.splice(0)) await s.stop("SIGKILL");
});

/** serving -- kv-wal on a fresh pool in /dev/shm with these run options, its admin API up; killed after the test. */
async function serving(name: string, extra: string[] = []): Promise<{ pool: string; s: Server }> {
  const pool = join(scratchDir("shm"), name);
  const s = await startServer({ pool, handler: KV, extra });
  running.push(s);
  await until(() => /admin API on/.test(s.output()));
  return { pool, s };
}

/** deploy -- `paste-host deploy` as a separate process, without blocking this one's clients. */
async function deploy(file: string, pool: string): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [cliPath, "deploy", file, "--pool", pool], { timeout: 60_000 });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { status: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/**
 * A RESP connection: one command at a time; each reply decoded by
 * redis-parser (the parser ioredis uses): a simple or bulk string as a
 * string, nil as null, an error reply as "ERR ..." text; undefined if the
 * server closed the connection first. Raw bytes can be sent too, to hold a
 * request half sent.
 */
class Resp {
  closed = false;
  #replies: (string | null)[] = [];
  #wait: ((r: string | null | undefined) => void) | null = null;
  readonly sock: Socket;
  constructor(port: number) {
    this.sock = connect(port, "127.0.0.1");
    sockets.push(this.sock);
    const parser = new RedisParser({
      returnReply: (r: string | null) => this.#replies.push(r),
      returnError: (e: Error) => this.#replies.push(e.message),
    });
    this.sock.on("data", (d) => {
      parser.execute(d);
      this.#pump();
    });
    const end = () => {
      this.closed = true;
      this.#wait?.(undefined);
      this.#wait = null;
    };
    this.sock.on("close", end);
    this.sock.on("error", end);
  }
  ready(): Promise<void> {
    return new Promise((r) => (this.sock.readyState === "open" ? r() : this.sock.once("connect", () => r())));
  }
  #pump(): void {
    if (!this.#wait || !this.#replies.length) return;
    const w = this.#wait;
    this.#wait = null;
    w(this.#replies.shift()!);
  }
  /** send -- raw bytes; the next reply (null if the connection closed first). */
  send(raw: string | Buffer): Promise<string | null | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const p = new Promise<string | null | undefined>((r) => (this.#wait = r));
    this.sock.write(raw);
    this.#pump();
    return p;
  }
  cmd(...args: string[]): Promise<string | null | undefined> {
    return this.send(encode(args));
  }
  /** closedWithin -- resolves true once the server closed the connection. */
  async closedWithin(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.closed && Date.now() < end) await sleep(20);
    return this.closed;
  }
}
const encode = (args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let kvV2: string;
let kvEvil: string;
beforeAll(async () => {
  const base = "samples/kv-wal/kv-wal.ts";
  // the same handler, rebuilt with one visible change (its INFO names it)
  kvV2 = await buildVariant("kv-wal-v2", base, [["paste_wal:kv-wal", "paste_wal:kv-wal-v2"]]);
  // a handler that misbehaves on command
  kvEvil = await buildVariant("kv-evil", base, [
    ["paste_wal:kv-wal", "paste_wal:kv-evil"],
    ["function execute(conn: u32, s: Stream, cmdLen: u32): void {",
      "let spins: u64 = 0;\nconst hoard = new Array<ArrayBuffer>();\n\nfunction execute(conn: u32, s: Stream, cmdLen: u32): void {"],
    [`  } else if (cmd == C_INFO) {`, `  } else if (cmd == commandCode("LOOP")) {
    for (;;) spins++;                                    // until the host's watchdog stops it
  } else if (cmd == commandCode("TRAP")) {
    assert(false, "TRAP asked for a trap");
  } else if (cmd == commandCode("BOMB")) {
    for (;;) hoard.push(new ArrayBuffer(1 << 20));       // until the heap limit
  } else if (cmd == C_INFO) {`],
  ]);
}, 120_000);

async function status(pool: string) {
  const r = runCli(["status", "--pool", pool, "--json"]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe("paste-host deploy", () => {
  it("swaps handlers under continuous writes: no acknowledged write lost, no connection dropped", async () => {
    const { pool, s } = await serving("load.pool");

    // writers: four connections, one SET in flight each, for as long as the test runs
    const acked = new Map<string, string>();
    let writes = 0;
    let writing = true;
    const writers = [0, 1, 2, 3].map(async (w) => {
      const c = new Resp(s.port);
      await c.ready();
      for (let i = 0; writing; i++) {
        // 300 keys a writer, rewritten: the live log stays small (kv-wal compacts),
        // and the last acknowledged value of each key is the one to read back
        const k = `w${w}:${i % 300}`;
        const v = `value-${w}-${i}-${"x".repeat(i % 200)}`;
        const r = await c.cmd("SET", k, v);
        if (r === undefined) break;   // the connection closed
        expect(r).toBe("OK");
        acked.set(k, v);
        writes++;
      }
      return c;
    });

    // a request half sent when the deploy starts: the deploy waits for it
    const slow = new Resp(s.port);
    await slow.ready();
    const half = encode(["SET", "slow", "answered-by-one-handler"]);
    slow.sock.write(half.slice(0, 20));

    await sleep(300);
    const first = deploy(kvV2, pool);
    await until(() => /deploying kv-wal-v2/.test(s.output()), 20_000);
    await sleep(400);
    const slowReply = slow.send(half.slice(20));
    const d1 = await first;
    expect(d1.status, d1.stderr).toBe(0);
    expect(d1.stdout).toMatch(/^deployed  kv-wal-v2-[0-9a-f]+\.wasm \(ABI 1/m);
    expect(d1.stdout).toMatch(/^replacing .*kv-wal\.wasm/m);
    const waited = Number(/waited (\d+) ms/.exec(d1.stdout)![1]);
    expect(waited).toBeGreaterThanOrEqual(300);   // it waited for the half-sent request, not cut it
    expect(await slowReply).toBe("OK");

    await sleep(300);
    const d2 = await deploy(kvEvil, pool);   // a different handler
    expect(d2.status, d2.stderr).toBe(0);
    await sleep(300);
    writing = false;
    const conns = await Promise.all(writers);

    expect(conns.map((c) => c.closed)).toEqual([false, false, false, false]);
    expect(slow.closed).toBe(false);
    expect(writes).toBeGreaterThan(1000);
    const st = await status(pool);
    expect(st.handler.sha256).toBe(sha256(kvEvil));
    expect(st.handler.previous).toMatch(/kv-wal-v2/);
    const check = new Resp(s.port);
    await check.ready();
    expect(await check.cmd("INFO")).toMatch(/paste_wal:kv-evil/);
    for (const [k, v] of acked) expect(await check.cmd("GET", k), k).toBe(v);
    expect(await check.cmd("GET", "slow")).toBe("answered-by-one-handler");
  }, 120_000);

  it("refuses bad modules with their own message; the old handler keeps serving", async () => {
    const { pool, s } = await serving("bad.pool");
    const c = new Resp(s.port);
    await c.ready();
    expect(await c.cmd("SET", "k", "v")).toBe("OK");

    const wabt = await (await import("wabt")).default();
    const wat = (text: string) => {
      const m = wabt.parseWat("t.wat", text);
      try {
        return Buffer.from(m.toBinary({}).buffer);
      } finally {
        m.destroy();
      }
    };
    const mem = `(import "env" "memory" (memory 32769))`;
    const abi = (v: number) => `(func (export "paste_abi_version") (result i32) i32.const ${v})`;
    const onRx = `(func (export "on_rx") (param i32))`;
    const cases: [string, Buffer, RegExp][] = [
      ["garbage", Buffer.from("definitely not wasm"), /not a WebAssembly module/],
      ["truncated", readFileSync(KV).subarray(0, 3000), /truncated or malformed/],
      ["forbidden import", wat(`(module (import "env" "fd_write" (func)) ${mem} ${abi(1)} ${onRx})`), /import env\.fd_write is not allowed/],
      ["no on_rx", wat(`(module ${mem} ${abi(1)})`), /no on_rx export/],
      ["wrong ABI", wat(`(module ${mem} ${abi(7)} ${onRx})`), /built for handler ABI 7; this host speaks 1/],
      ["own memory", wat(`(module (memory 1) ${abi(1)} ${onRx})`), /defines its own memory/],
      ["too large", Buffer.concat([Buffer.from("\0asm\x01\0\0\0"), Buffer.alloc(17 << 20)]), /larger than the 16 MiB limit/],
      ["on_init traps", wat(`(module ${mem} ${abi(1)} ${onRx} (func (export "on_init") unreachable))`),
        /PASTE_ERR_DEPLOY_FAILED: .* failed while taking over; the old handler keeps serving: .*unreachable/],
      // stopped by the watchdog; the old handler comes back in a new worker, same connections
      ["on_replay loops", wat(`(module ${mem} ${abi(1)} ${onRx} (func (export "on_replay") (param i32) (loop (br 0))))`),
        /PASTE_ERR_DEPLOY_FAILED: .* failed while taking over; .*kv-wal\.wasm.* keeps serving: handler .* ran past the batch budget \(500 ms\) in on_replay/],
    ];
    const before = sha256(KV);
    // a deploy is an admin call like any other: no token, or a wrong one, is 401 and changes nothing
    const url = JSON.parse(readFileSync(`${pool}.admin`, "utf8")).url;
    for (const auth of [{}, { Authorization: "Bearer not-the-token" }]) {
      const r = await fetch(`${url}/v1/handler`, { method: "POST", body: new Uint8Array(readFileSync(kvEvil)), headers: auth });
      expect(r.status).toBe(401);
    }
    for (const [what, bytes, message] of cases) {
      const file = join(scratchDir("shm"), `${what.replace(/ /g, "-")}.wasm`);
      writeFileSync(file, bytes);
      const r = await deploy(file, pool);
      expect(r.status, what).toBe(1);
      expect(r.stderr, what).toMatch(/^paste-host: PASTE_ERR_(HANDLER_INVALID|DEPLOY_FAILED): /);
      expect(r.stderr, what).toMatch(message);
      expect(await c.cmd("GET", "k"), what).toBe("v");   // same connection, old handler
    }
    expect((await status(pool)).handler.sha256).toBe(before);
    expect(c.closed).toBe(false);

    // an AssemblyScript source is built first, then deployed
    const src = await deploy(join(root, "samples", "kv-wal", "kv-wal.ts"), pool);
    expect(src.status, src.stderr).toBe(0);
    expect(src.stderr).toMatch(/built .*kv-wal\.ts/);
    expect(src.stdout).toMatch(/^deployed  kv-wal\.wasm \(ABI 1/m);
    expect(await c.cmd("GET", "k")).toBe("v");
  }, 120_000);

  it("a client that never finishes its request makes the deploy give up, not the client", async () => {
    const { pool, s } = await serving("busy.pool", ["--deploy-wait-ms", "400"]);
    const stuck = new Resp(s.port);
    await stuck.ready();
    const req = encode(["SET", "half", "sent"]);
    stuck.sock.write(req.slice(0, 10));
    await sleep(200);
    const r = await deploy(kvV2, pool);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^paste-host: PASTE_ERR_DEPLOY_BUSY: 1 connection\(s\) kept a request half sent for 400 ms; the old handler keeps serving; retry the deploy/);
    expect(await stuck.send(req.slice(10))).toBe("OK");   // the old handler still had its first half
    expect((await status(pool)).handler.sha256).toBe(sha256(KV));
    expect((await deploy(kvV2, pool)).status).toBe(0);           // and once nothing is half sent, it goes through
    expect(await stuck.cmd("GET", "half")).toBe("sent");
  }, 60_000);

  it("a loop, a trap and a memory bomb: other connections served, previous handler restored, nothing acknowledged lost", async () => {
    const { pool, s } = await serving("evil.pool", ["--batch-budget-ms", "300", "--memory-limit", "64M"]);
    const acked = new Map<string, string>();
    const bystander = new Resp(s.port);
    await bystander.ready();
    const set = async (k: string, v: string) => {
      expect(await bystander.cmd("SET", k, v)).toBe("OK");
      acked.set(k, v);
    };
    const allThere = async () => {
      for (const [k, v] of acked) expect(await bystander.cmd("GET", k), k).toBe(v);
    };
    await set("before", "kv-wal");
    expect((await deploy(kvEvil, pool)).status).toBe(0);
    await set("under-evil", "1");

    // 1. an infinite loop: stopped after the budget, kv-wal restored. A client
    //    with half a request sent loses it with the stopped handler (the next
    //    one never saw the first half) and is closed, not left waiting.
    const partial = new Resp(s.port);
    await partial.ready();
    partial.sock.write(encode(["SET", "half-sent", "never-acknowledged"]).slice(0, 18));
    await sleep(100);
    const looper = new Resp(s.port);
    await looper.ready();
    looper.sock.write(encode(["LOOP"]));
    expect(await looper.closedWithin(15_000)).toBe(true);
    await until(() => /serves again/.test(s.output()), 15_000);
    expect(s.output()).toMatch(/closed 2 connection\(s\) with a request cut off/);
    expect(await partial.closedWithin(5000)).toBe(true);
    expect(await bystander.cmd("GET", "half-sent")).toBe(null);
    expect(s.output()).toMatch(/PASTE_ERR_HANDLER_TIMEOUT.*ran past the batch budget \(300 ms\) in on_rx: stopped; restoring .*kv-wal\.wasm/);
    expect(bystander.closed).toBe(false);
    expect(await bystander.cmd("INFO")).toMatch(/paste_wal:kv-wal\r\n/);
    await allThere();
    let st = await status(pool);
    expect(st.handler.sha256).toBe(sha256(KV));
    expect(st.handler.events.at(-1)).toMatchObject({ kind: "restored" });

    // 2. a trap: reported with its message, file and line; that connection is
    //    closed once its batch is over; the deployed handler is rolled back
    expect((await deploy(kvEvil, pool)).status).toBe(0);
    await set("after-loop", "2");
    const trapper = new Resp(s.port);
    await trapper.ready();
    expect(await trapper.cmd("TRAP")).toBeUndefined();   // closed, unanswered
    expect(trapper.closed).toBe(true);
    await until(() => (s.output().match(/serves again/g) ?? []).length === 2, 15_000);
    expect(s.output()).toMatch(/PASTE_ERR_HANDLER_TRAP.*aborted: TRAP asked for a trap at .*kv-evil.*\.ts:\d+:\d+; restoring .*kv-wal\.wasm/);
    expect(bystander.closed).toBe(false);
    expect(await bystander.cmd("INFO")).toMatch(/paste_wal:kv-wal\r\n/);
    await set("after-trap", "3");
    await allThere();

    // 3. a memory bomb: stopped at its 64 MiB heap, kv-wal restored
    expect((await deploy(kvEvil, pool)).status).toBe(0);
    const bomber = new Resp(s.port);
    await bomber.ready();
    bomber.sock.write(encode(["BOMB"]));
    expect(await bomber.closedWithin(15_000)).toBe(true);
    await until(() => /PASTE_ERR_HANDLER_MEMORY/.test(s.output()), 15_000);
    expect(s.output()).toMatch(/ran out of its 64 MiB heap/);
    await until(() => (s.output().match(/serves again/g) ?? []).length === 3, 15_000);
    expect(bystander.closed).toBe(false);
    expect(await bystander.cmd("INFO")).toMatch(/paste_wal:kv-wal\r\n/);
    await allThere();
    st = await status(pool);
    expect(st.handler.sha256).toBe(sha256(KV));
    const { url } = JSON.parse(readFileSync(`${pool}.admin`, "utf8"));
    const token = readFileSync(`${pool}.token`, "utf8").trim();
    const metrics = await (await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text();
    expect(metrics).toMatch(/^paste_handler_stops_total\{reason="PASTE_ERR_HANDLER_TIMEOUT"\} 1$/m);
    expect(metrics).toMatch(/^paste_handler_stops_total\{reason="PASTE_ERR_HANDLER_MEMORY"\} 1$/m);
    expect(metrics).toMatch(/^paste_handler_stops_total\{reason="PASTE_ERR_HANDLER_TRAP"\} 1$/m);
    expect(metrics).toMatch(/^paste_deploys_total\{result="ok"\} 3$/m);
    expect(metrics).toContain(`paste_handler_info{name="${KV}",sha256="${sha256(KV)}",abi="1"} 1`);

    // and every acknowledged write survives a restart of the host
    expect(await s.stop("SIGTERM")).toBe(0);
    running.pop();
    const again = await startServer({ pool, handler: KV });
    running.push(again);
    const c = new Resp(again.port);
    await c.ready();
    for (const [k, v] of acked) expect(await c.cmd("GET", k), k).toBe(v);
  }, 120_000);

  it("a write logged in a batch that was cut off (its handler stopped) is never applied, not even after a crash", async () => {
    const { pool, s } = await serving("cut.pool", ["--batch-budget-ms", "300"]);
    const c = new Resp(s.port);
    await c.ready();
    expect(await c.cmd("SET", "kept", "1")).toBe("OK");
    expect((await deploy(kvEvil, pool)).status).toBe(0);
    // one write, one batch: the SET is logged, then LOOP runs past the budget and the batch is cut off
    const cut = new Resp(s.port);
    await cut.ready();
    cut.sock.write(encode(["SET", "cut-off", "never-acknowledged"]) + encode(["LOOP"]));
    expect(await cut.closedWithin(15_000)).toBe(true);
    await until(() => /serves again/.test(s.output()), 15_000);
    expect(await c.cmd("GET", "cut-off")).toBe(null);
    // the power fails now, before another batch commits: recovery goes on past
    // the tail over records that look whole, and the dropped one must not be there
    await s.stop("SIGKILL");
    running.pop();
    const again = await startServer({ pool, handler: KV });
    running.push(again);
    const d = new Resp(again.port);
    await d.ready();
    expect(await d.cmd("GET", "cut-off")).toBe(null);
    expect(await d.cmd("GET", "kept")).toBe("1");
    expect(again.output()).not.toMatch(/past the persistent tail/);
  }, 60_000);
});

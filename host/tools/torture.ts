// torture.ts -- `paste-host torture`: prove the durability promise the hard
// way. A client writes to a kv-wal host under load and remembers every
// acknowledged write; the host is SIGKILLed at a random moment; it is
// restarted; every acknowledged write must read back byte-exact, and nothing
// that was never written may appear.
//
// With deployEveryMs, the host's handler is also swapped (paste-host deploy,
// alternating between the handler and deployHandler) all through the load,
// so kills land before, during and after deploys: a deploy must neither lose
// an acknowledged write nor leave the pool in a state the restart cannot use.
//
// With workload "kv-random" the keys are drawn at random from a key space
// (--keys, split among the connections so that each key has one writer and
// its writes have one order) on a pool small enough (createSize) that the
// handler's cleaner must keep moving live values and dropping dead ones; an
// INFO connection samples the cleaner's counters, so the report shows it
// was busy when the kills landed.
//
// With redisTools, real Redis clients take part: redis-benchmark writes
// random keys of its own (key:NNNNNNNNNNNN, not judged) beside the writers
// all through each load, so kills land amid a real client's pipelined
// traffic, and the read-back after each restart goes through redis-cli.
//
// What "byte-exact" allows: for each key, the value read after a restart must
// be the last acknowledged value or one written after it whose acknowledgement
// was lost to the kill (durable, but the reply never left). An older value,
// a missing key, or bytes no client sent are losses.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import RedisParser from "redis-parser";
import { join } from "node:path";
import { packageRoot } from "../core/native.js";
import { spawnHost } from "../server/spawn.js";
import { deployHandler } from "./status.js";

export type TortureWorkload = "kv" | "kv-random";

export interface TortureOptions {
  kills: number;
  /** kv: each connection cycles over its keys; kv-random: random keys from the key space (default kv). */
  workload?: TortureWorkload;
  /** Pool size when the pool is created (default 64M): small, and the cleaner must work. */
  createSize?: string;
  /** Also load with redis-benchmark, and read back with redis-cli (both from Debian's redis-tools). */
  redisTools?: boolean;
  /** Handler .wasm (default: the kv-wal sample). */
  handler?: string;
  /** Pool path (default: a fresh pool on /dev/shm, removed afterwards). */
  pool?: string;
  persist?: string;
  conns?: number;
  /** Distinct keys: per connection (kv), or in all (kv-random, split among the connections). */
  keys?: number;
  /** Writes in flight per connection. */
  window?: number;
  valueSize?: number;
  /** A kill lands between minMs and maxMs after load starts. */
  minMs?: number;
  maxMs?: number;
  /** Deploy a handler this often (ms) during load; 0: never. */
  deployEveryMs?: number;
  /** What to deploy, alternating with handler (default: handler itself). */
  deployHandler?: string;
  onProgress?: (line: string) => void;
}

export interface TortureResult {
  kills: number;
  written: number;
  acked: number;
  verified: number;
  losses: string[];
  seconds: number;
  /** Deploys that completed (with deployEveryMs). */
  deploys: number;
  /** The cleaner's work as kv-wal's INFO last reported it before each kill, summed over the rounds. */
  cleaner: { moved: number; dropped: number };
}

interface KeyState {
  /** writeId of the last acknowledged write, or -1. */
  acked: number;
  /** writeIds sent after it and not (yet) acknowledged, oldest first. */
  inflight: number[];
}

const valueOf = (id: number, size: number) => {
  const head = `w${id}:`;
  const b = Buffer.alloc(Math.max(size, head.length + 1));
  b.write(head);
  for (let i = head.length; i < b.length; i++) b[i] = 97 + ((id * 7 + i) % 26);
  return b;
};

const cmd = (...args: (string | Buffer)[]) =>
  Buffer.concat([Buffer.from(`*${args.length}\r\n`), ...args.flatMap((a) => {
    const b = Buffer.from(a);
    return [Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n")];
  })]);

/**
 * replies -- a RESP reader over a connection's bytes (redis-parser, the parser
 * ioredis uses): each reply in order, bulk and simple strings as Buffers,
 * nil as null; an error reply arrives as an Error, so it never counts as an ack.
 */
function replies(onReply: (r: Buffer | null | Error) => void): RedisParser {
  return new RedisParser({ returnBuffers: true, returnReply: onReply, returnError: onReply });
}
const OK = Buffer.from("OK");

function startHost(o: { handler: string; pool: string; persist?: string; createSize?: string; admin: boolean }):
  Promise<{ port: number; child: ChildProcess; output(): string }> {
  return spawnHost({ pool: o.pool, handler: o.handler, persist: o.persist, createSize: o.createSize, extra: o.admin ? [] : ["--admin", "off"] });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.on("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

type Options = Required<Pick<TortureOptions, "conns" | "keys" | "window" | "valueSize" | "minMs" | "maxMs" | "handler">> & TortureOptions;

/**
 * Torture -- one run's state: what every key was last acknowledged as and
 * what is still in flight, and the counts. Each round is load (with deploys),
 * kill, restart, readBack, judge.
 */
class Torture {
  readonly state = new Map<string, KeyState>();
  readonly losses: string[] = [];
  written = 0;
  acked = 0;
  verified = 0;
  deploys = 0;
  readonly cleaner = { moved: 0, dropped: 0 };
  #nextId = 0;

  constructor(readonly o: Options, readonly pool: string) {}

  /** writer -- one connection writing SETs, o.window in flight, until its socket ends. */
  writer(port: number, c: number, socks: Socket[]): Promise<void> {
    const { o, state } = this;
    return new Promise<void>((resolve) => {
      const sock = connect(port, "127.0.0.1");
      socks.push(sock);
      const sent: { key: string; id: number }[] = [];   // awaiting +OK, in order
      const reader = replies((r) => {
        const w = sent.shift();
        if (!w || !(r instanceof Buffer) || !r.equals(OK)) return;
        const st = state.get(w.key)!;
        // acknowledged: everything older on this key is superseded
        st.inflight = st.inflight.filter((x) => x > w.id);
        st.acked = w.id;
        this.acked++;
      });
      let i = 0;
      // kv-random: this connection's share of the key space, drawn at random
      const share = Math.max(1, Math.ceil(o.keys / o.conns));
      const nextKey = o.workload === "kv-random" ? () => `r${c}:${Math.floor(Math.random() * share)}` : () => `t${c}:${i++ % o.keys}`;
      const pump = () => {
        while (sent.length < o.window && !sock.destroyed) {
          const key = nextKey();
          const id = this.#nextId++;
          const st = state.get(key) ?? { acked: -1, inflight: [] };
          st.inflight.push(id);
          state.set(key, st);
          sent.push({ key, id });
          this.written++;
          sock.write(cmd("SET", key, valueOf(id, o.valueSize)));
        }
      };
      sock.on("connect", pump);
      sock.on("data", (d) => {
        reader.execute(d);
        pump();
      });
      sock.on("error", () => resolve());
      sock.on("close", () => resolve());
    });
  }

  /** deployWhile -- deploy every o.deployEveryMs, alternating handlers, while loading() holds. */
  async deployWhile(loading: () => boolean): Promise<void> {
    const o = this.o;
    // the admin API's address appears in POOL.admin a moment after the data path serves
    for (let k = 0; loading(); k++) {
      await new Promise((r) => setTimeout(r, o.deployEveryMs));
      if (!loading()) break;
      try {
        await deployHandler(k % 2 ? o.handler : o.deployHandler ?? o.handler, { pool: this.pool, timeoutMs: 10_000 });
        this.deploys++;
      } catch {
        // the kill can land mid-deploy (the request fails) and so can a deploy
        // before the admin API is up; what matters is what the restart finds
      }
    }
  }

  /**
   * watchCleaner -- INFO every 50 ms while loading() holds; the cleaner's
   * counters as last seen (kv-wal's paste_cleaner_moved, _dropped: since
   * this host started), or zeros from a handler that has none.
   */
  watchCleaner(port: number, loading: () => boolean): Promise<{ moved: number; dropped: number }> {
    return new Promise((resolve) => {
      const last = { moved: 0, dropped: 0 };
      const sock = connect(port, "127.0.0.1");
      const reader = replies((r) => {
        const text = r instanceof Buffer ? r.toString("latin1") : "";
        last.moved = Number(/paste_cleaner_moved:(\d+)/.exec(text)?.[1] ?? last.moved);
        last.dropped = Number(/paste_cleaner_dropped:(\d+)/.exec(text)?.[1] ?? last.dropped);
        if (loading()) setTimeout(() => sock.destroyed || sock.write(cmd("INFO")), 50);
        else sock.destroy();
      });
      sock.on("connect", () => sock.write(cmd("INFO")));
      sock.on("data", (d) => reader.execute(d));
      sock.on("error", () => {});
      sock.on("close", () => resolve(last));
    });
  }

  /** loadAndKill -- writers (and deploys) against host, then SIGKILL at a random moment; the delay. */
  async loadAndKill(host: { port: number; child: ChildProcess }): Promise<number> {
    const o = this.o;
    const socks: Socket[] = [];
    const load = Array.from({ length: o.conns }, (_, c) => this.writer(host.port, c, socks));
    const delay = o.minMs + Math.floor(Math.random() * (o.maxMs - o.minMs));
    let loading = true;
    const deploys = (o.deployEveryMs ?? 0) > 0 ? this.deployWhile(() => loading) : Promise.resolve();
    const info = this.watchCleaner(host.port, () => loading);
    const bench = o.redisTools ? spawn("redis-benchmark", ["-h", "127.0.0.1", "-p", String(host.port), "-t", "set", "-r", String(o.keys * 4),
      "-d", String(o.valueSize), "-n", "100000000", "-c", "2", "-P", "8", "-q"], { stdio: "ignore" }) : null;
    await new Promise((r) => setTimeout(r, delay));
    loading = false;
    await killed(host.child);
    if (bench) await killed(bench);
    await deploys;
    for (const s of socks) s.destroy();
    await Promise.all(load);
    const seen = await info;
    this.cleaner.moved += seen.moved;
    this.cleaner.dropped += seen.dropped;
    return delay;
  }

  /**
   * readBackCli -- GET every key through redis-cli (its input one command a
   * line; to a pipe it prints each reply raw on a line, nil as an empty one:
   * the values are ASCII with no newline).
   */
  readBackCli(port: number, keys: string[]): (Buffer | null)[] {
    const r = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port)], {
      input: keys.map((k) => `GET ${k}\n`).join(""), encoding: "latin1", maxBuffer: 1 << 30, timeout: 60_000,
    });
    if (r.error || r.status !== 0) throw new Error(`redis-cli after restart: ${r.error?.message ?? r.stderr}`);
    const lines = r.stdout.split("\n");
    if (lines.length < keys.length) throw new Error(`redis-cli answered ${lines.length} of ${keys.length} GETs`);
    return keys.map((_, i) => (lines[i] === "" ? null : Buffer.from(lines[i], "latin1")));
  }

  /** readBack -- GET every key from a restarted host, pipelined; values in key order. */
  readBack(port: number, keys: string[]): Promise<(Buffer | null)[]> {
    return new Promise((resolve, reject) => {
      const sock = connect(port, "127.0.0.1");
      const got: (Buffer | null)[] = [];
      const reader = replies((r) => {
        if (r instanceof Error) return reject(new Error(`GET after restart: ${r.message}`));
        got.push(r);
        if (got.length === keys.length) {
          sock.destroy();
          resolve(got);
        }
      });
      sock.on("connect", () => sock.write(Buffer.concat(keys.map((k) => cmd("GET", k)))));
      sock.on("data", (d) => reader.execute(d));
      sock.on("error", reject);
      // a host that hangs up early must fail the run: a promise left pending would let the process end with status 0
      sock.on("close", () => reject(new Error(`the restarted host closed the connection after ${got.length} of ${keys.length} GETs`)));
    });
  }

  /** judge -- each value read back must be the last acknowledged one or a later one in flight. */
  judge(round: number, keys: string[], values: (Buffer | null)[]): void {
    keys.forEach((key, k) => {
      const st = this.state.get(key)!;
      const v = values[k];
      const id = v ? Number(/^w(\d+):/.exec(v.toString("latin1"))?.[1] ?? NaN) : -1;
      const allowed = new Set([st.acked, ...st.inflight]);
      if (v && (!allowed.has(id) || !v.equals(valueOf(id, this.o.valueSize)))) {
        this.losses.push(`round ${round}: ${key} reads ${v.length} bytes "${v.subarray(0, 24).toString("latin1")}..." (acknowledged w${st.acked})`);
      } else if (!v && st.acked >= 0) {
        this.losses.push(`round ${round}: ${key} is missing (acknowledged w${st.acked})`);
      }
      if (st.acked >= 0) this.verified++;
      // what is on disk now is the new baseline
      this.state.set(key, { acked: v ? id : -1, inflight: [] });
    });
  }
}

export async function runTorture(opts: TortureOptions): Promise<TortureResult> {
  const o: Options = {
    conns: 8, keys: 50, window: 16, valueSize: 200, minMs: 50, maxMs: 600, ...opts,
    handler: opts.handler ?? join(packageRoot(), "samples", "kv-wal", "kv-wal.wasm"),
  };
  const scratch = opts.pool ? undefined : mkdtempSync(join("/dev/shm", "paste-torture-"));
  const pool = opts.pool ?? join(scratch!, "torture.pool");
  const t0 = Date.now();
  const t = new Torture(o, pool);
  const deploying = (o.deployEveryMs ?? 0) > 0;
  const start = () => startHost({ handler: o.handler, pool, persist: o.persist, createSize: o.createSize, admin: deploying });
  let host: Awaited<ReturnType<typeof start>> | null = null;
  try {
    host = await start();   // inside the try: a host that does not start must not leave the scratch pool behind
    for (let round = 1; round <= o.kills; round++) {
      const delay = await t.loadAndKill(host);
      host = await start();
      const keys = [...t.state.keys()];
      t.judge(round, keys, o.redisTools ? t.readBackCli(host.port, keys) : await t.readBack(host.port, keys));
      o.onProgress?.(`kill ${round}/${o.kills} after ${delay} ms: ${t.acked} writes acknowledged so far, ${t.verified} reads verified, ` +
        `${deploying ? `${t.deploys} deploys, ` : ""}cleaner moved ${t.cleaner.moved}, dropped ${t.cleaner.dropped}, ${t.losses.length} losses`);
    }
  } finally {
    if (host) await killed(host.child);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  return { kills: o.kills, written: t.written, acked: t.acked, verified: t.verified, losses: t.losses, seconds: (Date.now() - t0) / 1000,
    deploys: t.deploys, cleaner: t.cleaner };
}

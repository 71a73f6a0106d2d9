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
// What "byte-exact" allows: for each key, the value read after a restart must
// be the last acknowledged value or one written after it whose acknowledgement
// was lost to the kill (durable, but the reply never left). An older value,
// a missing key, or bytes no client sent are losses.

import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { packageRoot } from "./native.js";
import { spawnHost } from "./spawn.js";
import { deployHandler } from "./status.js";

export interface TortureOptions {
  kills: number;
  /** Handler .wasm (default: the kv-wal sample). */
  handler?: string;
  /** Pool path (default: a fresh pool on /dev/shm, removed afterwards). */
  pool?: string;
  persist?: string;
  conns?: number;
  /** Distinct keys per connection: writes overwrite each other. */
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

/** RESP replies from a byte stream: "+OK", "$-1" (null), bulk strings, errors. */
export class RespReader {
  #buf = Buffer.alloc(0);
  push(d: Buffer): (Buffer | string | null)[] {
    this.#buf = Buffer.concat([this.#buf, d]);
    const out: (Buffer | string | null)[] = [];
    for (;;) {
      const eol = this.#buf.indexOf("\r\n");
      if (eol < 0) return out;
      const t = this.#buf[0];
      if (t === 0x2b || t === 0x2d || t === 0x3a) {        // + - :
        out.push(this.#buf.subarray(0, eol).toString());
        this.#buf = this.#buf.subarray(eol + 2);
      } else if (t === 0x24) {                              // $
        const len = Number(this.#buf.subarray(1, eol).toString());
        if (len < 0) {
          out.push(null);
          this.#buf = this.#buf.subarray(eol + 2);
          continue;
        }
        if (this.#buf.length < eol + 2 + len + 2) return out;
        out.push(Buffer.from(this.#buf.subarray(eol + 2, eol + 2 + len)));
        this.#buf = this.#buf.subarray(eol + 2 + len + 2);
      } else {
        throw new Error(`unexpected reply byte 0x${t.toString(16)}`);
      }
    }
  }
}

function startHost(o: { handler: string; pool: string; persist?: string; admin: boolean }): Promise<{ port: number; child: ChildProcess; output(): string }> {
  return spawnHost({ pool: o.pool, handler: o.handler, persist: o.persist, extra: o.admin ? [] : ["--admin", "off"] });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.on("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

export async function runTorture(opts: TortureOptions): Promise<TortureResult> {
  const o = {
    conns: 8, keys: 50, window: 16, valueSize: 200, minMs: 50, maxMs: 600, ...opts,
    handler: opts.handler ?? join(packageRoot(), "samples", "kv-wal", "kv-wal.wasm"),
  };
  const scratch = opts.pool ? undefined : mkdtempSync(join("/dev/shm", "paste-torture-"));
  const pool = opts.pool ?? join(scratch!, "torture.pool");
  const t0 = Date.now();
  const state = new Map<string, KeyState>();
  const losses: string[] = [];
  let written = 0;
  let acked = 0;
  let verified = 0;
  let nextId = 0;
  let deploys = 0;
  const deploying = (o.deployEveryMs ?? 0) > 0;
  const start = () => startHost({ handler: o.handler, pool, persist: o.persist, admin: deploying });
  let host = await start();
  try {
    for (let round = 1; round <= o.kills; round++) {
      // ------------------------------------------------ load, then the kill
      const socks: Socket[] = [];
      const load = Array.from({ length: o.conns }, (_, c) => new Promise<void>((resolve) => {
        const sock = connect(host.port, "127.0.0.1");
        socks.push(sock);
        const reader = new RespReader();
        const sent: { key: string; id: number }[] = [];   // awaiting +OK, in order
        let i = 0;
        const pump = () => {
          while (sent.length < o.window && !sock.destroyed) {
            const key = `t${c}:${i++ % o.keys}`;
            const id = nextId++;
            const st = state.get(key) ?? { acked: -1, inflight: [] };
            st.inflight.push(id);
            state.set(key, st);
            sent.push({ key, id });
            written++;
            sock.write(cmd("SET", key, valueOf(id, o.valueSize)));
          }
        };
        sock.on("connect", pump);
        sock.on("data", (d) => {
          for (const r of reader.push(d)) {
            const w = sent.shift();
            if (!w || r !== "+OK") continue;
            const st = state.get(w.key)!;
            // acknowledged: everything older on this key is superseded
            st.inflight = st.inflight.filter((x) => x > w.id);
            st.acked = w.id;
            acked++;
          }
          pump();
        });
        sock.on("error", () => resolve());
        sock.on("close", () => resolve());
      }));
      const delay = o.minMs + Math.floor(Math.random() * (o.maxMs - o.minMs));
      let loading = true;
      const deployLoop = deploying ? (async () => {
        // the admin API's address appears in POOL.admin a moment after the data path serves
        for (let k = 0; loading; k++) {
          await new Promise((r) => setTimeout(r, o.deployEveryMs));
          if (!loading) break;
          try {
            await deployHandler(k % 2 ? o.handler : o.deployHandler ?? o.handler, { pool });
            deploys++;
          } catch {
            // the kill can land mid-deploy (the request fails) and so can a deploy
            // before the admin API is up; what matters is what the restart finds
          }
        }
      })() : Promise.resolve();
      await new Promise((r) => setTimeout(r, delay));
      loading = false;
      await killed(host.child);
      await deployLoop;
      for (const s of socks) s.destroy();
      await Promise.all(load);

      // ------------------------------------------- restart, read back, judge
      host = await start();
      const keys = [...state.keys()];
      const values = await new Promise<(Buffer | null)[]>((resolve, reject) => {
        const sock = connect(host.port, "127.0.0.1");
        const reader = new RespReader();
        const got: (Buffer | null)[] = [];
        sock.on("connect", () => sock.write(Buffer.concat(keys.map((k) => cmd("GET", k)))));
        sock.on("data", (d) => {
          for (const r of reader.push(d)) got.push(typeof r === "string" ? Buffer.from(r) : r);
          if (got.length === keys.length) {
            sock.destroy();
            resolve(got);
          }
        });
        sock.on("error", reject);
      });
      keys.forEach((key, k) => {
        const st = state.get(key)!;
        const v = values[k];
        const id = v ? Number(/^w(\d+):/.exec(v.toString("latin1"))?.[1] ?? NaN) : -1;
        const allowed = new Set([st.acked, ...st.inflight]);
        if (v && (!allowed.has(id) || !v.equals(valueOf(id, o.valueSize)))) {
          losses.push(`round ${round}: ${key} reads ${v.length} bytes "${v.subarray(0, 24).toString("latin1")}..." (acknowledged w${st.acked})`);
        } else if (!v && st.acked >= 0) {
          losses.push(`round ${round}: ${key} is missing (acknowledged w${st.acked})`);
        }
        if (st.acked >= 0) verified++;
        // what is on disk now is the new baseline
        state.set(key, { acked: v ? id : -1, inflight: [] });
      });
      o.onProgress?.(`kill ${round}/${o.kills} after ${delay} ms: ${acked} writes acknowledged so far, ${verified} reads verified, ` +
        `${deploying ? `${deploys} deploys, ` : ""}${losses.length} losses`);
    }
  } finally {
    await killed(host.child);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  return { kills: o.kills, written, acked, verified, losses, seconds: (Date.now() - t0) / 1000, deploys };
}


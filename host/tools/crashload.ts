// crashload.ts -- crashtest's workloads: the requests, in a handler's
// protocol, and what the workload was told about them (which requests were
// acknowledged, and with what reply), so that a crash image can be judged
// the way a client would judge it.
//
// The kv workload is SETs of values that name their request (the first 8
// bytes are its number), on keys drawn from a small key space so that
// values die quickly and the handler's cleaner has work; every tenth request
// is a DEL. Its model answers, for a crash image, what each key may read
// after recovery: the last acknowledged write, or one sent after it whose
// acknowledgement had not left (it may or may not have become durable). A
// write the handler refused (-OOM) is neither.

import type { Runtime } from "../core/runtime.js";

export type Workload = "mem" | "kv" | "frames" | "http";

/** rng -- mulberry32, a small seeded generator, so a seed names the same sample everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The kv workload's key of request k: spread over the key space, the same in every run. */
export function kvKey(k: number, keys: number): string {
  return `key:${Math.floor(rng(k * 7919 + 17)() * keys)}`;
}

/** isDel -- request k of the kv workload deletes its key instead of setting it. */
export const isDel = (k: number) => k % 10 === 0;

/** payload -- the bytes request k carries: its number first, then a pattern. */
export function payload(k: number, size: number): Buffer {
  const p = Buffer.alloc(size);
  for (let i = 0; i < size; i++) p[i] = (k * 31 + i) & 0xff;
  if (size >= 8) p.writeBigUInt64LE(BigInt(k), 0);
  return p;
}

export function resp(...args: (string | Buffer)[]): Buffer {
  return Buffer.concat([Buffer.from(`*${args.length}\r\n`), ...args.flatMap((a) => {
    const b = Buffer.from(a);
    return [Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n")];
  })]);
}

/** request -- bytes of request k in the workload's protocol. */
export function request(w: Workload, k: number, size: number, keys: number): Buffer {
  const data = payload(k, size);
  switch (w) {
    case "mem":
      return data;
    case "frames": {
      const h = Buffer.alloc(4);
      h.writeUInt32LE(size, 0);
      return Buffer.concat([h, data]);
    }
    case "kv":
      return isDel(k) ? resp("DEL", kvKey(k, keys)) : resp("SET", kvKey(k, keys), data);
    case "http":
      return Buffer.concat([Buffer.from(`POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: ${size}\r\n\r\n`), data]);
  }
}

/**
 * RespReader -- the replies in a connection's bytes, as they come: a simple
 * string or integer as its text, a bulk string as its bytes, nil as null, an
 * error as an Error. Enough for SET, DEL and GET. (redis-parser would do, but
 * it keeps a timer running for seconds after large bulk replies, which holds
 * the process open when crashtest is done.)
 */
export class RespReader {
  #buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onReply: (r: Buffer | string | null | Error) => void) {}

  execute(data: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, data]) : data;
    let at = 0;
    for (;;) {
      const eol = this.#buf.indexOf("\r\n", at);
      if (eol < 0) break;
      const kind = this.#buf[at];
      const line = this.#buf.toString("latin1", at + 1, eol);
      if (kind === 0x24 /* $ */) {
        const n = Number(line);
        if (n < 0) {
          this.onReply(null);
          at = eol + 2;
          continue;
        }
        if (this.#buf.length < eol + 2 + n + 2) break;   // the rest of the value is still to come
        this.onReply(Buffer.from(this.#buf.subarray(eol + 2, eol + 2 + n)));
        at = eol + 2 + n + 2;
        continue;
      }
      this.onReply(kind === 0x2d /* - */ ? new Error(line) : line);
      at = eol + 2;
    }
    this.#buf = this.#buf.subarray(at);
  }
}

/** One batch of the run: its requests [first, end), the persist steps done when they were all in the ring, and the replies released after it. */
interface Batch { first: number; end: number; filledAt: number; repliesAfter: number }

/**
 * KvModel -- what the kv workload sent and was told, to judge an image by
 * GETs through the handler. Requests are numbered from 1; replies come back
 * per connection in order.
 */
export class KvModel {
  readonly batches: Batch[] = [];
  /** reply[k]: "ok" (written or deleted), "refused" (an error reply: nothing changed), or undefined (none yet). */
  readonly reply: ("ok" | "refused")[] = [];
  readonly #pending = new Map<number, number[]>();   // conn -> requests awaiting a reply, oldest first
  readonly #parsers = new Map<number, RespReader>();
  /** Keys the workload touched, and for each the requests that wrote it, in order. */
  readonly writes = new Map<string, number[]>();

  constructor(readonly keys: number, readonly size: number) {}

  sent(k: number, conn: number): void {
    const q = this.#pending.get(conn) ?? [];
    q.push(k);
    this.#pending.set(conn, q);
    const key = kvKey(k, this.keys);
    const w = this.writes.get(key) ?? [];
    w.push(k);
    this.writes.set(key, w);
  }

  batch(first: number, end: number, filledAt: number, repliesAfter: number): void {
    this.batches.push({ first, end, filledAt, repliesAfter });
  }

  /** replies -- what the mem port delivered: parsed per connection, matched to the requests in order. */
  replies(rs: { conn: number; data: Buffer }[]): void {
    for (const r of rs) {
      let p = this.#parsers.get(r.conn);
      if (!p) {
        const conn = r.conn;
        const on = (v: unknown) => {
          const k = this.#pending.get(conn)?.shift();
          if (k !== undefined) this.reply[k] = v instanceof Error ? "refused" : "ok";
        };
        p = new RespReader(on);
        this.#parsers.set(conn, p);
      }
      p.execute(r.data);
    }
  }

  /**
   * bounds -- for an image cut at persist step `step` with `replies` replies
   * released before it: requests [1, acked) were acknowledged, [1, sent) had
   * reached the pool.
   */
  bounds(step: number, replies: number): { acked: number; sent: number } {
    let acked = 1;
    let sent = 1;
    for (const b of this.batches) {
      if (b.repliesAfter <= replies) acked = b.end;
      if (b.filledAt < step) sent = b.end;
      else break;
    }
    return { acked, sent };
  }

  /** allowed -- what key may read in such an image: request numbers whose value it may hold (0: absent), the last acknowledged first. */
  allowed(key: string, { acked, sent }: { acked: number; sent: number }): number[] {
    const valueOf = (k: number) => (isDel(k) ? 0 : k);
    let last = 0;
    const later: number[] = [];
    for (const k of this.writes.get(key) ?? []) {
      if (k >= sent) break;
      if (this.reply[k] !== "ok") continue;                  // refused (or never answered): it changed nothing
      if (k < acked) last = valueOf(k);
      else later.push(valueOf(k));
    }
    return [last, ...later];
  }
}

/**
 * readKeys -- GET every key through the handler on a reopened image (mem
 * port, one connection, batches of at most `batch`); each key's value, or
 * null where it is absent.
 */
export function readKeys(rt: Runtime, keys: string[], batch: number): Map<string, Buffer | null> {
  const out = new Map<string, Buffer | null>();
  const got: (Buffer | null)[] = [];
  let failed: Error | null = null;
  const parser = new RespReader((v) => {
    if (v instanceof Error) failed ??= v;
    got.push(v instanceof Buffer ? v : null);
  });
  for (let i = 0; i < keys.length; i += batch) {
    const part = keys.slice(i, i + batch);
    for (const k of part) {
      if (!rt.memRequest(resp("GET", k), 1)) throw new Error(`the reopened image has no room for a GET (ring or pool full)`);
    }
    rt.runBatch();
    for (const r of rt.takeReplies()) parser.execute(r.data);
    if (failed) throw new Error(`GET ${part[0]}... answered ${(failed as Error).message}`);
    if (got.length < i + part.length) throw new Error(`${i + part.length - got.length} GET(s) got no reply after recovery`);
  }
  keys.forEach((k, i) => out.set(k, got[i]));
  return out;
}

/** judgeKeys -- each key's value after recovery against the model: the first problem, or null. */
export function judgeKeys(model: KvModel, values: Map<string, Buffer | null>, step: number, replies: number): string | null {
  const bounds = model.bounds(step, replies);
  for (const [key, v] of values) {
    const allowed = model.allowed(key, bounds);
    const k = v && v.length >= 8 ? Number(v.readBigUInt64LE(0)) : 0;
    const ok = v === null ? allowed.includes(0) : allowed.includes(k) && k > 0 && v.equals(payload(k, model.size));
    if (ok) continue;
    const want = allowed[0] ? `the value of request ${allowed[0]}` : "absent";
    const also = allowed.length > 1 ? ` (or one of ${allowed.length - 1} later unacknowledged write(s))` : "";
    const has = v === null ? "is absent" : k > 0 && v.equals(payload(k, model.size)) ? `holds the value of request ${k}` : `holds ${v.length} bytes no request wrote`;
    return `${key} ${has} after recovery, but acknowledged was ${want}${also}`;
  }
  return null;
}

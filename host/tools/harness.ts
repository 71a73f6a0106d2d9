// harness.ts -- `paste-host/testing`: a handler under test, without a server.
//
//   const h = await openHandler("assembly/handler.ts");   // built, on a temporary pool
//   const c = h.connect();
//   c.send("SET k v\r\n", { split: 3 });                  // arrives 3 bytes per recv, each its own batch
//   expect(c.text()).toBe("+OK\r\n");                     // the replies that left (after the commit)
//   h.restart();                                          // recovery and replay, as after a restart
//   h.close();                                            // the pool and its directory are removed
//
// It drives the real data path through the mem port (native port_mem.c):
// each piece of a send goes into an RX slot as recv() would put it there, the
// batch runs and commits, and only then are its replies readable. Each
// harness has its own pool and runtime, so several in one test file stay
// apart (test/harness.test.ts checks it).

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { buildHandler } from "../core/build.js";
import { checkConfig } from "../core/config.js";
import { PoolFullError } from "../core/errors.js";
import { Handler, type CompiledHandler } from "../core/handler.js";
import type { PersistMode } from "../core/layout.js";
import { walkLog } from "../core/logwalk.js";
import { Pool } from "../core/pool.js";
import { Runtime, type RecoveryReport, type RuntimeOptions, type RuntimeStats } from "../core/runtime.js";
import { parseSize } from "../core/size.js";

export interface HarnessOptions {
  /** The handler: an AssemblyScript entry (.ts, built as `paste-host build` does), a .wasm path, or module bytes. */
  handler: string | Uint8Array;
  /** The handler's config, what handlerConfig() returns in it (text is UTF-8 encoded); default none. Restarts keep it. */
  config?: string | Uint8Array;
  /** Pool file size, bytes or "16M" (default 16 MiB). */
  poolSize?: number | string;
  /** Bytes per buffer (default 2048): also the most one recv() puts in one slot. */
  bufSize?: number;
  /** RX ring slots (default 64). */
  slots?: number;
  persist?: PersistMode;
  /** Where the temporary pool's directory goes (default /dev/shm, emulated NVMM, else the system temp directory). */
  dir?: string;
}

export interface SendOptions {
  /**
   * Where the bytes are cut into separate receives: a number n cuts them
   * every n bytes, a list cuts at those offsets. Pieces longer than a
   * buffer are cut further, as recv() into a buffer would. Default: one piece.
   */
  split?: number | number[];
  /** "each" (default): every piece is its own batch, as if each recv came after a pause; "one": all in one batch. */
  batch?: "each" | "one";
}

/** A reply that left, the connection it went to, and the send (0-based, over the harness's life) whose batch released it. */
export interface DeliveredReply {
  conn: number;
  data: Buffer;
  send: number;
}

/** The temporary pools of this process: removed at exit if a test did not close its harness. */
const leftovers = new Set<string>();
let exitHook = false;
function removeAtExit(dir: string): void {
  leftovers.add(dir);
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const d of leftovers) rmSync(d, { recursive: true, force: true });
  });
}

/** compileHandler -- a handler source as a compiled module: .ts built in a scratch directory (removed after), else read. */
export async function compileHandler(source: string | Uint8Array): Promise<CompiledHandler> {
  if (typeof source !== "string" || !source.endsWith(".ts")) return Handler.compile(source);
  const scratch = mkdtempSync(join(tmpdir(), "paste-harness-build-"));
  try {
    const wasm = await buildHandler(source, join(scratch, basename(source).replace(/\.ts$/, ".wasm")));
    return Handler.compile(readFileSync(wasm), source);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Connection -- one client connection of a harness. */
export class Connection {
  constructor(readonly harness: Harness, readonly id: number) {}

  /** send -- bytes from this connection, handled and committed before it returns. */
  send(data: string | Uint8Array, o?: SendOptions): this {
    this.harness.send(this.id, data, o);
    return this;
  }

  /** read -- every reply byte this connection got since the last read (a copy). */
  read(): Buffer {
    return this.harness.read(this.id);
  }

  /** text -- read() as latin1 text: byte for byte, whatever the bytes are. */
  text(): string {
    return this.read().toString("latin1");
  }
}

export class Harness {
  /** Handler errors (traps, bad indexes) the runtime contained; the handler kept serving. */
  readonly handlerErrors: Error[] = [];
  /** Every reply that left, in the order it left. */
  readonly delivered: DeliveredReply[] = [];
  /** Told after every batch: crashImages takes its images there. */
  afterBatch: (() => void) | null = null;
  /** After each batch: replies released so far (native count) and delivered.length; crashImages maps crash points with it. */
  readonly batches: { repliesAfter: number; deliveredAfter: number }[] = [];
  #rt: Runtime;
  #sends = 0;
  #nextConn = 1;
  readonly #unread = new Map<number, Buffer[]>();

  /**
   * Use open() (or openHandler); the constructor wraps a runtime someone else
   * owns (crashImages hands one over a recovered image to a check).
   */
  constructor(rt: Runtime, private readonly reopen: (() => Runtime) | null = null, private readonly dir: string | null = null) {
    this.#rt = rt;
  }

  /** open -- the handler on a fresh temporary pool, recovered and initialised (on_init, an empty replay). */
  static async open(o: HarnessOptions): Promise<Harness> {
    const compiled = await compileHandler(o.handler);
    const parent = o.dir ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());
    const dir = mkdtempSync(join(parent, "paste-harness-"));
    removeAtExit(dir);
    const path = join(dir, "test.pool");
    let h: Harness | null = null;
    try {
      const size = typeof o.poolSize === "string" ? parseSize(o.poolSize, "poolSize") : o.poolSize ?? 16 << 20;
      Pool.create(path, { size, bufSize: o.bufSize, slots: o.slots ?? 64, persist: o.persist });
      const config = typeof o.config === "string" ? new TextEncoder().encode(o.config) : o.config;
      const ro: RuntimeOptions = { handler: compiled, persist: o.persist, handlerName: compiled.label, config: config && checkConfig(config),
        onHandlerError: (e) => h?.handlerErrors.push(e) };
      h = new Harness(Runtime.open(path, ro), () => Runtime.open(path, ro), dir);
      return h;
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      leftovers.delete(dir);
      throw e;
    }
  }

  /** runtime -- the Runtime serving now (stats, trim, pressure); a new one after each restart. */
  get runtime(): Runtime {
    return this.#rt;
  }

  /** recovery -- what the last open found: records, a torn tail, records replayed. */
  get recovery(): RecoveryReport {
    return this.#rt.recovery;
  }

  /** poolPath -- the temporary pool file. */
  get poolPath(): string {
    return this.#rt.pool.path;
  }

  stats(): RuntimeStats {
    return this.#rt.stats();
  }

  /** connect -- a new connection (the mem port's connections need no handshake). */
  connect(): Connection {
    return new Connection(this, this.#nextConn++);
  }

  /** send -- conn's bytes into RX slots, cut as asked; each batch runs and commits; the replies are kept for read(). */
  send(conn: number, data: string | Uint8Array, o: SendOptions = {}): void {
    const bytes = typeof data === "string" ? Buffer.from(data, "latin1") : data;
    const pieces = cut(bytes, o.split, this.#rt.pool.bufSize);
    let pending = 0;
    for (const piece of pieces) {
      if (!this.#rt.memRequest(piece, conn)) {
        // ring, pool or log full: what is in the ring goes first, then the cleaner gets its turn
        if (pending) this.#runBatch();
        else this.#rt.clean();
        pending = 0;
        if (!this.#rt.memRequest(piece, conn)) {
          throw new PoolFullError(`the harness's pool has no room for another request (${this.#rt.stats().freeBuffers} free buffers, ` +
            `log ${this.#rt.stats().logUsed} of ${this.#rt.stats().logCapacity} bytes): trim, or open it with a larger poolSize`);
        }
      }
      pending++;
      if (o.batch !== "one") {
        this.#runBatch();
        pending = 0;
      }
    }
    if (pending) this.#runBatch();
    this.#sends++;
  }

  /** #runBatch -- one batch: on_rx, commit, then the replies that left, kept per connection. */
  #runBatch(): void {
    this.#rt.runBatch();
    for (const r of this.#rt.takeReplies()) {
      this.delivered.push({ conn: r.conn, data: r.data, send: this.#sends });
      const q = this.#unread.get(r.conn) ?? [];
      q.push(r.data);
      this.#unread.set(r.conn, q);
    }
    this.batches.push({ repliesAfter: this.#rt.stats().replies, deliveredAfter: this.delivered.length });
    this.afterBatch?.();
  }

  /** read -- conn's reply bytes since the last read. */
  read(conn: number): Buffer {
    const q = this.#unread.get(conn) ?? [];
    this.#unread.delete(conn);
    return Buffer.concat(q);
  }

  /** records -- the payload of every live record in the log, oldest first (copies). */
  records(): Buffer[] {
    return Array.from(walkLog(this.#rt.pool), (r) => r.data);
  }

  /**
   * restart -- close the pool and open it again: recovery, on_init, every
   * live record to on_replay, as after a restart of the host. clean: false
   * closes it as a killed process would (the last batch is committed either
   * way: a send returns after its commit). Connections go on with new state
   * in the handler, as clients that reconnected. The new recovery report.
   */
  restart(o: { clean?: boolean } = {}): RecoveryReport {
    if (!this.reopen) throw new Error("this harness wraps a runtime it does not own: it cannot restart it");
    if (o.clean === false) this.#rt.pool.close({ clean: false });
    else this.#rt.close();
    this.#rt = this.reopen();
    return this.#rt.recovery;
  }

  /** close -- close the runtime and remove the temporary pool. */
  close(): void {
    if (!this.dir) return;
    try {
      this.#rt.close();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
      leftovers.delete(this.dir);
    }
  }
}

/** cut -- the pieces a send arrives in: at the offsets asked, then at most a buffer each. */
function cut(bytes: Uint8Array, split: number | number[] | undefined, bufSize: number): Uint8Array[] {
  let at: number[] = [];
  if (typeof split === "number") {
    if (!(split >= 1)) throw new RangeError(`split: ${split} is not a piece length (1 or more bytes)`);
    for (let i = split; i < bytes.length; i += split) at.push(i);
  } else if (split) at = [...split].filter((i) => i > 0 && i < bytes.length).sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const end of [...at, bytes.length]) {
    for (; from < end; from = Math.min(end, from + bufSize)) pieces.push(bytes.subarray(from, Math.min(end, from + bufSize)));
  }
  if (pieces.length === 0) throw new RangeError("send: no bytes to send");
  return pieces;
}

/** openHandler -- Harness.open with a handler and options: the usual way in. */
export function openHandler(handler: string | Uint8Array, o: Omit<HarnessOptions, "handler"> = {}): Promise<Harness> {
  return Harness.open({ ...o, handler });
}

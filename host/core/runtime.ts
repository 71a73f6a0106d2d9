// runtime.ts -- a pool, a handler and the data path, put together.
//
// open():  validate + lock the pool, recover (walk the log, cut a torn tail,
//          rebuild the free list), map the window, load the handler, call
//          on_init, then replay every live record to on_replay, in order.
// batch:   a port fills RX slots -> on_rx(ring) -> take the slots back ->
//          commit (fence, tail) -> only then the batch's replies leave.
//
// Per batch the host makes a handful of native calls and one Wasm call; per
// record it does nothing: the handler's log() goes straight to C.

import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { HandlerError, HandlerMemoryError, PasteError, PoolClosedError } from "./errors.js";
import { Handler, type CompiledHandler, type LogLevel } from "./handler.js";
import { CONST, type PersistMode } from "./layout.js";
import { CommitLatency, type CommitLatencySample } from "./latency.js";
import { check, native } from "./native.js";
import { Pool, type CreateOptions } from "./pool.js";
import { spaceOf, type Space } from "./space.js";
import { listenOn, type EngineChoice, type PortEngine } from "./tcp.js";
import { createHandlerMemory, HANDLER_BASE, WASM_PAGE, type Window } from "./window.js";

/** Which handler export is running: what the watchdog reports when one runs too long. */
export type HandlerPhase = "on_init" | "on_replay" | "on_rx" | "on_close" | "on_clean";

export interface RuntimeOptions {
  /** Handler .wasm path or bytes, or a module Handler.compile made (to open many pools with one, as crashtest does). */
  handler: string | Uint8Array | CompiledHandler;
  /** Override the pool's persistence mode. */
  persist?: PersistMode;
  /** Create the pool with these options if the file does not exist. */
  create?: CreateOptions;
  /**
   * Run under the persistence simulator (crash testing): power fails at
   * persist step crashAt (0: never); with capture, the image of each of those
   * steps (ascending) is kept instead, with its seed's evictions, and the run
   * goes on (native paste_sim_take rebuilds them one by one).
   */
  simulate?: { crashAt: number; seed: number; image: string; capture?: { steps: BigUint64Array; seeds: BigUint64Array } };
  /** Called for each handler error (trap, bogus index); the runtime keeps going. Default: logged to stderr. */
  onHandlerError?: (e: Error) => void;
  /** Name for messages (default: the path, or "handler"). */
  handlerName?: string;
  /**
   * A memory from createHandlerMemory to install the handler into, zeroed
   * first, instead of a new one: for a tool that opens pool after pool in one
   * process (crashtest), where making a 4 GiB memory each time costs
   * milliseconds and garbage. Nothing else may use it meanwhile.
   */
  memory?: WebAssembly.Memory;
  /** Heap bytes above HANDLER_BASE (default: the rest of wasm32, 2 GiB). A handler that fills it is stopped. */
  memoryLimit?: number;
  /** Told when a handler call starts (its phase) and ends (null): the watchdog's view of the data path. */
  watch?: (phase: HandlerPhase | null) => void;
  /**
   * Asked after a trap: true stops the handler once its batch is finished
   * (runBatch/pollTcp throw the trap) so the caller can replace it; false
   * (default) serves on with the trapping requests dropped.
   */
  stopOnTrap?: () => boolean;
  /** Where the handler's trace() messages go (rate-limited by the host). */
  onTrace?: (level: LogLevel, message: string) => void;
  /** The handler's config (config.ts): what it reads in on_init; default none. */
  config?: Uint8Array;
}

/** A handler made ready to take over: compiled, its memory made, the window mapped into it. */
export interface PreparedHandler {
  compiled: CompiledHandler;
  window: Window;
  config?: Uint8Array;
}

export type { TakeoverReport, RecoveryReport, BatchResult, RuntimeStats, Reply, BusyPoll } from "./reports.js";
import type { RecoveryReport, BatchResult, RuntimeStats, Reply, TakeoverReport, BusyPoll } from "./reports.js";

const num = (v: number | bigint) => Number(v);

export class Runtime {
  readonly recovery: RecoveryReport;
  readonly handlerErrors: Error[] = [];
  /** The handler serving now and the memory its window is in; both change on a deploy. */
  window!: Window;
  handler!: Handler;
  /** Set by attach(): what the takeover of a terminated worker dropped. */
  takeover?: TakeoverReport;
  #ring = 0;
  /** The native worker this runtime's handler runs on (paste_worker_bind); null once closed. */
  #worker: unknown = null;
  #commits = new CommitLatency();
  #replyBuf = Buffer.alloc(1 << 20);
  readonly #watch: (phase: HandlerPhase | null) => void;
  readonly #onHandlerError: (e: Error) => void;
  /** A trap that stops the handler once the batch is over (stopOnTrap). */
  #stopWith: PasteError | null = null;

  private constructor(
    readonly pool: Pool,
    recovery: RecoveryReport,
    private readonly o: RuntimeOptions,
  ) {
    this.recovery = recovery;
    this.#watch = o.watch ?? (() => {});
    this.#onHandlerError = o.onHandlerError ?? ((e: Error) => console.error(`paste-host: ${(e as PasteError).code ?? "error"}: ${e.message}`));
  }

  static open(path: string, o: RuntimeOptions): Runtime {
    if (o.create && !existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true });
      Pool.create(path, o.create);
    }
    const pool = Pool.open(path, { persist: o.persist });
    try {
      const n = native();
      if (o.simulate) {
        const { crashAt, seed, image, capture } = o.simulate;
        check(n.simEnable(pool.handle, crashAt, seed, image));
        if (capture) check(n.simCapture(pool.handle, capture.steps, capture.seeds, capture.steps.length));
      }
      const rec: Record<string, number | bigint> = {};
      check(n.poolRecover(pool.handle, rec));
      const report: RecoveryReport = {
        records: num(rec.records), bytes: num(rec.bytes), firstSeq: num(rec.first_seq), lastSeq: num(rec.last_seq),
        nextSeq: num(rec.next_seq), corrupt: num(rec.corrupt), firstCorruptSeq: num(rec.first_corrupt_seq),
        skipped: num(rec.skipped), torn: rec.torn === 1, tornPos: num(rec.torn_pos), discarded: num(rec.discarded),
        wasClean: rec.was_clean === 1, liveBuffers: num(rec.live_bufs), freeBuffers: num(rec.free_bufs),
        beyondTail: num(rec.beyond_tail), replayed: 0,
      };
      const rt = new Runtime(pool, report, o);
      report.replayed = rt.#install(o.handler, o.handlerName);
      return rt;
    } catch (e) {
      pool.close({ clean: false });
      throw e;
    }
  }

  /**
   * attach -- take over the pool, port and connections of a worker thread
   * that was terminated (a handler over its time budget or out of memory):
   * the cut-off batch is dropped (native paste_worker_takeover: uncommitted,
   * so never acknowledged), then the given handler is installed and replays
   * the log as at open. Every committed record and every other connection
   * stays. recovery is the report of the original open, kept for status.
   */
  static attach(path: string, o: RuntimeOptions, recovery: RecoveryReport): Runtime {
    const pool = Pool.attach(path);
    const dropped = [0];
    const closed = [0];
    check(native().workerTakeover(pool.handle, 0, dropped, closed));
    const rt = new Runtime(pool, { ...recovery }, o);
    rt.takeover = { dropped: Number(dropped[0]), closed: Number(closed[0]) };
    rt.recovery.replayed = rt.#install(o.handler, o.handlerName);
    return rt;
  }

  /** #install -- prepare and activate a handler: the start-up path. Returns the records replayed. */
  #install(source: string | Uint8Array | CompiledHandler, name?: string): number {
    return this.#activate(this.prepareHandler(source, name, this.o.config));
  }

  /**
   * prepareHandler -- the slow part of installing a handler, done while the
   * current one still serves: validate and compile the module, make its
   * memory, map the pool window into it (beside the current window). Nothing
   * runs yet. Hand it to replaceHandler, or to discardHandler.
   */
  prepareHandler(source: string | Uint8Array | CompiledHandler, name?: string, config?: Uint8Array): PreparedHandler {
    const compiled = typeof source === "string" || source instanceof Uint8Array ? Handler.compile(source, name) : source;
    const heapPages = this.o.memoryLimit ? Math.max(1, Math.ceil(this.o.memoryLimit / WASM_PAGE)) : undefined;
    // the given memory serves the first handler; a deploy's next one, beside it, gets its own
    let memory = this.pool.window ? undefined : this.o.memory;
    if (memory) check(native().memZero(memory.buffer, 0, memory.buffer.byteLength));
    else memory = createHandlerMemory(heapPages, { fixed: true });
    return { compiled, window: this.pool.mapWindow(memory), config };
  }

  /** discardHandler -- give up a prepared handler: its window is unmapped. */
  discardHandler(p: PreparedHandler): void {
    this.pool.unmapWindow(p.window);
  }

  /**
   * #activate -- bind the native imports to a prepared handler's memory,
   * instantiate it, on_init, replay every live record. On failure its window
   * is unmapped; the caller rebinds whatever was bound before.
   */
  #activate(p: PreparedHandler): number {
    const n = native();
    const { memory } = p.window;
    try {
      this.#bind(memory);
      // its start function may call the imports: they act on the entered worker
      const handler = this.#entered(() => Handler.instantiate(p.compiled, memory, { onTrace: this.o.onTrace, config: p.config }));
      this.#ring = num(check(num(n.workerRxRing(this.#worker))));
      this.window = p.window;
      this.handler = handler;
      this.#call("on_init");
      return this.#replay();
    } catch (e) {
      this.pool.unmapWindow(p.window);
      throw e;
    }
  }

  /**
   * replaceHandler -- a deploy: a prepared handler (prepareHandler) is bound,
   * rebuilds its state from the live log (on_init, on_replay), and only then
   * takes over. Called between batches, so every request is handled by
   * exactly one of the two. On any failure the old handler is bound again with
   * its state untouched, and whatever the new one appended is discarded:
   * nothing changed. Returns the records replayed.
   */
  replaceHandler(next: PreparedHandler): number {
    const n = native();
    const old = { window: this.window, handler: this.handler };
    try {
      const replayed = this.#activate(next);
      this.pool.unmapWindow(old.window);
      return replayed;
    } catch (e) {
      n.logDiscard(this.pool.handle);
      this.window = old.window;
      this.handler = old.handler;
      this.#bind(old.window.memory);
      throw e;
    }
  }

  /** #bind -- worker 0 of the pool, bound to a handler memory (the window is mapped into it). */
  #bind(memory: WebAssembly.Memory): void {
    const out = [null];
    check(native().workerBind(this.pool.handle, 0, memory.buffer, memory.buffer.byteLength, out));
    this.#worker = out[0];
  }

  /** #w -- the native worker; PoolClosedError (PASTE_ERR_CLOSED) once the runtime is closed. */
  get #w(): unknown {
    if (this.#worker === null) throw new PoolClosedError(`runtime for ${this.pool.path} is closed`);
    return this.#worker;
  }

  /**
   * #entered -- run f with this runtime's worker entered: the handler's
   * imports act on it for that long, and on no worker after (so two runtimes
   * in one thread never reach each other's pool).
   */
  #entered<T>(f: () => T): T {
    const n = native();
    check(n.workerEnter(this.#w, 0));
    try {
      return f();
    } finally {
      n.workerLeave();
    }
  }

  /**
   * #call -- one handler export, under the watchdog's eye, with the worker
   * entered. A handler with a cleaner (on_clean) has a reserve of buffers and
   * log room that only on_clean may log into.
   */
  #call(fn: HandlerPhase, arg?: number): void {
    const n = native();
    const reserve = this.handler.exports.on_clean ? CONST.PASTE_ENTER_RESERVE : 0;
    check(n.workerEnter(this.#w, reserve | (fn === "on_clean" ? CONST.PASTE_ENTER_CLEAN : 0)));
    this.#watch(fn);
    try {
      this.handler.call(fn, arg);
    } finally {
      this.#watch(null);
      n.workerLeave();
    }
  }

  /**
   * #outOfMemory -- after a trap: has the handler touched (nearly) all of its
   * heap? Allocators trap (unreachable) when memory.grow fails, which looks
   * like any other trap; resident pages tell them apart. A handler out of
   * memory cannot be trusted with the next request, so it is stopped.
   */
  #outOfMemory(): boolean {
    const buf = this.window.memory.buffer;
    const heap = buf.byteLength - HANDLER_BASE;
    const resident = num(native().memResident(buf, HANDLER_BASE, heap));
    return resident >= 0.9 * heap;
  }

  /** #replay -- every live record, in order, to on_replay; bytes in place. */
  #replay(): number {
    const n = native();
    if (!this.handler.exports.on_replay) return 0;
    check(n.walkBegin(this.pool.handle));
    let count = 0;
    for (;;) {
      const addr = num(check(num(n.workerReplayNext(this.#w))));   // skips records recovery reported corrupt
      if (addr === 0) return count;
      this.#call("on_replay", addr);
      this.window.verify();
      count++;
    }
  }

  #handlerError(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.handlerErrors.push(err);
    this.#onHandlerError(err);
  }

  /** #trapped -- report a trap; one from running out of memory stops the handler (HandlerMemoryError). */
  #trapped(e: PasteError): void {
    if (this.#outOfMemory()) {
      const limit = this.window.memory.buffer.byteLength - HANDLER_BASE;
      throw new HandlerMemoryError(`handler ${this.handler.name} ran out of its ${limit / (1 << 20)} MiB heap ` +
        `(--memory-limit): ${e.message}`, { cause: e });
    }
    this.#handlerError(e);
    if (this.o.stopOnTrap?.()) this.#stopWith ??= e;
  }

  /** #stopIfAsked -- after a batch (or an on_close) is whole: throw the trap that stops the handler. */
  #stopIfAsked(): void {
    const e = this.#stopWith;
    if (!e) return;
    this.#stopWith = null;
    throw e;
  }

  /** runBatch -- hand the filled RX slots to on_rx, take them back, commit, release replies. */
  runBatch(): number {
    const n = native();
    const w = this.#w;
    let trapped = false;
    try {
      this.#call("on_rx", this.#ring);
    } catch (e) {
      if (!(e instanceof PasteError)) throw e;
      this.#trapped(e);
      trapped = true;   // its unreleased requests are dropped, not offered again: a poison request must not loop
    }
    const before = this.window.memory.buffer.byteLength;
    this.window.verify();
    if (this.window.memory.buffer.byteLength !== before) n.workerMemLen(w, this.window.memory.buffer.byteLength);
    const released = n.rxRelease(w, trapped ? 1 : 0);
    if (released < 0) this.#handlerError(new HandlerError(n.lastError()));
    const t0 = process.hrtime.bigint();
    const replies = num(check(num(n.commit(w))));
    this.#commits.record(Number(process.hrtime.bigint() - t0));
    this.#stopIfAsked();   // committed, replies out: nothing of this batch is cut off
    this.clean();
    return replies;
  }

  /**
   * clean -- if the handler has a cleaner and the pool is under pressure
   * (free buffers below a quarter, the log over half full, or the reserve
   * reached), one bounded on_clean, then a commit so that what it moved is
   * durable (its next call trims behind it). The host calls it after every
   * batch and whenever a poll brings nothing, so cleaning goes on when no
   * request can arrive. Returns true if on_clean ran.
   */
  clean(): boolean {
    if (!this.handler.exports.on_clean) return false;
    const n = native();
    const w = this.#w;
    const flags = check(n.poolPressureFlags(this.pool.handle));
    const due = CONST.PASTE_PRESSURE_BUFS | CONST.PASTE_PRESSURE_LOG | CONST.PASTE_PRESSURE_FULL;
    if (!(flags & due)) return false;
    try {
      this.#call("on_clean");
    } catch (e) {
      if (!(e instanceof PasteError)) throw e;
      this.#trapped(e);
    }
    this.window.verify();
    check(num(n.commit(w)));
    this.#stopIfAsked();
    return true;
  }

  /** pressure -- the pool's space now: free buffers, log room, the reserve kept for the cleaner. */
  pressure(): { freeBuffers: number; buffers: number; reserveBuffers: number; flags: number; logUsed: number;
    logCapacity: number; logReserve: number; liveBuffers: number; ringBuffers: number } {
    const p: Record<string, number | bigint> = {};
    check(native().poolPressure(this.pool.handle, p));
    return {
      freeBuffers: num(p.free_bufs), buffers: num(p.nbufs), reserveBuffers: num(p.reserve_bufs), flags: num(p.flags),
      logUsed: num(p.log_used), logCapacity: num(p.log_capacity), logReserve: num(p.log_reserve),
      liveBuffers: num(p.live_bufs), ringBuffers: num(p.ring_bufs),
    };
  }

  /** space -- where the pool's bytes are: buffers by state, live and unused bytes, amplification (space.ts). */
  space(s: RuntimeStats = this.stats()): Space {
    return spaceOf({
      bufSize: this.pool.bufSize, buffers: this.pool.buffers, freeBuffers: s.freeBuffers, ringBuffers: s.ringBuffers,
      liveBuffers: s.liveBuffers, holdBuffers: s.holdBuffers, liveBytes: s.logBytes, logUsed: s.logUsed,
    });
  }

  /** memBatch -- one batch from the mem port: up to max requests of size bytes over conns connections. */
  memBatch(size: number, max = 1 << 30, conns = 1): BatchResult {
    const filled = check(native().memFill(this.#w, size, Math.min(max, 0xffffffff), conns));
    if (filled === 0) {
      this.clean();
      return { filled: 0, replies: 0 };
    }
    return { filled, replies: this.runBatch() };
  }

  /** memRequest -- the mem port with given bytes: one request from conn; false when the ring, pool or log is full. */
  memRequest(data: Uint8Array, conn = 1): boolean {
    return check(native().memFillBytes(this.#w, data, data.length, conn)) === 1;
  }

  /** memNativeWal -- the benchmark's Wasm-free baseline: one mem-wal batch done by a C loop; requests handled. */
  memNativeWal(size: number, max: number, conns: number): number {
    return check(native().memNativeWal(this.#w, size, max, conns));
  }

  /** takeReplies -- the replies the mem port "sent", oldest first (copies). */
  takeReplies(): Reply[] {
    const out: Reply[] = [];
    const n = native();
    const w = this.#w;
    for (;;) {
      const got = num(check(num(n.memTakeReplies(w, this.#replyBuf, this.#replyBuf.length))));
      if (got === 0) return out;
      for (let off = 0; off < got;) {
        const conn = this.#replyBuf.readUInt32LE(off);
        const len = this.#replyBuf.readUInt32LE(off + 4);
        out.push({ conn, data: Buffer.from(this.#replyBuf.subarray(off + 8, off + 8 + len)) });
        off += 8 + len;
      }
    }
  }

  portEngine: EngineChoice | null = null;   // the TCP port's engine and why: by listen, or port() after an attach
  /** listen -- open the TCP port on host:port (0: any free port) with the engine asked for (tcp.ts); the port bound. */
  listen(host: string, port: number, engine?: PortEngine): number {
    this.portEngine = listenOn(this.#w, host, port, engine);
    return this.port();
  }

  /**
   * busyPoll -- how long a TCP poll spins before it sleeps (native/busypoll.c),
   * set to budgetUs if given (0: never spin), and the polls that spun and the
   * spins that found work since listen.
   */
  busyPoll(budgetUs?: number): BusyPoll {
    const spins = [0], hits = [0];
    const us = check(native().tcpBusyPoll(this.#w, budgetUs ?? -1, spins, hits));
    return { budgetUs: us, spins: Number(spins[0]), hits: Number(hits[0]) };
  }

  /** port -- the TCP port bound (also after attach, which finds it listening). */
  port(): number {
    const port = check(native().tcpPort(this.#w));
    this.portEngine ??= { engine: native().tcpEngine(this.#w) as string, reason: "attached" };
    return port;
  }

  /**
   * quiesce -- on: read only from connections whose handler holds a request
   * half received, so a deploy can swap handlers where none is; the number of
   * such connections left. off: read from every connection again.
   */
  quiesce(on: boolean): number {
    return check(native().tcpQuiesce(this.#w, on ? 1 : 0));
  }

  #closed = new Uint32Array(1024);

  /**
   * pollTcp -- one turn of the TCP port: wait up to timeoutMs, recv into RX
   * slots, run the batch if anything arrived, tell the handler about closed
   * connections. Returns the requests received.
   */
  pollTcp(timeoutMs: number): number {
    const n = native();
    const w = this.#w;
    const filled = check(n.tcpPoll(w, timeoutMs));
    if (filled > 0) this.runBatch();
    else this.clean();   // nothing arrived (maybe because the pool is full): the cleaner still runs
    for (;;) {
      const k = n.tcpTakeClosed(w, this.#closed, this.#closed.length);
      if (k <= 0) break;
      for (let i = 0; i < k; i++) {
        const conn = this.#closed[i];
        try {
          this.#call("on_close", conn);
        } catch (e) {
          if (!(e instanceof PasteError)) throw e;
          this.#trapped(e);
        }
        check(n.tcpCloseConn(w, conn));   // drops whatever the handler still holds for it
        this.#stopIfAsked();
      }
      this.window.verify();
    }
    return filled;
  }

  /** backpressured -- the last poll stopped reading: no free slot or buffer until the handler trims. */
  get backpressured(): boolean {
    return native().tcpBlocked(this.#w) === 1;
  }

  /** stopAccepting -- close the listener (connections stay) for a clean shutdown. */
  stopAccepting(): void {
    check(native().tcpStopAccepting(this.#w));
  }

  connections(): { open: number; accepted: number } {
    const open = [0], accepted = [0];
    check(native().tcpStats(this.#w, open, accepted));
    return { open: Number(open[0]), accepted: Number(accepted[0]) };
  }

  /** takeCommitLatency -- the batch commits since the last call: buckets, percentiles, mean and max; resets. */
  takeCommitLatency(): CommitLatencySample {
    return this.#commits.take();
  }

  /** trim -- release every committed record up to seq; records released. */
  trim(seq: number): number {
    if (!(seq >= 1)) return 0;   // nothing below seq 1; a negative would wrap to "everything" in uint64
    return num(check(num(native().trim(this.pool.handle, Math.floor(seq)))));
  }

  stats(): RuntimeStats {
    const s: Record<string, number | bigint> = {};
    check(native().poolStats(this.pool.handle, s));
    return {
      records: num(s.records), payloadBytes: num(s.payload_bytes), batches: num(s.batches),
      payloadCopies: num(s.payload_copies), replies: num(s.replies), replyBytes: num(s.reply_bytes),
      trimmed: num(s.trimmed), handlerErrors: num(s.handler_errors), nextSeq: num(s.next_seq),
      committedSeq: num(s.committed_seq), logUsed: num(s.log_used), logCapacity: num(s.log_capacity),
      freeBuffers: num(s.free_bufs), liveBuffers: num(s.live_bufs), logBytes: num(s.log_bytes),
      holdBuffers: num(s.hold_bufs), ringBuffers: num(s.ring_bufs), refused: num(s.refused),
    };
  }

  /** close -- finish the batch in flight (commit), unmap, mark the pool clean. Every later call is PASTE_ERR_CLOSED. */
  close(): void {
    this.#worker = null;
    this.pool.close({ clean: true });
  }
}

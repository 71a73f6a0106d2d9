// handler.ts -- loading a handler module into the host-created memory.
//
// The module's imports are the native functions themselves (koffi functions
// are plain JS functions): a handler's log() is one Wasm -> C transition with
// no JS in between. `abort` becomes a HandlerTrapError carrying the handler's
// message, file and line. `trace` is the one import written in JS: it is for
// diagnostics, off the request path, and it needs the host's logger and a
// rate limit per handler (a token bucket), so a chatty handler cannot flood
// the host's logs.

import * as loader from "@assemblyscript/loader";
import { readFileSync } from "node:fs";
import { configImport } from "./config.js";
import { HandlerError, HandlerInvalidError, HandlerTrapError } from "./errors.js";
import { native } from "./native.js";
import { inspectHandler, type HandlerInfo } from "./validate.js";

export { ABI_VERSION, ALLOWED_IMPORTS } from "./validate.js";

/** The exports a handler has; the optional ones may be missing. */
export interface HandlerExports {
  paste_abi_version(): number;
  on_rx(ring: number): void;
  on_replay?(rec: number): void;
  on_init?(): void;
  on_close?(conn: number): void;
  on_clean?(): void;
  /** The SDK's end of a call (assembly/abi.ts): hold what streams still need, hand over the gathered replies. */
  paste_end?(ok: number): void;
  [name: string]: unknown;
}

/** readAsString -- an AssemblyScript string (UTF-16, byte length at ptr - 4), copied out. */
export function readAsString(memory: WebAssembly.Memory, ptr: number): string {
  ptr >>>= 0;
  if (ptr < 4 || ptr >= memory.buffer.byteLength) return "";
  const len = new DataView(memory.buffer).getUint32(ptr - 4, true);
  if (ptr + len > memory.buffer.byteLength) return "";
  return Buffer.from(memory.buffer, ptr, len).toString("utf16le");
}

/** wasmFrame -- the innermost Wasm frame of a stack: function index and offset. */
function wasmFrame(stack: string | undefined): { fn: string; at: string } | null {
  const m = /wasm-function\[(\d+)\]:(0x[0-9a-f]+)/.exec(stack ?? "");
  return m ? { fn: m[1], at: m[2] } : null;
}

/** describeTrap -- a handler error from whatever the Wasm call threw. */
export function describeTrap(name: string, e: unknown): Error {
  if (e instanceof HandlerTrapError) return e;
  if (e instanceof WebAssembly.RuntimeError) {
    const frame = wasmFrame(e.stack);
    const where = frame ? ` in wasm function ${frame.fn} at ${frame.at}` : "";
    const err = new HandlerTrapError(`handler ${name} trapped: ${e.message}${where}`, { cause: e });
    err.detail = { trap: e.message, function: frame?.fn, offset: frame?.at };
    return err;
  }
  return e as Error;
}

// ------------------------------------------------------------------ trace

/** How severe a log line is: the host's logger and a handler's trace() share these. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "fatal";

/** A handler may trace a burst of TRACE_BURST messages, then TRACE_RATE per second. */
export const TRACE_BURST = 100;
export const TRACE_RATE = 20;
/** The longest message passed on, in UTF-8 bytes, the ellipsis included. */
export const TRACE_MAX_BYTES = 1024;
/** trace's level numbers (assembly/index.ts TraceLevel); any other number is "info". */
export const TRACE_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/**
 * TraceLimiter -- a token bucket: `burst` tokens to start, `rate` more per
 * second up to `burst`, one per message. A refused message is only counted,
 * so a handler tracing in a loop costs the host a clock read and a compare.
 */
export class TraceLimiter {
  #tokens: number;
  #last: number;
  #dropped = 0;

  constructor(
    /** The clock, in milliseconds (tests pass their own). */
    readonly now: () => number = () => performance.now(),
    readonly burst = TRACE_BURST,
    readonly rate = TRACE_RATE,
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** take -- may one more message go out now? A refusal is counted. */
  take(): boolean {
    const t = this.now();
    // max(0, ...): a clock that steps back must not drain the bucket
    this.#tokens = Math.min(this.burst, this.#tokens + (Math.max(0, t - this.#last) * this.rate) / 1000);
    this.#last = t;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    this.#dropped++;
    return false;
  }

  /** dropped -- messages refused since the last takeDropped(). */
  get dropped(): number {
    return this.#dropped;
  }

  /** takeDropped -- the count of refused messages, and start counting again. */
  takeDropped(): number {
    const n = this.#dropped;
    this.#dropped = 0;
    return n;
  }
}

/** decodeTrace -- a trace message's UTF-8 bytes as text, cut to TRACE_MAX_BYTES with an ellipsis. */
export function decodeTrace(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);   // a view, not a copy
  if (b.length <= TRACE_MAX_BYTES) return b.toString("utf8");
  let cut = TRACE_MAX_BYTES - 3;                  // room for the ellipsis, 3 bytes in UTF-8
  while (cut > 0 && (b[cut] & 0xc0) === 0x80) cut--;   // never cut inside a character
  return `${b.toString("utf8", 0, cut)}\u2026`;
}

export interface TraceOptions {
  /** Receives each message a handler traces that the rate limit lets through; default: stderr. */
  onTrace?: (level: LogLevel, message: string) => void;
  /** The rate limit's clock, in milliseconds (default performance.now; tests pass their own). */
  now?: () => number;
  /** The handler's config, what paste.config reads (config.ts); default none. */
  config?: Uint8Array;
}

/**
 * traceImport -- paste.trace for one handler: (level, ptr, len) -> 0 logged,
 * 1 dropped by the rate limit, Err.HANDLER (-16) for a range outside memory.
 */
function traceImport(memory: WebAssembly.Memory, limiter: TraceLimiter, onTrace: (level: LogLevel, message: string) => void) {
  const outOfRange = HandlerError.native!;
  return (level: number, ptr: number, len: number): number => {
    ptr >>>= 0;   // usize and u32 arrive as signed i32
    len >>>= 0;
    const buf = memory.buffer;   // read each call: a grow replaces the buffer
    if (ptr + len > buf.byteLength) return outOfRange;
    if (!limiter.take()) return 1;
    const dropped = limiter.takeDropped();
    if (dropped) onTrace("warn", `${dropped} trace messages dropped (rate limit ${limiter.rate}/s, burst ${limiter.burst})`);
    onTrace(TRACE_LEVELS[level >>> 0] ?? "info", decodeTrace(new Uint8Array(buf, ptr, len)));
    return 0;
  };
}

/** A validated, compiled handler module, not yet instantiated (Handler.compile). */
export interface CompiledHandler {
  label: string;
  module: WebAssembly.Module;
  info: HandlerInfo;
}

export class Handler {
  private constructor(
    readonly name: string,
    readonly exports: HandlerExports,
    readonly memory: WebAssembly.Memory,
    /** What validation found: size, sha256, ABI, imports, exports, memory layout. */
    readonly info: HandlerInfo,
    /** The config it was given (empty: none). */
    readonly config: Uint8Array,
  ) {}

  /**
   * load -- validate and instantiate a handler into memory (whose window is
   * mapped). opts.onTrace receives what the handler traces (default: a
   * `paste-host: handler NAME: message` line on stderr).
   */
  static load(source: string | Uint8Array, memory: WebAssembly.Memory, name?: string, opts: TraceOptions = {}): Handler {
    return Handler.instantiate(Handler.compile(source, name), memory, opts);
  }

  /** compile -- read and validate a handler (the slow half of load: compiling the module). */
  static compile(source: string | Uint8Array, name?: string): CompiledHandler {
    const label = name ?? (typeof source === "string" ? source : "handler");
    let bytes: Uint8Array;
    try {
      bytes = typeof source === "string" ? readFileSync(source) : source;
    } catch (cause) {
      throw new HandlerInvalidError(`cannot read handler ${label}: ${(cause as Error).message}`, { cause });
    }
    return { label, ...inspectHandler(bytes, label) };
  }

  /**
   * instantiate -- a compiled handler into memory (whose window is mapped and
   * to which the native imports are bound: its start function may call them).
   */
  static instantiate(compiled: CompiledHandler, memory: WebAssembly.Memory, opts: TraceOptions = {}): Handler {
    const { label, module, info } = compiled;
    const n = native();
    const onTrace = opts.onTrace ??
      ((_level: LogLevel, message: string) => { process.stderr.write(`paste-host: handler ${label}: ${message}\n`); });
    const imports = {
      env: {
        memory,
        abort(msg: number, file: number, line: number, column: number): never {
          const text = readAsString(memory, msg) || "abort";
          const where = readAsString(memory, file);
          // AssemblyScript passes file and line for assert() and its own checks;
          // a bare abort("...") has none, so name the Wasm function instead.
          const frame = wasmFrame(new Error().stack);
          const loc = where ? ` at ${where}:${line}:${column}` : frame ? ` in wasm function ${frame.fn} at ${frame.at}` : "";
          const err = new HandlerTrapError(`handler ${label} aborted: ${text}${loc}`);
          err.detail = { message: text, file: where || undefined, line: where ? line : undefined, column: where ? column : undefined };
          throw err;
        },
        seed: () => Date.now(),
      },
      paste: {
        log: n.hLog,
        log_copy: n.hLogCopy,
        log_copy_extents: n.hLogCopyExtents,
        log_extents: n.hLogExtents,
        reply: n.hReply,
        replies: n.hReplies,
        reply_ref: n.hReplyRef,
        hold: n.hHold,
        unhold: n.hUnhold,
        close: n.hClose,
        trim: n.hTrim,
        committed: n.hCommitted,
        error: n.hError,
        pressure: n.hPressure,
        log_pack: n.hLogPack,
        use_reserve: n.hUseReserve,
        trace: traceImport(memory, new TraceLimiter(opts.now), onTrace),
        config: configImport(memory, opts.config ?? new Uint8Array(0)),
      },
    };
    let exports: HandlerExports;
    try {
      exports = loader.instantiateSync(module, imports as never).exports as unknown as HandlerExports;
    } catch (e) {
      if (e instanceof WebAssembly.LinkError) {
        throw new HandlerInvalidError(`${label} cannot be linked: ${e.message}`, { cause: e });
      }
      throw describeTrap(label, e);
    }
    return new Handler(label, exports, memory, info, opts.config ?? new Uint8Array(0));
  }

  /** call -- run one export, turning traps into HandlerTrapError. */
  call<K extends "on_rx" | "on_replay" | "on_init" | "on_close" | "on_clean">(fn: K, arg?: number): void {
    const f = this.exports[fn] as ((a?: number) => void) | undefined;
    if (!f) return;
    const end = this.exports.paste_end;   // modules built before it have none: they reply and hold as they go
    try {
      f(arg);
      end?.(1);
    } catch (e) {
      try {
        end?.(0);   // the replies made before the trap still go, as they did when each was its own import call
      } catch {
        // the handler's memory is past saving: the trap that brought us here is what counts
      }
      throw describeTrap(this.name, e);
    }
  }
}

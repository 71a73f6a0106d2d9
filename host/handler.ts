// handler.ts -- loading a handler module into the host-created memory.
//
// The module's imports are the native functions themselves (koffi functions
// are plain JS functions): a handler's log() is one Wasm -> C transition with
// no JS in between. `abort` becomes a HandlerTrapError carrying the handler's
// message, file and line.

import * as loader from "@assemblyscript/loader";
import { readFileSync } from "node:fs";
import { HandlerInvalidError, HandlerTrapError } from "./errors.js";
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

export class Handler {
  private constructor(
    readonly name: string,
    readonly exports: HandlerExports,
    readonly memory: WebAssembly.Memory,
    /** What validation found: size, sha256, ABI, imports, exports, memory layout. */
    readonly info: HandlerInfo,
  ) {}

  /** load -- validate and instantiate a handler into memory (whose window is mapped). */
  static load(source: string | Uint8Array, memory: WebAssembly.Memory, name?: string): Handler {
    const label = name ?? (typeof source === "string" ? source : "handler");
    let bytes: Uint8Array;
    try {
      bytes = typeof source === "string" ? readFileSync(source) : source;
    } catch (cause) {
      throw new HandlerInvalidError(`cannot read handler ${label}: ${(cause as Error).message}`, { cause });
    }
    const { module, info } = inspectHandler(bytes, label);

    const n = native();
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
        reply_ref: n.hReplyRef,
        hold: n.hHold,
        unhold: n.hUnhold,
        close: n.hClose,
        trim: n.hTrim,
        committed: n.hCommitted,
        error: n.hError,
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
    return new Handler(label, exports, memory, info);
  }

  /** call -- run one export, turning traps into HandlerTrapError. */
  call<K extends "on_rx" | "on_replay" | "on_init" | "on_close">(fn: K, arg?: number): void {
    const f = this.exports[fn] as ((a?: number) => void) | undefined;
    if (!f) return;
    try {
      f(arg);
    } catch (e) {
      throw describeTrap(this.name, e);
    }
  }
}

// validate.ts -- is this file a handler this host can run? Checked before
// anything changes (before a pool is touched or a running handler replaced),
// each refusal naming the problem.
//
//   size        at most MAX_HANDLER_BYTES
//   format      a WebAssembly module that compiles (not truncated, not garbage)
//   memory      imports env.memory and defines none of its own; every static
//               data segment lies at or above HANDLER_BASE (2 GiB), so nothing
//               the module brings overlaps the pool window below it
//   imports     only the host's (env.memory, env.abort, env.seed, paste.*)
//   exports     paste_abi_version and on_rx
//   ABI         paste_abi_version() returns the host's ABI version (the module
//               is instantiated in a scratch memory with imports that refuse
//               to run, so nothing it does at start can reach a pool)

import { createHash } from "node:crypto";
import { HandlerInvalidError } from "./errors.js";
import { CONST } from "./layout.js";
import { createHandlerMemory } from "./window.js";

export const ABI_VERSION = CONST.PASTE_ABI_VERSION;
export const MAX_HANDLER_BYTES = 16 << 20;

/** Imports a handler may have: everything else is refused before instantiation. */
export const ALLOWED_IMPORTS: Record<string, readonly string[]> = {
  env: ["memory", "abort", "seed"],
  paste: ["log", "log_copy", "log_copy_extents", "log_extents", "reply", "replies", "reply_ref", "hold", "unhold", "close", "trim", "committed",
    "error", "trace", "pressure", "log_pack", "use_reserve", "config"],
};

export interface HandlerInfo {
  name: string;
  size: number;
  sha256: string;
  abi: number;
  imports: string[];
  exports: string[];
  /** Pages the module's env.memory import asks for at least. */
  memoryMinPages: number;
  /** Lowest address of its static data (HANDLER_BASE or above), or null if it has none. */
  dataStart: number | null;
}

/** Reads the parts of the binary the JS API does not expose: memory limits, data offsets. */
class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  u8(): number {
    if (this.pos >= this.b.length) throw new RangeError("unexpected end");
    return this.b[this.pos++];
  }
  uleb(): number {
    let r = 0;
    let shift = 0;
    for (;;) {
      const x = this.u8();
      r += (x & 0x7f) * 2 ** shift;
      if (!(x & 0x80)) return r;
      shift += 7;
    }
  }
  sleb32(): number {
    let r = 0;
    let shift = 0;
    let x: number;
    do {
      x = this.u8();
      r |= (x & 0x7f) << shift;
      shift += 7;
    } while (x & 0x80);
    return shift < 32 && x & 0x40 ? r | (~0 << shift) : r;
  }
  name(): string {
    const n = this.uleb();
    const s = Buffer.from(this.b.subarray(this.pos, this.pos + n)).toString("utf8");
    this.pos += n;
    return s;
  }
  limits(): number {
    const flag = this.u8();
    const min = this.uleb();
    if (flag & 1) this.uleb();
    return min;
  }
}

interface Layout { ownMemory: boolean; memoryMin: number | null; dataOffsets: number[] }

function readLayout(bytes: Uint8Array): Layout {
  const r = new Reader(bytes);
  r.pos = 8;
  const out: Layout = { ownMemory: false, memoryMin: null, dataOffsets: [] };
  while (r.pos < bytes.length) {
    const id = r.u8();
    const size = r.uleb();
    const end = r.pos + size;
    if (id === 2) {                                   // imports
      for (let n = r.uleb(); n > 0; n--) {
        const mod = r.name();
        const field = r.name();
        const kind = r.u8();
        if (kind === 0) r.uleb();
        else if (kind === 1) { r.u8(); r.limits(); }
        else if (kind === 2) { const min = r.limits(); if (mod === "env" && field === "memory") out.memoryMin = min; }
        else if (kind === 3) { r.u8(); r.u8(); }
        else break;
      }
    } else if (id === 5) {                            // memories defined by the module
      out.ownMemory = r.uleb() > 0;
    } else if (id === 11) {                           // data
      for (let n = r.uleb(); n > 0; n--) {
        const flags = r.uleb();
        if (flags === 1) { const len = r.uleb(); r.pos += len; continue; }   // passive: no address
        if (flags === 2) r.uleb();
        const op = r.u8();
        const off = op === 0x41 ? r.sleb32() >>> 0 : NaN;   // i32.const; anything else is not a fixed address
        while (r.u8() !== 0x0b) { /* skip the rest of the expression */ }
        out.dataOffsets.push(off);
        const len = r.uleb();   // (not "r.pos += r.uleb()": that adds to the position before the length)
        r.pos += len;
      }
    }
    r.pos = end;
  }
  return out;
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

/** inspectHandler -- HandlerInfo for a loadable handler; HandlerInvalidError naming the problem otherwise. */
export function inspectHandler(bytes: Uint8Array, name = "handler"): { info: HandlerInfo; module: WebAssembly.Module } {
  const bad = (why: string) => new HandlerInvalidError(`${name}: ${why}`);
  if (bytes.length > MAX_HANDLER_BYTES) throw bad(`${bytes.length} bytes, larger than the ${MAX_HANDLER_BYTES >> 20} MiB handler limit`);
  if (bytes.length < 8 || Buffer.from(bytes.subarray(0, 4)).toString("latin1") !== "\0asm") {
    throw bad("not a WebAssembly module (no \\0asm header)");
  }
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw bad(`not a valid WebAssembly module (truncated or malformed): ${(e as Error).message.replace(/^WebAssembly\.Module\(\): /, "")}`);
  }
  const imports = WebAssembly.Module.imports(module);
  for (const imp of imports) {
    if (!ALLOWED_IMPORTS[imp.module]?.includes(imp.name)) {
      throw bad(`import ${imp.module}.${imp.name} is not allowed (a handler may import ${
        Object.entries(ALLOWED_IMPORTS).map(([m, ns]) => ns.map((x) => `${m}.${x}`).join(", ")).join(", ")})`);
    }
  }
  const layout = readLayout(bytes);
  const window = `the pool window [${hex(CONST.PASTE_WINDOW_BASE)}, ${hex(CONST.PASTE_HANDLER_BASE)})`;
  if (layout.ownMemory) throw bad("memory layout: the module defines its own memory; a handler must import env.memory (build it with `paste-host build`)");
  if (layout.memoryMin === null) throw bad("memory layout: the module does not import env.memory (build it with `paste-host build`)");
  for (const off of layout.dataOffsets) {
    if (!(off >= CONST.PASTE_HANDLER_BASE)) {
      throw bad(`memory layout: static data at ${Number.isNaN(off) ? "a computed address" : hex(off)} would overlap ${window}; build with \`paste-host build\` (asc --memoryBase ${CONST.PASTE_HANDLER_BASE})`);
    }
  }
  const exports = WebAssembly.Module.exports(module).map((e) => e.name);
  if (!exports.includes("paste_abi_version")) throw bad("no paste_abi_version export; build handlers with `paste-host build`");
  if (!exports.includes("on_rx")) throw bad("no on_rx export: a handler must export on_rx(ring: Ring)");

  // The ABI version, from a scratch instance whose imports refuse to run.
  const refuse = () => { throw new Error("a handler import was called while its ABI version was checked"); };
  const scratch: Record<string, Record<string, unknown>> = { env: { memory: createHandlerMemory(16) } };
  for (const imp of imports) if (imp.kind === "function") (scratch[imp.module] ??= {})[imp.name] = refuse;
  let abi: number;
  try {
    const inst = new WebAssembly.Instance(module, scratch as WebAssembly.Imports);
    abi = (inst.exports.paste_abi_version as () => number)();
  } catch (e) {
    throw bad(`cannot be instantiated to read its ABI version: ${(e as Error).message}`);
  }
  if (abi !== ABI_VERSION) throw bad(`built for handler ABI ${abi}; this host speaks ${ABI_VERSION}`);
  const data = layout.dataOffsets.filter((x) => !Number.isNaN(x));
  return {
    module,
    info: {
      name, size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex"), abi,
      imports: imports.map((i) => `${i.module}.${i.name}`), exports,
      memoryMinPages: layout.memoryMin, dataStart: data.length ? Math.min(...data) : null,
    },
  };
}

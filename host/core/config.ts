// config.ts -- a handler's configuration: bytes given with the module
// (`run --handler-config FILE`, `deploy H.wasm --config FILE`) that the
// handler reads through the import paste.config, in on_init as a rule, the
// way a proxy-wasm plugin reads its plugin configuration. The host never
// interprets them: the format is the handler's (kv-wal takes redis.conf
// lines).
//
// A config goes with its module: the pair is what serves, what the pool's
// handler history keeps (handlerstore.ts), what a restart and a rollback
// bring back. An empty config and no config are the same thing: zero bytes.
//
// The import is a JS function, like trace: it is read once at start, off
// the request path, and the bytes belong to one handler instance (a deploy
// binds the new module to its own config), so the native library never
// needs to hold them.

import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { HandlerConfigError, HandlerError } from "./errors.js";

/** The largest config a handler may be given: it is kept in memory for every handler the host keeps, and on disk beside the pool. */
export const MAX_CONFIG_BYTES = 1 << 20;

/** What status, the deploy result and `handlers list` show of a config: its size and content hash; null for none. */
export interface ConfigInfo {
  size: number;
  sha256: string;
}

/** configInfo -- size and sha256 of a config; null when it is empty (no config). */
export function configInfo(config: Uint8Array | null | undefined): ConfigInfo | null {
  if (!config || config.length === 0) return null;
  return { size: config.length, sha256: createHash("sha256").update(config).digest("hex") };
}

/** sameConfig -- do two configs hold the same bytes (none and empty are the same)? */
export function sameConfig(a: ConfigInfo | null | undefined, b: ConfigInfo | null | undefined): boolean {
  return (a?.sha256 ?? null) === (b?.sha256 ?? null);
}

/** configTooLarge -- the refusal of a config over the limit, naming where it came from. */
export function configTooLarge(what: string, size: number): InstanceType<typeof HandlerConfigError> {
  return new HandlerConfigError(`${what} is ${size} bytes, over the ${MAX_CONFIG_BYTES / 1024} KiB limit for a handler's config; ` +
    "keep large data in the log or build it into the module");
}

/** checkConfig -- a config's bytes, refused (HandlerConfigError) if over the limit. */
export function checkConfig(config: Uint8Array, what = "the handler config"): Uint8Array {
  if (config.length > MAX_CONFIG_BYTES) throw configTooLarge(what, config.length);
  return config;
}

/** readConfigFile -- a config file's bytes, with the size checked before reading it; a clear error if it cannot be read. */
export function readConfigFile(path: string): Uint8Array {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new HandlerConfigError(`cannot read the handler config ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (size > MAX_CONFIG_BYTES) throw configTooLarge(`the handler config ${path}`, size);
  return checkConfig(new Uint8Array(readFileSync(path)), `the handler config ${path}`);
}

/**
 * configImport -- paste.config for one handler instance: (ptr, cap) copies
 * up to cap bytes of the config to ptr and returns the config's whole
 * length (so config(0, 0) asks for the size first); Err.HANDLER (-16) for a
 * range outside the handler's memory.
 */
export function configImport(memory: WebAssembly.Memory, config: Uint8Array) {
  const outOfRange = HandlerError.native!;
  return (ptr: number, cap: number): number => {
    ptr >>>= 0;   // usize and u32 arrive as signed i32
    cap >>>= 0;
    const n = Math.min(cap, config.length);
    const buf = memory.buffer;   // read each call: a grow replaces the buffer
    if (ptr + n > buf.byteLength) return outOfRange;
    new Uint8Array(buf, ptr, n).set(config.subarray(0, n));
    return config.length;
  };
}

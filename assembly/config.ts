// config.ts -- the handler's configuration: the bytes the host was given
// with this module (`paste-host run --handler-config FILE`, `paste-host
// deploy H.wasm --config FILE`), empty when none was. Read it in on_init,
// keep what you parsed: a deploy or rollback that changes the config starts
// a new instance, which gets on_init again.

import * as host from "./imports";

/** handlerConfig -- the config's bytes, a fresh copy (empty if the handler was given none). */
export function handlerConfig(): Uint8Array {
  const n = host.config(0, 0);
  const out = new Uint8Array(n);
  if (n > 0) host.config(out.dataStart, <u32>n);
  return out;
}

/** handlerConfigString -- the config decoded as UTF-8 ("" if none). */
export function handlerConfigString(): string {
  const b = handlerConfig();
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

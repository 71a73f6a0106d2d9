// abi.ts -- the ABI export `paste-host build` adds to every handler.
import { ABI_VERSION } from "./layout";

/** paste_abi_version -- the handler ABI this module was built for; the host refuses others. */
export function paste_abi_version(): i32 {
  return ABI_VERSION;
}

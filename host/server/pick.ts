// pick.ts -- which handler `paste-host run` serves: the --handler given, or,
// without one, the one that served the pool last (a deploy included), from
// POOL.handlers/ (core/handlerstore.ts). An explicit --handler always wins;
// the startup line says which was chosen and why, so that a restart with an
// old --handler after a deploy is never silent.

import { existsSync, readFileSync } from "node:fs";
import { HandlerInvalidError, UsageError } from "../core/errors.js";
import type { HandlerStore } from "../core/handlerstore.js";
import { inspectHandler, type HandlerInfo } from "../core/validate.js";

export interface PickedHandler {
  bytes: Uint8Array;
  name: string;
  info: HandlerInfo;
  /** Why this one, for the startup line ("" when --handler is what served last anyway). */
  note: string;
  /** It differs from what served last: the history gets an entry once it serves. */
  isNew: boolean;
}

/** pickHandler -- the module to serve, validated (a bad one is refused before the pool is touched). */
export function pickHandler(given: string | undefined, store: HandlerStore): PickedHandler {
  const last = store.current();
  const short = (sha: string) => `sha256 ${sha.slice(0, 12)}`;
  if (given === undefined) {
    if (!last) {
      throw new UsageError(`no --handler, and ${store.poolPath} has not served a handler yet: pass --handler FILE.wasm (built with paste-host build)`);
    }
    const bytes = new Uint8Array(readFileSync(store.modulePath(last.sha256)));
    const { info } = inspectHandler(bytes, last.name);
    return { bytes, name: last.name, info, isNew: false,
      note: `the handler that served last: ${last.how} ${last.since}, ${short(last.sha256)}, kept in ${store.dir}` };
  }
  if (!existsSync(given)) {
    throw new HandlerInvalidError(`handler ${given} not found (build one with: paste-host build handler.ts -o ${given})`);
  }
  const bytes = new Uint8Array(readFileSync(given));
  const { info } = inspectHandler(bytes, given);
  if (!last || last.sha256 === info.sha256) return { bytes, name: given, info, note: "", isNew: !last };
  return { bytes, name: given, info, isNew: true,
    note: `--handler, not the one that served last (${last.name}, ${last.how} ${last.since}, ${short(last.sha256)}): ` +
      `an explicit --handler wins; run without it, or paste-host handlers rollback, to serve the other` };
}

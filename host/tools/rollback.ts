// rollback.ts -- `paste-host rollback` (and its alias `paste-host handlers
// rollback`): serve the handler, with its config, that served the pool
// before the current one. Where to go is always the pool's history's choice
// (HandlerStore.previous: rollbacks walk back like undo). On a running host
// it is POST /v1/handler/rollback: the host takes that choice and deploys it
// (validated, replayed, swapped between two batches, recorded). On a stopped
// pool it is a new entry in POOL.handlers/history.json, which the next
// `paste-host run` (without --handler) starts.

import { existsSync, readFileSync } from "node:fs";
import { UsageError } from "../core/errors.js";
import { HandlerStore, type ServedHandler } from "../core/handlerstore.js";
import { Pool } from "../core/pool.js";
import type { DeployResult } from "../server/admin.js";
import { rollbackRunning, type AdminTarget } from "./status.js";

export type RollbackResult =
  /** A host served the pool: what its deploy of the handler before did. */
  | { deployed: DeployResult; to?: undefined }
  /** The pool was stopped: the entry its next run starts. */
  | { deployed: null; to: ServedHandler };

/** served -- is a host serving the pool now (it holds the pool's lock)? */
function served(pool: string): boolean {
  const p = Pool.open(pool, { readOnly: true });
  try {
    return p.info().state.inUse;
  } finally {
    p.close();
  }
}

/** rollbackHandler -- one rollback, on the host serving the pool, or on the pool itself when none does. */
export async function rollbackHandler(o: AdminTarget): Promise<RollbackResult> {
  // --admin without --pool names a running host; a pool a host serves is rolled back by that host
  if (!o.pool || !existsSync(o.pool) || served(o.pool)) return { deployed: await rollbackRunning(o) };
  const store = new HandlerStore(o.pool);
  const to = store.previous();
  if (!to) throw new UsageError(`${o.pool} has no earlier handler to roll back to (paste-host handlers list --pool ${o.pool} shows what it served)`);
  store.record(readFileSync(store.modulePath(to.sha256)), to.name, "rollback", store.configOf(to));
  return { deployed: null, to };
}

// rollback.ts -- `paste-host handlers rollback`: serve the handler that served
// before the current one. On a running host it is a deploy (the admin API:
// validated, replayed, swapped between two batches, recorded by the host); on
// a stopped pool it is a new entry in POOL.handlers/history.json, which the
// next `paste-host run` (without --handler) starts.

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { UsageError } from "../core/errors.js";
import { HandlerStore, type ServedHandler } from "../core/handlerstore.js";
import { Pool } from "../core/pool.js";
import type { DeployResult } from "../server/admin.js";
import { deployHandler, type AdminTarget } from "./status.js";

export interface RollbackResult {
  to: ServedHandler;
  /** The deploy's result when a host was serving the pool; null when the pool was stopped (the next run starts `to`). */
  deployed: DeployResult | null;
}

/** served -- is a host serving the pool now (it holds the pool's lock)? */
function served(pool: string): boolean {
  const p = Pool.open(pool, { readOnly: true });
  try {
    return p.info().state.inUse;
  } finally {
    p.close();
  }
}

export async function rollbackHandler(pool: string, o: AdminTarget = {}): Promise<RollbackResult> {
  const store = new HandlerStore(pool);
  const to = store.previous();
  if (!to) throw new UsageError(`${pool} has no earlier handler to roll back to (paste-host handlers list --pool ${pool} shows what it served)`);
  if (served(pool)) {
    const deployed = await deployHandler(store.modulePath(to.sha256), { ...o, pool, name: basename(to.name) });
    return { to, deployed };
  }
  store.record(readFileSync(store.modulePath(to.sha256)), to.name, "rollback", store.configOf(to));
  return { to, deployed: null };
}

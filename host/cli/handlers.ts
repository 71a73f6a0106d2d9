// handlers.ts -- `paste-host handlers list|rollback`: the handlers a pool has
// served (kept beside it in POOL.handlers/), and going back to the one before.

import { Command } from "commander";
import { HandlerStore } from "../core/handlerstore.js";
import { rollbackHandler } from "../tools/rollback.js";
import { formatDeploy } from "../tools/status.js";

export function handlersList(parent: Command): void {
  parent
    .command("list")
    .description("the handlers the pool has served, oldest first; the last one serves now (or starts at the next run)")
    .requiredOption("--pool <path>", "the pool")
    .option("--json", "print the history as JSON", false)
    .action((o: { pool: string; json: boolean }) => {
      const store = new HandlerStore(o.pool);
      const h = store.history();
      if (o.json) return console.log(JSON.stringify(h, null, 2));
      if (h.length === 0) return console.log(`${o.pool} has no handler history yet (${store.dir} is made by paste-host run)`);
      h.forEach((e, i) => {
        const mark = i === h.length - 1 ? "*" : " ";
        const config = e.config ? `config ${e.config.size} B ${e.config.sha256.slice(0, 12)}` : "no config";
        console.log(`${mark} ${e.since}  ${e.how.padEnd(8)}  ${e.sha256.slice(0, 16)}  ${config.padEnd(27)}  ${e.name}`);
      });
      console.log(`(* serves now, or starts at the next paste-host run without --handler; modules in ${store.dir})`);
    });
}

export function handlersRollback(parent: Command): void {
  parent
    .command("rollback")
    .description("serve the handler that served before the current one: deployed if a host serves the pool, else started by the next run")
    .requiredOption("--pool <path>", "the pool")
    .option("--admin <url>", "admin API URL of the running host (default: from POOL.admin)")
    .option("--token-file <file>", "bearer token file (default: POOL.token)")
    .action(async (o: { pool: string; admin?: string; tokenFile?: string }) => {
      const r = await rollbackHandler(o.pool, { admin: o.admin, tokenFile: o.tokenFile });
      if (r.deployed) console.log(formatDeploy(r.deployed));
      else console.log(`rolled back to ${r.to.name} (sha256 ${r.to.sha256.slice(0, 16)}...): the next paste-host run --pool ${o.pool} (without --handler) serves it`);
    });
}

// handlers.ts -- `paste-host handlers list|rollback`: the handlers a pool has
// served (kept beside it in POOL.handlers/), and going back to the one before.

import { Command } from "commander";
import { HandlerStore } from "../core/handlerstore.js";
import { rollback } from "./handler.js";

export function handlersList(parent: Command): void {
  parent
    .command("list")
    .description("the handlers the pool has served, oldest first; the last one serves now (or starts at the next run)")
    .requiredOption("--pool <path>", "the pool")
    .option("--json", "print the history as JSON", false)
    .option("--with-rollback", "with --json: print { handlers, rollbackTo }, as GET /v1/handlers answers", false)
    .action((o: { pool: string; json: boolean; withRollback: boolean }) => {
      const store = new HandlerStore(o.pool);
      const { handlers: h, rollbackTo } = store.listing();
      if (o.json) return console.log(JSON.stringify(o.withRollback ? { pool: o.pool, handlers: h, rollbackTo } : h, null, 2));
      if (h.length === 0) return console.log(`${o.pool} has no handler history yet (${store.dir} is made by paste-host run)`);
      h.forEach((e, i) => {
        const mark = i === h.length - 1 ? "*" : " ";
        const config = e.config ? `config ${e.config.size} B ${e.config.sha256.slice(0, 12)}` : "no config";
        console.log(`${mark} ${e.since}  ${e.how.padEnd(8)}  ${e.sha256.slice(0, 16)}  ${config.padEnd(27)}  ${e.name}`);
      });
      console.log(`(* serves now, or starts at the next paste-host run without --handler; modules in ${store.dir})`);
      console.log(rollbackTo ? `paste-host rollback --pool ${o.pool} serves ${rollbackTo.name} (${rollbackTo.how} ${rollbackTo.since}) again` : "nothing to roll back to");
    });
}

/** handlersRollback -- `paste-host handlers rollback`: an alias of `paste-host rollback`, the same code path. */
export function handlersRollback(parent: Command): void {
  rollback(parent, true);
}

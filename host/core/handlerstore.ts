// handlerstore.ts -- the handlers a pool has been served with, kept beside it,
// so that a restart serves the one that served last (a deploy included), and
// a rollback can go back to the one before:
//
//   POOL.handlers/
//     <sha256>.wasm    every module that served, named by its content
//     <sha256>.config  every config one was given (config.ts), named by its content
//     history.json     [{ sha256, name, since, how, config }, ...]: the last one serves now
//
// A module and its config serve as a pair: an entry names both, so a restart
// and a rollback bring back the config that went with the module.
//
// Each file is written whole (a temporary file, then rename), so a crash
// leaves the old version or the new one, never half of either. The log never
// depends on these files: losing them only means `run` needs --handler again.
// Each entry names the pool's uuid: a pool made anew at the same path
// (`pool create --force`) does not inherit the old pool's handlers.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configInfo, sameConfig, type ConfigInfo } from "./config.js";
import { Pool } from "./pool.js";

/** How a handler came to serve: started by `run`, deployed, put back after the one deployed over it was stopped, or a rollback. */
export type ServedHow = "run" | "deploy" | "restored" | "rollback";

export interface ServedHandler {
  sha256: string;
  /** The uuid of the pool it served. */
  pool: string;
  /** The name it was given (the --handler path, the deployed file's name). */
  name: string;
  /** When it began to serve (ISO 8601). */
  since: string;
  how: ServedHow;
  /** The config it was given (size and sha256 of POOL.handlers/<sha256>.config); null: none. */
  config: ConfigInfo | null;
}

/** At most this many entries are kept: the history is for rollbacks and for reading, not an audit log. */
const KEEP_ENTRIES = 100;

export class HandlerStore {
  readonly dir: string;

  constructor(readonly poolPath: string) {
    this.dir = `${poolPath}.handlers`;
  }

  /** history -- every handler that served this pool, oldest first; [] if none was recorded (or the file is unreadable). */
  history(): ServedHandler[] {
    const uuid = this.#poolUuid();
    return this.#all().filter((e) => e.pool === uuid && this.has(e.sha256) && (!e.config || this.#hasConfig(e.config.sha256)));
  }

  #all(): ServedHandler[] {
    const file = join(this.dir, "history.json");
    if (!existsSync(file)) return [];
    try {
      const h = JSON.parse(readFileSync(file, "utf8")) as ServedHandler[];
      // an entry written before configs were kept has none
      return Array.isArray(h) ? h.filter((e) => typeof e?.sha256 === "string" && typeof e.pool === "string").map((e) => ({ ...e, config: e.config ?? null })) : [];
    } catch {
      return [];
    }
  }

  /** #poolUuid -- the pool file's uuid (read-only open: safe while a host serves it); null if there is no pool. */
  #poolUuid(): string | null {
    // kept once read: a pool cannot be made anew under a host that holds it,
    // and a host asks for every status the console polls
    if (this.#uuid) return this.#uuid;
    if (!existsSync(this.poolPath)) return null;
    const p = Pool.open(this.poolPath, { readOnly: true });
    try {
      const uuid = p.info().uuid;
      if (p.info().state.inUse) this.#uuid = uuid;
      return uuid;
    } finally {
      p.close();
    }
  }

  #uuid: string | null = null;

  /** current -- the handler that served last, if its module is still here. */
  current(): ServedHandler | null {
    return this.history().at(-1) ?? null;
  }

  /**
   * previous -- what a rollback serves: the handler (module and config)
   * that served before the current one. Rollbacks walk back like undo, not
   * like `cd -`: the history is replayed as a stack (run and deploy push; a
   * rollback, or a restore after a stopped handler, pops the one it
   * replaces), so a second rollback goes one further back, and the stack
   * survives restarts. Every rollback path (the CLI's, the admin API's, the
   * console's) asks this one.
   */
  previous(): ServedHandler | null {
    return stackOf(this.history()).at(-2) ?? null;
  }

  /** listing -- the history as `handlers list` and GET /v1/handlers show it: each entry, which one serves, where a rollback goes. */
  listing(): { handlers: (ServedHandler & { serving: boolean })[]; rollbackTo: ServedHandler | null } {
    const h = this.history();
    return { handlers: h.map((e, i) => ({ ...e, serving: i === h.length - 1 })), rollbackTo: stackOf(h).at(-2) ?? null };
  }

  has(sha256: string): boolean {
    return /^[0-9a-f]{64}$/.test(sha256) && existsSync(this.modulePath(sha256));
  }

  modulePath(sha256: string): string {
    return join(this.dir, `${sha256}.wasm`);
  }

  #hasConfig(sha256: string): boolean {
    return /^[0-9a-f]{64}$/.test(sha256) && existsSync(this.#configPath(sha256));
  }

  #configPath(sha256: string): string {
    return join(this.dir, `${sha256}.config`);
  }

  /** configOf -- the config bytes an entry was given (empty: none). */
  configOf(e: ServedHandler): Uint8Array {
    return e.config ? new Uint8Array(readFileSync(this.#configPath(e.config.sha256))) : new Uint8Array(0);
  }

  /** record -- bytes now serve, with config: keep both (once per content) and append them to the history; the entry. */
  record(bytes: Uint8Array, name: string, how: ServedHow, config: Uint8Array = new Uint8Array(0)): ServedHandler {
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const pool = this.#poolUuid();
    if (!pool) throw new Error(`no pool at ${this.poolPath} to record a handler for`);
    mkdirSync(this.dir, { recursive: true });
    if (!this.has(sha256)) writeWhole(this.modulePath(sha256), bytes);
    const ci = configInfo(config);
    if (ci && !this.#hasConfig(ci.sha256)) writeWhole(this.#configPath(ci.sha256), config);
    const entry: ServedHandler = { sha256, pool, name, since: new Date().toISOString(), how, config: ci };
    // a history of an earlier pool at this path is dropped with its first new entry
    const history = [...this.#all().filter((e) => e.pool === pool), entry].slice(-KEEP_ENTRIES);
    writeWhole(join(this.dir, "history.json"), `${JSON.stringify(history, null, 2)}\n`);
    return entry;
  }
}

/** stackOf -- the history replayed as the rollback stack (see previous): the serving handler last. */
function stackOf(history: ServedHandler[]): ServedHandler[] {
  const st: ServedHandler[] = [];
  for (const e of history) {
    if (e.how === "rollback" || e.how === "restored") st.pop();   // it replaces the one serving
    const top = st.at(-1);
    if (top && samePair(top, e)) st[st.length - 1] = e;           // back to it (or the same pair again): it serves, once
    else st.push(e);
  }
  return st;
}

/** samePair -- do two entries serve the same module with the same config? */
export function samePair(a: { sha256: string; config: ConfigInfo | null }, b: { sha256: string; config: ConfigInfo | null }): boolean {
  return a.sha256 === b.sha256 && sameConfig(a.config, b.config);
}

function writeWhole(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}

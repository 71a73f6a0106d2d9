// pick.ts -- which handler `paste-host run` serves: the --handler given, or,
// without one, the one that served the pool last (a deploy included), from
// POOL.handlers/ (core/handlerstore.ts). An explicit --handler always wins;
// the startup line says which was chosen and why, so that a restart with an
// old --handler after a deploy is never silent. The config goes with the
// module: --handler-config, else (without --handler) the one that served with
// it last; an explicit --handler without --handler-config has none.

import { existsSync, readFileSync } from "node:fs";
import { HandlerInvalidError, UsageError } from "../core/errors.js";
import { configInfo, readConfigFile, sameConfig, type ConfigInfo } from "../core/config.js";
import { samePair, type HandlerStore } from "../core/handlerstore.js";
import { inspectHandler, type HandlerInfo } from "../core/validate.js";

export interface PickedHandler {
  bytes: Uint8Array;
  name: string;
  info: HandlerInfo;
  /** Its config (empty: none): --handler-config, or the one it served with last. */
  config: Uint8Array;
  /** Why this one, for the startup line ("" when --handler is what served last anyway). */
  note: string;
  /** It differs from what served last: the history gets an entry once it serves. */
  isNew: boolean;
}

/** pickHandler -- the module to serve and its config, validated (a bad one is refused before the pool is touched). */
export function pickHandler(given: string | undefined, store: HandlerStore, configFile?: string): PickedHandler {
  const last = store.current();
  const short = (sha: string) => `sha256 ${sha.slice(0, 12)}`;
  // a config file given is read (and its size checked) before anything else
  const givenConfig = configFile === undefined ? undefined : readConfigFile(configFile);
  if (given === undefined) {
    if (!last) {
      throw new UsageError(`no --handler, and ${store.poolPath} has not served a handler yet: pass --handler FILE.wasm (built with paste-host build)`);
    }
    const bytes = new Uint8Array(readFileSync(store.modulePath(last.sha256)));
    const { info } = inspectHandler(bytes, last.name);
    const config = givenConfig ?? store.configOf(last);
    const isNew = !sameConfig(configInfo(config), last.config);
    return { bytes, name: last.name, info, config, isNew,
      note: `the handler that served last: ${last.how} ${last.since}, ${short(last.sha256)}, kept in ${store.dir}` +
        (isNew ? `; with the config in ${configFile}, not the one it served with` : last.config ? ", with the config it served with" : "") };
  }
  if (!existsSync(given)) {
    throw new HandlerInvalidError(`handler ${given} not found (build one with: paste-host build handler.ts -o ${given})`);
  }
  const bytes = new Uint8Array(readFileSync(given));
  const { info } = inspectHandler(bytes, given);
  const config = givenConfig ?? new Uint8Array(0);
  const pair = { sha256: info.sha256, config: configInfo(config) };
  if (!last || samePair(last, pair)) return { bytes, name: given, info, config, note: "", isNew: !last };
  if (last.sha256 === info.sha256) {
    return { bytes, name: given, info, config, isNew: true,
      note: `${pair.config ? `config ${configFile}` : "no config"}, not the one it served with last (${describe(last.config)})` };
  }
  return { bytes, name: given, info, config, isNew: true,
    note: `--handler, not the one that served last (${last.name}, ${last.how} ${last.since}, ${short(last.sha256)}): ` +
      `an explicit --handler wins; run without it, or paste-host handlers rollback, to serve the other` };
}

function describe(c: ConfigInfo | null): string {
  return c ? `${c.size} bytes, sha256 ${c.sha256.slice(0, 12)}` : "none";
}

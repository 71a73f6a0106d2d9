// dev.ts -- `paste-host dev HANDLER.ts`: the handler author's edit loop.
//
// Build the handler (into a scratch directory, never beside the source),
// serve it on a local pool, and watch every file the build read outside
// node_modules (the source, what it imports, the project's asconfig.json).
// On a save: build again; if it compiles, deploy it to the host through the
// admin API, the very path `paste-host deploy` takes (validated, replayed,
// swapped between two batches: no connection dropped); if it does not, print
// asc's errors (file and line) and keep serving the last good build.
//
// Directories are watched rather than files, because editors save by
// writing a new file and renaming it over the old one.

import { mkdtempSync, rmSync, watch, type FSWatcher } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { buildHandler } from "../core/build.js";
import { PasteError } from "../core/errors.js";
import { serve } from "../server/server.js";
import { deployHandler } from "./status.js";

export interface DevOptions {
  pool: string;
  listen: string;
  createSize?: number;
  /** The handler's config file: served with the first build, and read again for every deploy (an edit is in the next build). */
  handlerConfig?: string;
  /** Where the loop's own lines go (default: stderr), beside the host's log. */
  say?: (line: string) => void;
}

/** After a change, wait this long for the rest of a save (editors write in several steps) before building. */
const SETTLE_MS = 100;

export async function devLoop(entry: string, o: DevOptions): Promise<number> {
  const say = o.say ?? ((line: string) => process.stderr.write(`paste-host dev: ${line}\n`));
  const scratch = mkdtempSync(join(tmpdir(), "paste-dev-"));
  const watchers: FSWatcher[] = [];
  try {
    let builds = 0;
    const build = async (): Promise<{ wasm: string; files: Set<string> }> => {
      const wasm = join(scratch, `build-${++builds}.wasm`);
      const files = new Set<string>();
      await buildHandler(entry, wasm, { onRead: (f) => { if (!f.split(sep).includes("node_modules")) files.add(f); } });
      return { wasm, files };
    };
    const first = await build();   // a first build that fails has nothing to serve: its error ends the command
    const host = serve({ pool: o.pool, handler: first.wasm, handlerConfig: o.handlerConfig, listen: o.listen, createSize: o.createSize,
      admin: "127.0.0.1:0" });
    await host.ready;
    let serving = builds;
    let watched = new Set<string>();
    const watchAll = (files: Set<string>) => {
      for (const w of watchers.splice(0)) w.close();
      watched = files;
      for (const dir of new Set([...files].map((f) => dirname(f)))) {
        watchers.push(watch(dir, (_e, name) => { if (name && watched.has(resolve(dir, String(name)))) changed(); }));
      }
      say(`watching ${files.size} file(s) of ${entry}; save to rebuild and deploy`);
    };
    let timer: NodeJS.Timeout | null = null;
    let running: Promise<void> | null = null;
    let again = false;
    const changed = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        if (running) again = true;
        else running = rebuild();
      }, SETTLE_MS);
    };
    const rebuild = async (): Promise<void> => {
      try {
        const next = await build();
        const r = await deployHandler(next.wasm, { pool: o.pool, name: `build ${builds} of ${entry}`, config: o.handlerConfig });
        serving = builds;
        say(`deployed build ${builds}: replayed ${r.replayed} records, paused ${r.pauseMs} ms`);
        watchAll(next.files);
      } catch (e) {
        const msg = e instanceof PasteError ? `${e.code}: ${e.message}` : String(e);
        say(`build ${builds} not deployed, still serving build ${serving}:\n${msg}`);
      } finally {
        running = null;
        if (again) {
          again = false;
          running = rebuild();
        }
      }
    };
    watchAll(first.files);
    const code = await host.done;   // until Ctrl-C: the host stops cleanly
    if (timer) clearTimeout(timer);
    await running;
    return code;
  } finally {
    for (const w of watchers) w.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

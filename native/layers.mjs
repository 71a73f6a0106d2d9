// layers.mjs -- the native library's layering, checked on the objects the
// build just made: no file may call a function of a file in a higher layer,
// nor of another file in its own layer (the two ports stay strangers).
//
//   node layers.mjs BUILD_DIR      (the Makefile runs it on the objects, before it links)
//
// How: `nm` lists what each object defines and what it needs from elsewhere;
// every need that another of our objects defines is a call between files,
// and the callee's layer must be lower. Calls through a function-pointer
// table (the persist ops, the port ops) are invisible here by design: that is
// how a lower layer reaches a higher one without naming it.
//
// The picture this table encodes is drawn in paste.h; keep them together.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Bottom first. A file may call only files in the groups before its own. */
export const LAYERS = [
  ["error.c", "cpu.c", "layout.c"],   // the error contract, flush dispatch and crc32c, the layout table
  ["sim.c", "format.c"],              // the persistence simulator (another set of persist ops); the file format, create
  ["pool.c"],                         // create, open, lock, map, persist, the window
  ["bufs.c"],                         // buffer states, free stack, references, holds
  ["log.c", "logwalk.c"],             // append, commit, trim, the reserve; the walker, the log half of recovery
  ["ring.c"],                         // netmap rings: reset, claim, publish, take back
  ["reply.c"],                        // the reply queue, released after the commit
  ["worker.c"],                       // the runtime: recover, workers, connections, replay, takeover
  ["imports.c"],                      // every paste_h_*: the handler ABI
  ["tcp_linger.c", "tcp_bind.c", "busypoll.c"],   // for both TCP engines: staged closes, the listener, busy polling
  ["port_mem.c", "port_tcp.c"],       // the ports: the mem port; the TCP port with its epoll engine
  ["uring_recv.c", "uring_send.c"],   // the io_uring engine's receiving and sending sides
  ["port_uring.c"],                   // the TCP port's io_uring engine, plugged in through struct paste_tcp_engine
];

/** symbols -- { defined: Set, undefined: Set } of one object file, from nm. */
function symbols(obj) {
  const r = spawnSync("nm", ["-P", obj], { encoding: "utf8" });
  if (r.error || r.status !== 0) throw new Error(`nm ${obj}: ${r.error?.message ?? r.stderr}`);
  const defined = new Set();
  const undef = new Set();
  for (const line of r.stdout.split("\n")) {
    const [name, type] = line.trim().split(/\s+/);
    if (!name || !type) continue;
    if (type === "U") undef.add(name);
    else if (/[TDBRV]/.test(type)) defined.add(name);   // global text, data, bss, rodata, TLS
  }
  return { defined, undefined: undef };
}

/**
 * check -- every upward or sideways call between the objects in dir, as
 * "caller.c calls callee() of callee.c (layer N >= M)" lines; [] when the
 * layering holds. Throws if an object is missing or a source is not in LAYERS.
 */
export function check(dir, layers = LAYERS) {
  const rank = new Map();
  layers.forEach((group, i) => group.forEach((f) => rank.set(f, i)));
  const here = dirname(fileURLToPath(import.meta.url));
  for (const f of readdirSync(here).filter((n) => n.endsWith(".c"))) {
    if (!rank.has(f)) throw new Error(`layers: ${f} is in no layer; add it to LAYERS in native/layers.mjs`);
  }
  const owner = new Map();
  const objs = [];
  for (const src of rank.keys()) {
    const obj = join(dir, src.replace(/\.c$/, ".o"));
    if (!existsSync(obj)) throw new Error(`layers: ${obj} is missing (is ${src} still built?)`);
    const s = symbols(obj);
    objs.push({ src, ...s });
    for (const d of s.defined) owner.set(d, src);
  }
  const bad = [];
  for (const o of objs) {
    for (const need of o.undefined) {
      const from = owner.get(need);
      if (!from || from === o.src) continue;
      if (rank.get(from) >= rank.get(o.src)) {
        bad.push(`${o.src} (layer ${rank.get(o.src)}) uses ${need} of ${from} (layer ${rank.get(from)}): ` +
          `a file may use only the layers below it`);
      }
    }
  }
  return bad.sort();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2] ?? "build";
  try {
    const bad = check(dir);
    if (bad.length) {
      console.error(`native/layers.mjs: the layering is broken (see the picture in native/paste.h):\n  ${bad.join("\n  ")}`);
      process.exit(1);
    }
  } catch (e) {
    console.error(`native/layers.mjs: ${e.message}`);
    process.exit(2);
  }
}

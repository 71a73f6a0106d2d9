// replay.mjs -- what a start and a deploy wait for: kv-wal's records replayed.
//
//   node bench/replay.mjs [RECORDS] [POOL]     (after npm install; defaults 100000, /dev/shm)
//
// Logs RECORDS distinct SETs (1 KiB values) through the mem port, then times
// (1) a reopen: recovery walk + a fresh handler's on_init and on_replay of
// every record, and (2) Runtime.replaceHandler, the swap a deploy makes
// between two batches (the "paused" figure `paste-host deploy` prints; the
// module was compiled and its memory made beforehand, while serving).
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Runtime } from "../dist/host/index.js";

const root = join(fileURLToPath(import.meta.url), "..", "..");
const handler = join(root, "samples", "kv-wal", "kv-wal.wasm");
const records = Number(process.argv[2] ?? 100_000);
const pool = process.argv[3] ?? `/dev/shm/paste-replay-bench-${process.pid}.pool`;
const value = "v".repeat(1024);
const set = (i) => {
  const k = `key:${i}`;
  return Buffer.from(`*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${value.length}\r\n${value}\r\n`);
};
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

rmSync(pool, { force: true });
try {
  let rt = Runtime.open(pool, { handler, create: { size: Math.max(256 << 20, records * 2048 * 1.25), logSize: Math.max(4 << 20, records * 128) } });
  for (let i = 0; i < records;) {
    let k = 0;
    while (k < 512 && i < records && rt.memRequest(set(i), 1 + (i % 16))) {
      i++;
      k++;
    }
    rt.runBatch();
    rt.takeReplies();
  }
  const logged = rt.stats().records;
  rt.close();

  const t0 = process.hrtime.bigint();
  rt = Runtime.open(pool, { handler });
  const open = ms(t0);
  const next = rt.prepareHandler(readFileSync(handler), "kv-wal.wasm");   // done while the old handler serves
  const t1 = process.hrtime.bigint();
  const replayed = rt.replaceHandler(next);
  const swap = ms(t1);
  rt.close();
  const us = (x) => ((x * 1000) / replayed).toFixed(2);
  console.log(`kv-wal, ${logged} records of ${value.length + 40} B (${replayed} replayed):`);
  console.log(`  open (recovery + on_init + replay): ${open.toFixed(1)} ms, ${us(open)} µs a record`);
  console.log(`  replaceHandler (a deploy's pause):  ${swap.toFixed(1)} ms, ${us(swap)} µs a record`);
} finally {
  rmSync(pool, { force: true });
}

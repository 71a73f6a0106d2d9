// membatch.mjs -- the handler's side of a pipelined SET, without a network:
// kv-wal builds compared on the mem port, in alternation.
//
//   node bench/membatch.mjs [--keys K] [--rounds R] A.wasm [B.wasm ...]   (after npm run build)
//
// Each run opens a fresh 256 MiB pool on /dev/shm, then feeds batches of 800
// SETs of 1 KiB values (50 connections x 16, as redis-benchmark -c 50 -P 16
// sends them; one key, or K keys) and times runBatch alone: on_rx (parsing,
// the index, the imports), the commit (crc32c is taken at log time, then the
// flushes) and the replies. Filling the slots (memRequest, a copy per
// request that a TCP port does not make) is left out. Prints ns per SET for
// every run, then the minimum and the median per module. Pin it to a core
// (taskset -c 1) on a shared machine.
import { rmSync } from "node:fs";
import { Runtime } from "../dist/host/index.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} takes a positive integer`);
  return v;
};
const keys = opt("--keys", 1);
const rounds = opt("--rounds", 10);
const modules = args;
if (!modules.length) {
  console.error("usage: node bench/membatch.mjs [--keys K] [--rounds R] A.wasm [B.wasm ...]");
  process.exit(2);
}

const value = "v".repeat(1024);
const set = (i) => {
  const k = keys > 1 ? `key:${i % keys}` : "key:__rand_int__";
  return Buffer.from(`*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${value.length}\r\n${value}\r\n`);
};
const requests = Array.from({ length: 4096 }, (_, i) => set(i));
const BATCHES = 200;

function run(handler) {
  const pool = `/dev/shm/paste-membatch-${process.pid}.pool`;
  rmSync(pool, { force: true });
  const rt = Runtime.open(pool, { handler, create: { size: 256 << 20 } });
  try {
    let i = 0;
    let spent = 0n;
    const batch = () => {
      for (let k = 0; k < 800; k++, i++) rt.memRequest(requests[i & 4095], 1 + (k % 50));
      const t = process.hrtime.bigint();
      rt.runBatch();
      spent += process.hrtime.bigint() - t;
      rt.takeReplies();
    };
    for (let w = 0; w < 100; w++) batch();   // warm up: the JIT's tiers, the pool's first pages
    spent = 0n;
    for (let b = 0; b < BATCHES; b++) batch();
    return Number(spent) / (BATCHES * 800);
  } finally {
    rt.close();
    rmSync(pool, { force: true });
  }
}

const ns = new Map(modules.map((m) => [m, []]));
for (let r = 0; r < rounds; r++) for (const m of modules) ns.get(m).push(run(m));
for (const [m, xs] of ns) {
  const sorted = [...xs].sort((a, b) => a - b);
  console.log(`${m}: ${xs.map((x) => x.toFixed(0)).join(" ")}; min ${sorted[0].toFixed(0)}, median ${sorted[sorted.length >> 1].toFixed(0)} ns/SET`);
}

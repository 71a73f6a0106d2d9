// Crash consistency under SIGKILL: a child logs as fast as it can and prints
// each sequence number once its batch is durable; it is killed at a random
// moment; every sequence number it printed must come back, byte-exact, after
// the pool is reopened. Repeated across several kills on the same pool.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Pool } from "../host/core/pool.js";
import { walkLog } from "../host/core/logwalk.js";
import { buildFixture, memRequest, root, scratchDir } from "./helpers.js";

const SIZE = 700;
let logAll: string;
beforeAll(async () => {
  logAll = await buildFixture("log-all");
});

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});


/** runAndKill -- start the child, let it log for `ms`, SIGKILL it; the acks it printed. */
function runAndKill(pool: string, ms: number): Promise<{ acks: number[]; recovered: number }> {
  const child = spawn(process.execPath, [join(root, "test", "fixtures", "crash-child.mjs"), pool, logAll, String(SIZE)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    let recovered = -1;
    child.stderr!.on("data", (d) => (err += d));
    child.stdout!.on("data", (d) => {
      out += d;
      if (recovered < 0) {
        const m = /^ready (\d+)\n/.exec(out);
        if (m) {
          recovered = Number(m[1]);
          setTimeout(() => child.kill("SIGKILL"), ms);
        }
      }
    });
    child.on("exit", (code, signal) => {
      if (signal !== "SIGKILL") return reject(new Error(`child exited ${code}: ${err}`));
      const acks = [...out.matchAll(/^ack (\d+)$/gm)].map((m) => Number(m[1]));
      resolve({ acks, recovered });
    });
  });
}

describe("SIGKILL at random moments", () => {
  it("every acknowledged record survives, byte-exact, across repeated kills", async () => {
    const pool = join(scratchDir("shm"), "crash.pool");
    const acked = new Set<number>();
    const moments = [40, 90, 150, 220, 300].map((ms) => ms + Math.floor(Math.random() * 60));
    for (const ms of moments) {
      const { acks, recovered } = await runAndKill(pool, ms);
      // what the previous rounds acknowledged was recovered by this one
      expect(recovered).toBeGreaterThanOrEqual(acked.size);
      for (const a of acks) acked.add(a);
    }
    expect(acked.size).toBeGreaterThan(100);

    const p = Pool.open(pool, { readOnly: true });
    try {
      const bySeq = new Map<number, Buffer>();
      let prev = 0;
      for (const r of walkLog(p)) {
        expect(r.crcOk).toBe(true);
        expect(r.seq).toBe(prev + 1);   // dense and ordered
        prev = r.seq;
        bySeq.set(r.seq, r.data);
      }
      for (const seq of acked) {
        const data = bySeq.get(seq);
        expect(data, `acknowledged seq ${seq} is missing`).toBeDefined();
        const k = Number(data!.readBigUInt64LE(0));   // the request number the mem port wrote
        expect(data!.equals(memRequest(k, SIZE)), `seq ${seq} differs`).toBe(true);
      }
    } finally {
      p.close();
    }
  });
});

// The commit path through a real handler on the mem port: records logged by
// reference, replayed in order after a restart, dumped byte for byte, verified,
// trimmed; a damaged record is caught with its sequence number.
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { Pool } from "../host/core/pool.js";
import { Runtime } from "../host/core/runtime.js";
import { walkLog } from "../host/core/logwalk.js";
import { CONST } from "../host/core/layout.js";
import { buildFixture, memRequest, runCli, scratchDir } from "./helpers.js";

let logAll: string;
let selfTrim: string;
beforeAll(async () => {
  logAll = await buildFixture("log-all");
  selfTrim = await buildFixture("self-trim");
});


type Exports = Record<string, () => number>;

/** poke -- overwrite bytes of a pool file in place, as damage (or a power failure) would */
function poke(path: string, off: number, bytes: Buffer): void {
  const fd = openSync(path, "r+");
  writeSync(fd, bytes, 0, bytes.length, off);
  closeSync(fd);
}

/** flip -- invert one byte of a pool file */
function flip(path: string, off: number): void {
  const fd = openSync(path, "r+");
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, off);
  closeSync(fd);
  poke(path, off, Buffer.from([b[0] ^ 0xff]));
}

describe("logging through a handler on the mem port", () => {
  for (const [where, mode] of [["shm", "pmem"], ["disk", "msync"]] as const) {
    it(`logs N records; after reopen they replay in order and dump byte-exact (${mode})`, () => {
      const path = join(scratchDir(where), "l.pool");
      const N = 500;
      const SIZE = 300;
      let rt = Runtime.open(path, { handler: logAll, create: { size: 16 << 20, slots: 128 } });
      expect(rt.pool.info().persist.mode).toBe(mode);
      let sent = 0;
      while (sent < N) sent += rt.memBatch(SIZE, Math.min(100, N - sent), 4).filled;
      const replies = rt.takeReplies();
      expect(replies).toHaveLength(N);
      // every ack names its own sequence number, in order, on its own connection
      replies.forEach((r, i) => {
        expect(r.data.toString()).toMatch(new RegExp(`^${i + 1} \\d+\\n$`));
        expect(r.conn).toBe(1 + ((i + 1) % 4));
      });
      expect(rt.stats()).toMatchObject({ records: N, committedSeq: N, payloadCopies: 0 });
      rt.close();

      rt = Runtime.open(path, { handler: logAll });
      try {
        expect(rt.recovery).toMatchObject({ records: N, firstSeq: 1, lastSeq: N, nextSeq: N + 1, corrupt: 0, torn: false, replayed: N, wasClean: true });
        const x = rt.handler.exports as unknown as Exports;
        expect(x.replay_count()).toBe(N);
        expect(x.replay_in_order()).toBe(1);
        expect(x.replay_bytes()).toBe(N * SIZE);
        expect(x.replay_word_sum()).toBe((N * (N + 1)) / 2);   // each record's first word is its request number
      } finally {
        rt.close();
      }

      const dump = runCli(["log", "dump", path, "--json"]);
      expect(dump.status, dump.stderr).toBe(0);
      const lines = dump.stdout.trim().split("\n").map((l) => JSON.parse(l));
      expect(lines).toHaveLength(N);
      lines.forEach((rec, i) => {
        expect(rec.seq).toBe(i + 1);
        expect(rec.crcOk).toBe(true);
        expect(Buffer.from(rec.data, "base64").equals(memRequest(i + 1, SIZE))).toBe(true);
      });
      expect(runCli(["log", "verify", path]).stdout).toContain(`ok: ${N} records`);
    });
  }

  it("zero copy: each record references the buffer its request arrived in, and nothing was copied", () => {
    const path = join(scratchDir("shm"), "z.pool");
    const rt = Runtime.open(path, { handler: logAll, create: { size: 16 << 20, slots: 64 } });
    try {
      for (let i = 0; i < 5; i++) rt.memBatch(1024, 40);
      const arrived = new Map(rt.takeReplies().map((r) => {
        const [seq, buf] = r.data.toString().trim().split(" ").map(Number);
        return [seq, buf];
      }));
      expect(arrived.size).toBe(200);
      const recs = [...walkLog(rt.pool)];
      expect(recs).toHaveLength(200);
      for (const rec of recs) {
        expect(rec.extents).toEqual([{ buf: arrived.get(rec.seq), off: 0, len: 1024 }]);
      }
      // 200 different buffers: a logged buffer left its slot and was never refilled
      expect(new Set(recs.map((r) => r.extents[0].buf)).size).toBe(200);
      expect(rt.stats().payloadCopies).toBe(0);
    } finally {
      rt.close();
    }
  });

  it("a record altered after commit fails log verify with its sequence number and is not replayed", () => {
    const path = join(scratchDir("shm"), "v.pool");
    let rt = Runtime.open(path, { handler: logAll, create: { size: 16 << 20, slots: 64 } });
    rt.memBatch(200, 50);
    rt.close();

    const pool = Pool.open(path, { readOnly: true });
    const victim = [...walkLog(pool)].find((r) => r.seq === 17)!;
    const fileOff = pool.bufferFileOffset(victim.extents[0].buf) + 100;
    pool.close();
    flip(path, fileOff);

    const v = runCli(["log", "verify", path]);
    expect(v.status).toBe(1);
    expect(v.stdout).toMatch(/^seq 17: payload checksum mismatch/m);
    expect(v.stderr).toMatch(/PASTE_ERR_LOG_CORRUPT: 1 of 50 records fail their checksum: seq 17/);

    rt = Runtime.open(path, { handler: logAll });
    try {
      expect(rt.recovery).toMatchObject({ records: 49, corrupt: 1, firstCorruptSeq: 17, replayed: 49 });
      expect((rt.handler.exports as unknown as Exports).replay_in_order()).toBe(0);   // 16 -> 18: the damaged one is skipped
    } finally {
      rt.close();
    }
  });

  it("a torn record below the tail is cut, reported, and the log goes on from there", () => {
    const path = join(scratchDir("shm"), "t.pool");
    let rt = Runtime.open(path, { handler: logAll, create: { size: 16 << 20, slots: 64 } });
    rt.memBatch(100, 30);
    rt.close();
    // damage record 21's header line in the log region
    const pool = Pool.open(path, { readOnly: true });
    const rec21 = [...walkLog(pool)].find((r) => r.seq === 21)!;
    const g = pool.info().geometry;
    pool.close();
    poke(path, g.logOffset + CONST.PASTE_LOG_HDR_SIZE + rec21.pos + 9, Buffer.from([0xde, 0xad]));

    expect(runCli(["log", "verify", path]).stderr).toMatch(/PASTE_ERR_LOG_CORRUPT: .*log torn at position \d+: record checksum mismatch/);
    rt = Runtime.open(path, { handler: logAll });
    try {
      expect(rt.recovery).toMatchObject({ records: 20, lastSeq: 20, torn: true, tornPos: rec21.pos, discarded: 10 * 64 });
      rt.memBatch(100, 5);
      expect(rt.takeReplies().map((r) => Number(r.data.toString().split(" ")[0]))).toEqual([21, 22, 23, 24, 25]);
    } finally {
      rt.close();
    }
    expect(runCli(["log", "verify", path]).stdout).toContain("ok: 25 records");
  });

  it("trim returns buffers: ten times the pool's buffers run through a handler that trims", () => {
    const path = join(scratchDir("shm"), "tr.pool");
    const rt = Runtime.open(path, { handler: selfTrim, create: { size: 12 << 20, slots: 64, logSize: 256 << 10 } });
    try {
      const buffers = rt.pool.buffers;
      let sent = 0;
      while (sent < buffers * 10) {
        const b = rt.memBatch(512, 63);
        expect(b.filled, `stalled after ${sent} requests`).toBeGreaterThan(0);
        sent += b.filled;
      }
      const s = rt.stats();
      expect(s.records).toBe(sent);
      expect(s.trimmed).toBeGreaterThan(sent - 200);
      expect(s.liveBuffers).toBeLessThan(200);
      expect(s.freeBuffers).toBeGreaterThan(buffers - 400);
    } finally {
      rt.close();
    }
  });

  it("backpressure: a full pool stops receiving, nothing is overwritten, and a trim resumes it", () => {
    const path = join(scratchDir("shm"), "bp.pool");
    const rt = Runtime.open(path, { handler: logAll, create: { size: 12 << 20, slots: 64 } });
    try {
      let sent = 0;
      for (;;) {
        const b = rt.memBatch(256, 63);
        if (b.filled === 0) break;
        sent += b.filled;
        expect(sent).toBeLessThan(rt.pool.buffers);
      }
      const full = rt.stats();
      expect(full.freeBuffers).toBe(0);
      expect(full.committedSeq).toBe(sent);
      // every record is intact: nothing was overwritten to make room
      const recs = [...walkLog(rt.pool)];
      expect(recs).toHaveLength(sent);
      expect(recs.every((r, i) => r.crcOk && r.data.equals(memRequest(i + 1, 256)))).toBe(true);

      expect(rt.trim(1000)).toBe(1000);
      expect(rt.memBatch(256, 63).filled).toBeGreaterThan(0);
    } finally {
      rt.close();
    }
  });
});

// The tail word is stored after a batch is durable and persisted with the next
// batch (one drain per batch), so a power failure can leave it one batch
// behind. These rewind it in the file, as such a failure would leave it.
describe("the last batch past the persistent tail", () => {
  const tailOffset = (path: string) => {
    const pool = Pool.open(path, { readOnly: true });
    try {
      return pool.info().geometry.logOffset + 64;   // struct paste_log_hdr.tail
    } finally {
      pool.close();
    }
  };
  const records = (path: string) => {
    const pool = Pool.open(path, { readOnly: true });
    try {
      return [...walkLog(pool)].map((r) => ({ ...r, fileOff: pool.bufferFileOffset(r.extents[0].buf) + r.extents[0].off }));
    } finally {
      pool.close();
    }
  };
  const setTail = (path: string, pos: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(pos));
    poke(path, tailOffset(path), b);
  };
  const fiveBatches = (path: string) => {
    const rt = Runtime.open(path, { handler: logAll, create: { size: 16 << 20, slots: 64 } });
    for (let i = 0; i < 5; i++) rt.memBatch(200, 20);
    rt.close();
    return records(path);
  };

  it("a batch whose tail never reached the media is recovered whole, and the log goes on after it", () => {
    const path = join(scratchDir("shm"), "b.pool");
    const recs = fiveBatches(path);
    expect(recs.length).toBe(100);
    setTail(path, recs[80].pos);   // records 81..100: the last batch, its tail lost
    expect(records(path).length).toBe(80);   // a reader trusts the tail alone
    const rt = Runtime.open(path, { handler: logAll });
    try {
      expect(rt.recovery).toMatchObject({ records: 100, lastSeq: 100, beyondTail: 20, torn: false, corrupt: 0, replayed: 100 });
      expect((rt.handler.exports as unknown as Exports).replay_in_order()).toBe(1);
      rt.memBatch(200, 3);
      expect(rt.takeReplies().map((r) => Number(r.data.toString().split(" ")[0]))).toEqual([101, 102, 103]);
    } finally {
      rt.close();
    }
    expect(runCli(["log", "verify", path]).stdout).toContain("ok: 103 records");
  });

  it("past the tail, a record whose payload the power cut ends the log: not reported corrupt, never replayed", () => {
    const path = join(scratchDir("shm"), "c.pool");
    const recs = fiveBatches(path);
    setTail(path, recs[80].pos);
    flip(path, recs[90].fileOff + 50);   // seq 91's payload did not reach the media
    const rt = Runtime.open(path, { handler: logAll });
    try {
      expect(rt.recovery).toMatchObject({ records: 90, lastSeq: 90, beyondTail: 10, torn: false, corrupt: 0, replayed: 90 });
      rt.memBatch(200, 1);
      expect(rt.takeReplies().map((r) => Number(r.data.toString().split(" ")[0]))).toEqual([91]);
    } finally {
      rt.close();
    }
  });

  it("a record an earlier recovery cut off never comes back, even when it looks whole again", () => {
    const path = join(scratchDir("shm"), "e.pool");
    const recs = fiveBatches(path);
    setTail(path, recs[80].pos);
    flip(path, recs[90].fileOff + 50);
    let rt = Runtime.open(path, { handler: logAll });
    expect(rt.recovery).toMatchObject({ records: 90, beyondTail: 10 });
    rt.close();
    // seq 91..100 still lie past the tail, and now every one of them checks out:
    // only their epoch (the run before that recovery) tells they were cut off
    flip(path, recs[90].fileOff + 50);
    rt = Runtime.open(path, { handler: logAll });
    try {
      expect(rt.recovery).toMatchObject({ records: 90, lastSeq: 90, beyondTail: 0, replayed: 90 });
    } finally {
      rt.close();
    }
  });
});

// Damaged and foreign files: each gives its own clear error, and open leaves
// the file exactly as it was (compared byte for byte).
import { createHash } from "node:crypto";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  BadMagicError, NotAPoolError, PoolCorruptError, PoolNotFoundError, PoolTruncatedError,
  UnsupportedVersionError, type PasteError,
} from "../host/core/errors.js";
import { crc32c } from "../host/core/crc32c.js";
import { SUPER } from "../host/core/layout.js";
import { Pool } from "../host/core/pool.js";
import Redis from "ioredis";
import { root, runCli, scratchDir, startServer } from "./helpers.js";

const SIZE = 16 << 20;

function freshPool(): string {
  const path = join(scratchDir("shm"), "p.pool");
  Pool.create(path, { size: SIZE, slots: 64 });
  return path;
}

function patch(path: string, off: number, bytes: Buffer | number[], fixCrc = false) {
  const f = readFileSync(path);
  Buffer.from(bytes as number[]).copy(f, off);
  if (fixCrc) f.writeUInt32LE(crc32c(f.subarray(0, SUPER.csum)), SUPER.csum);
  writeFileSync(path, f);
}

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

function openError(path: string): PasteError {
  try {
    Pool.open(path).close();
  } catch (e) {
    return e as PasteError;
  }
  throw new Error(`${path} opened without an error`);
}

const cases: [string, () => string, new (...a: never[]) => PasteError, string, RegExp][] = [
  ["a file truncated to half its size", () => { const p = freshPool(); truncateSync(p, SIZE / 2); return p; },
    PoolTruncatedError, "PASTE_ERR_POOL_TRUNCATED", /truncated: 8388608 bytes, but its superblock says 16777216/],
  ["a file truncated inside its superblock", () => { const p = freshPool(); truncateSync(p, 100); return p; },
    PoolTruncatedError, "PASTE_ERR_POOL_TRUNCATED", /shorter than its 256-byte superblock/],
  ["a wrong magic", () => { const p = freshPool(); patch(p, 0, Buffer.from("XASTPOOL")); return p; },
    BadMagicError, "PASTE_ERR_BAD_MAGIC", /bad magic 58415354504f4f4c at offset 0 .*damaged pool/],
  ["a flipped byte in the geometry", () => { const p = freshPool(); const f = readFileSync(p); patch(p, SUPER.nbufs, [f[SUPER.nbufs] ^ 0x10]); return p; },
    PoolCorruptError, "PASTE_ERR_POOL_CORRUPT", /superblock checksum mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)/],
  ["a flipped byte in a reserved word", () => { const p = freshPool(); patch(p, 200, [0x01]); return p; },
    PoolCorruptError, "PASTE_ERR_POOL_CORRUPT", /checksum mismatch/],
  ["a future format version (with a valid checksum)", () => { const p = freshPool(); patch(p, SUPER.version, [2, 0, 0, 0], true); return p; },
    UnsupportedVersionError, "PASTE_ERR_VERSION", /format version 2 is newer than this paste-host supports \(1\)/],
  ["an unknown incompatible feature bit", () => { const p = freshPool(); patch(p, SUPER.incompat, [0, 1, 0, 0], true); return p; },
    UnsupportedVersionError, "PASTE_ERR_VERSION", /features 0x00000100 unknown/],
  ["a checksummed superblock with impossible geometry", () => { const p = freshPool(); patch(p, SUPER.ring_ofs, [0, 0, 0x10, 0], true); return p; },
    PoolCorruptError, "PASTE_ERR_POOL_CORRUPT", /field ring_ofs is inconsistent/],
  ["a text file", () => { const p = join(scratchDir("shm"), "notes.txt"); writeFileSync(p, "hello, this is not a pool\n"); return p; },
    NotAPoolError, "PASTE_ERR_NOT_A_POOL", /is not a pool: no "PASTPOOL" superblock at offset 0 \(file is 26 bytes\)/],
  ["an empty file", () => { const p = join(scratchDir("shm"), "empty"); writeFileSync(p, ""); return p; },
    NotAPoolError, "PASTE_ERR_NOT_A_POOL", /file is 0 bytes/],
  ["a large non-pool file", () => { const p = join(scratchDir("shm"), "zeros"); writeFileSync(p, Buffer.alloc(1 << 20, 0x5a)); return p; },
    NotAPoolError, "PASTE_ERR_NOT_A_POOL", /not a pool/],
];

describe("opening damaged and foreign files", () => {
  for (const [what, make, Cls, code, message] of cases) {
    it(`${what}: ${code}, file unchanged`, () => {
      const path = make();
      const before = sha(path);
      const err = openError(path);
      expect(err).toBeInstanceOf(Cls);
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
      expect(err.message).toContain(path);
      // read-only inspection refuses it the same way
      expect(() => Pool.open(path, { readOnly: true })).toThrow(Cls);
      expect(sha(path)).toBe(before);
    });
  }

  it("the CLI prints the code and message and exits 1", () => {
    const path = freshPool();
    patch(path, 0, Buffer.from("XASTPOOL"));
    const r = runCli(["pool", "info", path]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^paste-host: PASTE_ERR_BAD_MAGIC: .*bad magic/);
  });

  it("a missing file says how to create one", () => {
    const path = join(scratchDir("shm"), "nope.pool");
    expect(() => Pool.open(path)).toThrow(PoolNotFoundError);
    expect(() => Pool.open(path)).toThrow(/paste-host pool create .*nope.pool --size 64M/);
  });

  it("an intact pool opens, and a clean close is recorded", () => {
    const path = freshPool();
    const p = Pool.open(path);
    expect(p.info().state.openCount).toBe(1);
    p.close();
    const ro = Pool.open(path, { readOnly: true });
    try {
      expect(ro.info().state.cleanShutdown).toBe(true);
    } finally {
      ro.close();
    }
  });
});

// The rings hold nothing durable: recovery writes their layout again from
// the superblock (native/format.c, paste_netmap_layout) rather than trust the
// file's ring offsets, which once sent its stores wherever they pointed (a
// host on a pool with a zeroed ring area served and never answered).
describe("a pool whose ring area was damaged", () => {
  for (const [what, fill] of [["zeroed", 0x00], ["overwritten with 0xff", 0xff]] as const) {
    it(`${what}: the host serves, with every acknowledged key`, async () => {
      const pool = join(scratchDir("shm"), "r.pool");
      const kv = join(root, "samples", "kv-wal", "kv-wal.wasm");
      const values = new Map<string, string>();
      let s = await startServer({ pool, handler: kv, createSize: "32M" });
      let r = new Redis({ port: s.port, host: "127.0.0.1", maxRetriesPerRequest: 1 });
      for (let i = 0; i < 50; i++) {
        values.set(`k${i}`, `v${i}:${"x".repeat(i * 20)}`);
        expect(await r.set(`k${i}`, values.get(`k${i}`)!)).toBe("OK");
      }
      r.disconnect();
      expect(await s.stop("SIGKILL")).toBe("SIGKILL");
      const f = readFileSync(pool);
      const ringOfs = Number(f.readBigUInt64LE(SUPER.ring_ofs));
      const ringSize = Number(f.readBigUInt64LE(SUPER.ring_size));
      f.fill(fill, ringOfs, ringOfs + ringSize);
      writeFileSync(pool, f);
      s = await startServer({ pool, handler: kv });
      try {
        r = new Redis({ port: s.port, host: "127.0.0.1", maxRetriesPerRequest: 1, commandTimeout: 5000 });
        for (const [k, v] of values) expect(await r.get(k)).toBe(v);
        expect(await r.set("after", "1")).toBe("OK");
        expect(await r.get("after")).toBe("1");
        r.disconnect();
      } finally {
        await s.stop("SIGKILL");
      }
    });
  }
});

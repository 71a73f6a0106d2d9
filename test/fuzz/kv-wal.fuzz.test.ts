// kv-wal.fuzz.test.ts -- kv-wal against redis-server 7, on generated RESP2
// streams (gen/resp.ts): the same bytes go to both, cut at the same points;
// the replies must be the same, byte for byte, but for an error's wording
// (README, "Security": the differences, and why), and so must the closing of
// the connection; after each stream every key reads back the same on both.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import Redis from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../host/server/spawn.js";
import { haveProgram, root, startServer, type Server } from "../helpers.js";
import { fuzz } from "./config.js";
import { KEYS, encode, stream } from "./gen/resp.js";
import { replies } from "./resp-replies.js";
import { converse, splitAt } from "./wire.js";

/** After the stream: a framing error on both (or the end of a bulk both wait for), so neither is left guessing. */
const SENTINEL = "\r\n*x\r\n";

describe("kv-wal against redis-server 7", () => {
  const dir = mkdtempSync("/dev/shm/paste-fuzz-kv-");
  let kv: Server | undefined;
  let redis: ChildProcess | undefined;
  let redisPort = 0;
  let a: Redis, b: Redis;

  beforeAll(async () => {
    // PASTE_FUZZ_HANDLER: `npm run fuzz -- --only kv-wal --handler yours.wasm`
    kv = await startServer({ pool: join(dir, "kv.pool"), handler: process.env.PASTE_FUZZ_HANDLER ?? join(root, "samples", "kv-wal", "kv-wal.wasm") });
  });
  afterAll(async () => {
    a?.disconnect();
    b?.disconnect();
    redis?.kill("SIGKILL");
    await kv?.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  async function startRedis(): Promise<void> {
    redisPort = await freePort();
    redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
    const end = Date.now() + 10_000;
    for (;;) {
      const up = await converse(redisPort, [Buffer.from("PING\r\n")], { idleMs: 50 }).then((c) => c.data.toString() === "+PONG\r\n", () => false);
      if (up) break;
      if (Date.now() > end) throw new Error(`redis-server did not start on port ${redisPort}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    b = new Redis({ port: redisPort, host: "127.0.0.1" });
    a = new Redis({ port: kv!.port, host: "127.0.0.1" });
  }

  it("answers every generated stream as redis-server does, and holds the same keys after it", async (ctx) => {
    haveProgram("redis-server", "redis-server", ctx);
    await startRedis();
    const f = fuzz<[fc.Arbitrary<unknown>]>("kv-wal", 40);
    await fc.assert(fc.asyncProperty(stream, async (st) => {
      f.tick();
      await Promise.all([a.flushall(), b.flushall()]);
      const bytes = Buffer.from(st.commands.map(encode).join("") + SENTINEL, "latin1");
      const chunks = splitAt(bytes, st.cuts);
      const [got, want] = await Promise.all([converse(kv!.port, chunks, { idleMs: 250 }), converse(redisPort, chunks, { idleMs: 250 })]);
      const sent = `the stream ${JSON.stringify(bytes.toString("latin1"))}`;
      expect(replies(got.data), `replies to ${sent}`).toEqual(replies(want.data));
      expect(got.closed, `closed the connection after ${sent}`).toBe(want.closed);
      const keys = KEYS.map((k) => Buffer.from(k, "latin1"));
      const [ka, kb] = await Promise.all([Promise.all(keys.map((k) => a.getBuffer(k))), Promise.all(keys.map((k) => b.getBuffer(k)))]);
      expect(ka.map((v) => v?.toString("latin1") ?? null), `values after ${sent}`).toEqual(kb.map((v) => v?.toString("latin1") ?? null));
      expect(await a.dbsize(), `DBSIZE after ${sent}`).toBe(await b.dbsize());
    }), f.parameters);
  }, fuzz("kv-wal", 40).timeoutMs);
});

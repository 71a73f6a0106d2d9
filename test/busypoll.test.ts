// Busy polling (native/busypoll.c): a host whose requests come soon after its
// replies spins for the next one instead of sleeping in the kernel, an idle
// host sleeps, --busy-poll 0 never spins, and nothing of what a client gets
// changes. Runs once per engine (test/vitest.config.ts). The budget in the
// tests is 100 ms, the most allowed, so that "soon" holds on any machine and
// under any load: what is checked is the counting, never a time.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Redis from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { root, runCli, scratchDir, startServer, until, type Server } from "./helpers.js";

const kv = join(root, "samples", "kv-wal", "kv-wal.wasm");
const running: Server[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop("SIGKILL");
});

interface BusyStatus { busyPoll: { budgetUs: number; spins: number; hits: number } }

async function statusOf(s: Server, pool: string): Promise<BusyStatus> {
  await until(() => /admin API on (http:\/\/127\.0\.0\.1:\d+)/.test(s.output()));
  const url = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.output())![1];
  const token = readFileSync(`${pool}.token`, "utf8").trim();
  return (await fetch(`${url}/v1/status`, { headers: { Authorization: `Bearer ${token}` } })).json();
}

/** settled -- the status once the once-a-second snapshot has caught up with everything before the call. */
async function settled(s: Server, pool: string): Promise<BusyStatus> {
  await new Promise((r) => setTimeout(r, 1300));
  return statusOf(s, pool);
}

/** oneAtATime -- n SETs of random binary values, each sent after the last reply; every value read back. */
async function oneAtATime(port: number, n: number): Promise<void> {
  const r = new Redis({ port, host: "127.0.0.1" });
  try {
    const sent = new Map<string, Buffer>();
    for (let i = 0; i < n; i++) {
      const key = `k${randomBytes(4).toString("hex")}`;
      const value = randomBytes(1 + (i % 1500));
      expect(await r.set(key, value)).toBe("OK");
      sent.set(key, value);
    }
    for (const [key, value] of sent) expect(await r.getBuffer(key)).toEqual(value);
  } finally {
    r.disconnect();
  }
}

describe("busy polling", () => {
  it("is on by default, and the startup line and the status say so", async () => {
    const pool = join(scratchDir("shm"), "d.pool");
    const s = await startServer({ pool, handler: kv });
    running.push(s);
    expect(s.output()).toMatch(/port engine \S+ \([^)]*\), busy poll 50 us;/);
    expect((await statusOf(s, pool)).busyPoll.budgetUs).toBe(50);
    const r = runCli(["status", "--pool", pool]);
    expect(r.out).toMatch(/^polling +busy poll 50 µs before sleeping/m);
  });

  it("a client that waits on each reply finds the host spinning for its next request; its replies are unchanged", async () => {
    const pool = join(scratchDir("shm"), "s.pool");
    const s = await startServer({ pool, handler: kv, extra: ["--busy-poll", "100000"] });
    running.push(s);
    await oneAtATime(s.port, 400);
    const st = (await settled(s, pool)).busyPoll;
    expect(st.budgetUs).toBe(100000);
    // 800 requests one at a time: after the first, each poll found work
    // within 100 ms and armed the next one, which spun for the next request
    expect(st.spins).toBeGreaterThan(400);
    expect(st.hits).toBeGreaterThan(400);
    expect(st.hits).toBeLessThanOrEqual(st.spins);
    const r = runCli(["status", "--pool", pool]);
    expect(r.out).toMatch(new RegExp(`^polling +busy poll 100000 µs before sleeping; ${st.hits} of ${st.spins} spins found work`, "m"));
  });

  it("an idle host does not spin: once no request comes within the budget, it sleeps until one does", async () => {
    const pool = join(scratchDir("shm"), "i.pool");
    const s = await startServer({ pool, handler: kv, extra: ["--busy-poll", "100000"] });
    running.push(s);
    await oneAtATime(s.port, 50);
    const a = (await settled(s, pool)).busyPoll;   // the last spin has run out by now
    const b = (await settled(s, pool)).busyPoll;
    expect(a.spins).toBeGreaterThan(0);
    expect(b.spins).toBe(a.spins);
    expect(b.hits).toBe(a.hits);
    // and a request wakes it as before; spinning comes back with the load
    await oneAtATime(s.port, 50);
    expect((await settled(s, pool)).busyPoll.spins).toBeGreaterThan(b.spins);
  });

  it("--busy-poll 0 never spins and says so; the replies are the same", async () => {
    const pool = join(scratchDir("shm"), "o.pool");
    const s = await startServer({ pool, handler: kv, extra: ["--busy-poll", "0"] });
    running.push(s);
    expect(s.output()).toMatch(/, busy poll off;/);
    await oneAtATime(s.port, 200);
    expect((await settled(s, pool)).busyPoll).toEqual({ budgetUs: 0, spins: 0, hits: 0 });
    expect(runCli(["status", "--pool", pool]).out).toMatch(/^polling +busy poll off/m);
  });

  it("--busy-poll out of range or not a number is a usage error naming the range", () => {
    const pool = join(scratchDir("shm"), "u.pool");
    for (const bad of ["100001", "-5", "fast", "1.5"]) {
      const r = runCli(["run", "--pool", pool, "--handler", kv, "--listen", "tcp://127.0.0.1:0", "--create-size", "16M",
        "--admin", "off", "--busy-poll", bad]);
      expect(r.status, bad).toBe(2);
      expect(r.out).toContain(`invalid --busy-poll '${bad}': microseconds from 0 (off) to 100000`);
      expect(r.out).not.toMatch(/serving tcp:/);
    }
  });
});

// paste-host torture: really SIGKILLs a host under load and restarts it. It
// must find no loss in kv-wal (also with random keys on a pool its cleaner
// must keep clean, real redis-benchmark traffic beside and redis-cli reading
// back), and must find losses in a handler that acknowledges writes it never
// logs.
import { describe, expect, it } from "vitest";
import { runTorture } from "../host/tools/torture.js";
import { buildFixture, haveProgram, runCli } from "./helpers.js";

describe("paste-host torture", () => {
  it("kv-wal: every acknowledged write survives 4 SIGKILLs, byte-exact", () => {
    const r = runCli(["torture", "--kills", "4", "--duration", "400", "--conns", "6"], {}, 110_000);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const m = /kills: 4, writes sent: (\d+), acknowledged: (\d+), reads verified: (\d+), losses: 0/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThan(200);
    expect(Number(m![3])).toBeGreaterThan(50);
    expect(r.stderr).toMatch(/kill 4\/4 after \d+ ms/);
  }, 120_000);

  it("kv-wal with deploys all through the load: kills land around deploys, nothing acknowledged is lost", () => {
    const r = runCli(["torture", "--kills", "3", "--duration", "1000", "--conns", "4", "--deploy-every", "100"], {}, 110_000);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const m = /kills: 3, .*acknowledged: (\d+), reads verified: (\d+), deploys: (\d+), losses: 0/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(200);
    expect(Number(m![3])).toBeGreaterThan(0);
  }, 120_000);

  it("kv-random: random keys through a 12 MiB pool keep the cleaner busy, redis-benchmark writes beside, redis-cli reads back; nothing is lost", (ctx) => {
    haveProgram("redis-benchmark", "redis-tools", ctx);
    haveProgram("redis-cli", "redis-tools", ctx);
    const r = runCli(["torture", "--workload", "kv-random", "--kills", "4", "--duration", "700", "--conns", "4", "--redis-tools"], {}, 110_000);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const m = /kills: 4, writes sent: (\d+), acknowledged: (\d+), reads verified: (\d+), losses: 0/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThan(200);
    expect(Number(m![3])).toBeGreaterThan(200);
    // the cleaner moved live values while the kills landed
    const c = /cleaner .*: (\d+) live values moved, (\d+) dead ones dropped/.exec(r.stdout);
    expect(c, r.stdout).not.toBeNull();
    expect(Number(c![1])).toBeGreaterThan(0);
  }, 120_000);

  it("catches a handler that acknowledges writes it never logs", async () => {
    const forgetful = await buildFixture("kv-forgetful");
    const r = await runTorture({ kills: 1, handler: forgetful, conns: 2, minMs: 100, maxMs: 200 });
    expect(r.acked).toBeGreaterThan(0);
    expect(r.losses.length).toBeGreaterThan(0);
    expect(r.losses[0]).toMatch(/round 1: t\d+:\d+ is missing \(acknowledged w\d+\)/);
    const cli = runCli(["torture", "--kills", "1", "--duration", "150", "--handler", forgetful], {}, 110_000);
    expect(cli.status).toBe(1);
    expect(cli.stdout).toMatch(/LOSS round 1: .* is missing/);
    expect(cli.stderr).toMatch(/PASTE_ERR_TORTURE_LOSS: \d+ acknowledged write\(s\) lost or damaged/);
  }, 120_000);
});

// Crash consistency under simulated power failure: every persist step of the
// commit path (payload and record flushes, fences, the tail, trims) as a crash
// point, with random cache evictions, recovery checked on every image. And the
// checker's own test: a build that persists the tail before the payload must
// be caught.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCrashtest } from "../host/tools/crashtest.js";
import { buildFixture, root, runCli, scratchDir } from "./helpers.js";

let logAll: string;
beforeAll(async () => {
  logAll = await buildFixture("log-all");
});

describe("crashtest", () => {
  it("a logging handler with trims: every persist step, two eviction draws each, all recover", async () => {
    const r = await runCrashtest({ handler: logAll, images: 400, seed: 3 });
    expect(r.steps).toBeGreaterThan(100);
    expect(r.images).toBe(r.steps * 2);               // enumerated, not sampled
    expect(r.failures).toEqual([]);
    expect(r.passed).toBe(r.images);
    expect(r.committedMax).toBe(40);
  }, 120_000);

  for (const [sample, workload] of [["wal-append", "frames"], ["kv-wal", "kv"], ["http-wal", "http"]] as const) {
    it(`the ${sample} sample: sampled crash images all recover`, async () => {
      const r = await runCrashtest({ handler: join(root, "samples", sample, `${sample}.wasm`), workload, images: 80, seed: 11 });
      expect(r.committedMax).toBe(40);                // the workload speaks the sample's protocol: every request logged
      expect(r.failures).toEqual([]);
      expect(r.passed).toBe(80);
    }, 120_000);
  }

  it("kv-wal's cleaner (dead SETs dropped, live ones copied into shared buffers, then trim): crash images around it all recover", async () => {
    // 4400 SETs on 7 keys through a 4 MiB pool: the host calls on_clean
    // many times, and the images are cut among the last 1500 persist steps
    const r = await runCrashtest({
      handler: join(root, "samples", "kv-wal", "kv-wal.wasm"), workload: "kv", requests: 4400, size: 100,
      poolSize: 4 << 20, last: 1500, images: 40, seed: 2,
    });
    expect(r.trimmedMax).toBeGreaterThan(3000);        // the sample cleaned and trimmed its own log
    expect(r.failures).toEqual([]);
  }, 180_000);

  it("catches a commit path that persists the tail before the payload, and replays the failure exactly", () => {
    const dir = scratchDir("disk");
    const build = spawnSync("make", ["-s", "-C", join(root, "native"), `OUT=${join(dir, "lib")}`, "BROKEN_ORDER=1"], { encoding: "utf8" });
    expect(build.status, build.stderr).toBe(0);
    const env = { PASTE_NATIVE_LIB: join(dir, "lib", "libpaste.so") };
    const r = runCli(["crashtest", logAll, "--images", "120", "--seed", "5", "--keep-dir", dir], env, 170_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/PASTE_ERR_CRASHTEST: \d+ of \d+ crash images broke an invariant/);
    const fail = /FAIL step (\d+) draw (\d+): (.*)\n\s+image (\S+); replay: paste-host crashtest \S+ --seed 5 --point (\d+:\d+)/.exec(r.stdout);
    expect(fail, r.stdout).not.toBeNull();
    expect(fail![3]).toMatch(/committed .* missing|failing their checksum|does not hold the bytes/);
    expect(readdirSync(dir).some((f) => /^crash-seed5-step\d+-draw\d+\.pool$/.test(f))).toBe(true);
    // the printed point rebuilds the same image and the same verdict
    const again = runCli(["crashtest", logAll, "--seed", "5", "--point", fail![5], "--keep-dir", dir], env);
    expect(again.status).toBe(1);
    expect(again.stdout).toContain(fail![3]);
    // and the correct library passes that very point
    const fixed = runCli(["crashtest", logAll, "--seed", "5", "--point", fail![5], "--keep-dir", dir]);
    expect(fixed.status, fixed.stdout).toBe(0);
  }, 180_000);
});

// A pool on a disk is written whole when it is created (native/format.c,
// write_zeros): posix_fallocate alone leaves unwritten extents, and the first
// write-back into each one converts it, a metadata change that every msync of
// a fresh pool then pays for. The zeros go around the page cache (O_DIRECT),
// so they leave no large folios there for later msyncs to write whole.
import { spawnSync } from "node:child_process";
import { statfsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { haveProgram, runCli, scratchDir } from "./helpers.js";

const TMPFS_MAGIC = 0x01021994;

describe("a disk pool at create", () => {
  it("has every block written (no unwritten extent), and the page cache holds little of it", (ctx) => {
    haveProgram("filefrag", "e2fsprogs", ctx);
    haveProgram("fincore", "util-linux", ctx);
    const dir = scratchDir("disk");
    if (statfsSync(dir).type === TMPFS_MAGIC) ctx.skip(`${dir} is on tmpfs here: no disk to test on`);
    const pool = join(dir, "z.pool");
    const made = runCli(["pool", "create", pool, "--size", "64M"]);
    expect(made.status, made.out).toBe(0);
    expect(made.out).toMatch(/persist msync/);
    const frag = spawnSync("filefrag", ["-v", pool], { encoding: "utf8" });
    if (/FIEMAP|not supported|Operation not supported/i.test(frag.stderr + frag.stdout) && frag.status !== 0) {
      ctx.skip(`filefrag cannot map extents on this filesystem: ${frag.stderr.trim()}`);
    }
    expect(frag.status, frag.stderr).toBe(0);
    const extents = frag.stdout.split("\n").filter((l) => /^\s*\d+:\s+\d+\.\.\s*\d+:/.test(l));
    expect(extents.length).toBeGreaterThan(0);
    expect(extents.filter((l) => /unwritten/.test(l)), frag.stdout).toEqual([]);
    // resident pages: what format wrote through its mapping (16 MiB here), not the 64 MiB of zeros
    const core = spawnSync("fincore", ["--bytes", "--noheadings", "--output", "RES", pool], { encoding: "utf8" });
    expect(core.status, core.stderr).toBe(0);
    expect(Number(core.stdout.trim())).toBeLessThan(32 << 20);
  });

  it("a tmpfs pool is not written whole: tmpfs has no extents, and its pages stay unallocated", (ctx) => {
    haveProgram("fincore", "util-linux", ctx);
    const pool = join(scratchDir("shm"), "t.pool");
    const made = runCli(["pool", "create", pool, "--size", "64M"]);
    expect(made.status, made.out).toBe(0);
    const core = spawnSync("fincore", ["--bytes", "--noheadings", "--output", "RES", pool], { encoding: "utf8" });
    expect(core.status, core.stderr).toBe(0);
    expect(Number(core.stdout.trim())).toBeLessThan(32 << 20);
  });
});

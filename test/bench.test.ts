// `paste-host bench --quick` as CI smoke: it runs every configuration it can
// and writes the JSON, the Markdown table and the SVG chart. No timing is
// asserted here (numbers live in the report, not in tests).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, scratchDir } from "./helpers.js";

describe("paste-host bench --quick", () => {
  it("writes results/<date>.json, .md and .svg with every configuration", () => {
    const out = scratchDir("disk");
    const r = runCli(["bench", "--quick", "--out", out], {}, 280_000);   // ~25 s alone, more beside other test files
    expect(r.status, `${r.signal ?? ""} ${r.stderr.slice(-2000)}`).toBe(0);
    const files = readdirSync(out).sort();
    expect(files.map((f) => f.replace(/^.*\./, ""))).toEqual(["json", "md", "svg"]);
    const report = JSON.parse(readFileSync(join(out, files[0]), "utf8"));
    expect(report.machine).toMatchObject({ cores: expect.any(Number), flush: expect.stringMatching(/^clwb|clflushopt|clflush$/) });
    const mem = report.results.filter((x: { table: string }) => x.table === "mem");
    expect(mem).toHaveLength(12);
    for (const x of report.results) {
      expect(x.requestsPerSec, `${x.config} ${x.client ?? x.size}`).toBeGreaterThan(0);
      expect(x.p50ms).toBeGreaterThan(0);
    }
    const md = readFileSync(join(out, files[1]), "utf8");
    expect(md).toMatch(/## mem port/);
    expect(md).toMatch(/The Wasm boundary/);
    if (!report.skipped.length) {
      expect(md).toMatch(/kv-wal, pmem \(tmpfs\) \| -c 50 \|/);
      expect(md).toMatch(/kv-wal, pmem \(tmpfs\), epoll engine \| -c 50 -P 16 \|/);
      expect(md).toMatch(/kv-wal, pmem \(tmpfs\), busy poll off \| -c 1 \|/);
      // every TCP row has the server's CPU per request, measured from /proc/PID/stat
      expect(md).toMatch(/server CPU µs\/req/);
      for (const x of report.results.filter((y: { table: string }) => y.table !== "mem")) expect(x.cpuUs, x.config).toBeGreaterThan(0);
      // and, on a disk pool, what reached the disk per request (msync writes whole pages)
      for (const x of report.results.filter((y: { config: string }) => y.config.includes("disk"))) expect(x.diskBytes, x.config).toBeGreaterThan(100);
      expect(md).toMatch(/http-wal, copy logging/);
      // the cleaner's table: ten times the pool written through it, no SET refused, every key reads back
      expect(md).toMatch(/## The cleaner/);
      expect(report.cleaner).toHaveLength(4);
      const random = report.cleaner.filter((x: { config: string }) => x.config.includes("60% of buffer bytes"));
      expect(random).toHaveLength(2);
      for (const x of random) expect(x.readBack).toBe(x.keys);
      expect(random[1].sets * 1024).toBeGreaterThanOrEqual(10 * (16 << 20) - 1024);
      const small = report.cleaner[3];
      expect(small.readBack + small.missing).toBe(small.keys);            // none damaged
      expect(small.readBack).toBeGreaterThan(small.keys * 0.95);
    }
    expect(readFileSync(join(out, files[2]), "utf8")).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/);
    expect(r.stderr).toMatch(/runs in [\d.]+ s/);   // the progress line's summary
  }, 300_000);
});

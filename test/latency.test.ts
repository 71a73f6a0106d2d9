// Commit latency: the data path's per-bucket counts (core/latency.ts) and the
// Histogram that reports them to Prometheus as measured (server/metrics.ts).
import client from "prom-client";
import { describe, expect, it } from "vitest";
import { COMMIT_BUCKETS_S, CommitLatency } from "../host/core/latency.js";
import { CommitHistogram } from "../host/server/metrics.js";

/** bucketsOf -- the exposition's cumulative bucket lines of one histogram, by le. */
function bucketsOf(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, "gm"))) out.set(m[1], Number(m[2]));
  return out;
}

describe("commit latency", () => {
  it("counts each commit in the bucket whose bound it does not exceed, bounds inclusive", () => {
    const c = new CommitLatency();
    for (const ns of [500, 1000, 1001, 4999, 5000, 150_000, 2e8]) c.record(ns);
    const s = c.take();
    expect(s.count).toBe(7);
    expect(s.buckets).toHaveLength(COMMIT_BUCKETS_S.length + 1);
    const at = (us: number) => s.buckets[COMMIT_BUCKETS_S.findIndex((b) => Math.abs(b - us / 1e6) < 1e-12)];
    expect(at(1)).toBe(2);     // 0.5 µs and exactly 1 µs
    expect(at(2)).toBe(1);     // 1.001 µs
    expect(at(5)).toBe(2);     // 4.999 and exactly 5 µs
    expect(at(200)).toBe(1);   // 150 µs
    expect(s.buckets.at(-1)).toBe(1);   // 200 ms: above the top bound
    expect(s.sumS).toBeCloseTo((500 + 1000 + 1001 + 4999 + 5000 + 150_000 + 2e8) / 1e9, 12);
    expect(s.maxUs).toBe(200_000);
    // a report starts afresh
    expect(c.take()).toMatchObject({ count: 0, meanUs: 0, maxUs: 0, p50Us: 0, p99Us: 0, sumS: 0 });
  });

  it("reports p50 and p99 of the report's commits to within 1%", () => {
    const c = new CommitLatency();
    for (let i = 1; i <= 1000; i++) c.record(i * 1000);   // 1 .. 1000 µs
    const s = c.take();
    expect(s.p50Us).toBeGreaterThanOrEqual(500 * 0.99);
    expect(s.p50Us).toBeLessThanOrEqual(500 * 1.01);
    expect(s.p99Us).toBeGreaterThanOrEqual(990 * 0.99);
    expect(s.p99Us).toBeLessThanOrEqual(990 * 1.01);
    expect(s.meanUs).toBeCloseTo(500.5, 6);
  });

  it("p50 and p99 agree with the exact percentiles to 1/128 over six decades of latency", () => {
    let x = 12345;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (const spread of [2, 100, 1e6]) {   // from narrow to 50 ns .. 50 ms
      const c = new CommitLatency();
      const all: number[] = [];
      for (let i = 0; i < 5000; i++) {
        const ns = Math.round(50 * spread ** rand());
        all.push(ns);
        c.record(ns);
      }
      all.sort((a, b) => a - b);
      const exact = (p: number) => all[Math.ceil((p / 100) * all.length) - 1];
      const s = c.take();
      for (const [got, want] of [[s.p50Us * 1000, exact(50)], [s.p99Us * 1000, exact(99)]]) {
        expect(Math.abs(got - want) / want, `${got} for ${want} (spread ${spread})`).toBeLessThanOrEqual(1 / 128);
      }
    }
  });

  it("the Histogram exposes the reports' summed counts, _sum and _count exactly", async () => {
    const registry = new client.Registry();
    const h = new CommitHistogram(registry);
    const a = new CommitLatency();
    const b = new CommitLatency();
    for (const ns of [800, 3000, 3000, 70_000]) a.record(ns);
    for (const ns of [900, 40e6, 3e9]) b.record(ns);
    h.add(a.take());
    h.add(b.take());
    const text = await registry.metrics();
    expect(text).toMatch(/^# TYPE paste_commit_latency_seconds histogram$/m);
    const got = bucketsOf(text, "paste_commit_latency_seconds");
    expect(got.size).toBe(COMMIT_BUCKETS_S.length + 1);
    expect(got.get("0.000001")).toBe(2);
    expect(got.get("0.000005")).toBe(4);
    expect(got.get("0.0001")).toBe(5);
    expect(got.get("0.05")).toBe(6);
    expect(got.get("0.1")).toBe(6);
    expect(got.get("+Inf")).toBe(7);
    expect(text).toMatch(/^paste_commit_latency_seconds_count 7$/m);
    const sum = Number(/^paste_commit_latency_seconds_sum (\S+)$/m.exec(text)![1]);
    expect(sum).toBeCloseTo((800 + 3000 + 3000 + 70_000 + 900 + 40e6 + 3e9) / 1e9, 9);
    // the JSON view agrees with the text
    const json = await registry.getMetricsAsJSON();
    const inf = json.find((m) => m.name === "paste_commit_latency_seconds")!.values.find((v) => v.labels.le === "+Inf");
    expect(inf?.value).toBe(7);
  });

  it("refuses a report with another bucket layout rather than misfiling its counts", () => {
    const h = new CommitHistogram(new client.Registry());
    const s = new CommitLatency().take();
    expect(() => h.add({ ...s, buckets: s.buckets.slice(1) })).toThrow(/expected 17/);
  });
});

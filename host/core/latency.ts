// latency.ts -- commit latency, gathered where commits happen (the data path's
// thread) and handed over once per report: exact counts per Prometheus bucket
// plus their sum, and per-report percentiles.
//
// The data path times every commit, so record() allocates nothing and makes
// no call but HDR's recordValue (a typed-array increment): no message, no
// object per commit. take() is called once a second and copies the counts.
// The Prometheus buckets alone would make p99 a guess between 1-2-5 bounds;
// the HDR histogram (2 significant digits) gives it to 1%.

import * as hdr from "hdr-histogram-js";

/** Upper bounds of the commit-latency buckets, seconds: 1 µs .. 100 ms, 1-2-5 steps (+Inf is implied). */
export const COMMIT_BUCKETS_S: readonly number[] = [
  1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3,
];

/** The same bounds in whole nanoseconds, for the comparison on the commit path. */
const BOUNDS_NS = Float64Array.from(COMMIT_BUCKETS_S, (s) => Math.round(s * 1e9));

/** Commits since the previous take(). */
export interface CommitLatencySample {
  count: number;
  meanUs: number;
  maxUs: number;
  /** Percentiles of this report's commits (0 when there were none), microseconds. */
  p50Us: number;
  p99Us: number;
  /** Sum of this report's commit times, seconds (Prometheus' _sum). */
  sumS: number;
  /** Commits per bucket of COMMIT_BUCKETS_S, not cumulative; the last entry is above 100 ms. */
  buckets: number[];
}

export class CommitLatency {
  #counts = new Float64Array(BOUNDS_NS.length + 1);
  #count = 0;
  #sumNs = 0;
  #maxNs = 0;
  // 1 ns .. 10 s; a commit longer than that is clamped, not lost
  #hdr = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: 2 });

  /** record -- one commit that took ns nanoseconds. */
  record(ns: number): void {
    let i = 0;
    while (i < BOUNDS_NS.length && ns > BOUNDS_NS[i]) i++;   // le: a bound is inclusive, as in Prometheus
    this.#counts[i]++;
    this.#count++;
    this.#sumNs += ns;
    if (ns > this.#maxNs) this.#maxNs = ns;
    this.#hdr.recordValue(Math.min(Math.max(1, Math.round(ns)), 10_000_000_000));
  }

  /** take -- the commits since the last take (a copy); starts a new report. */
  take(): CommitLatencySample {
    const n = this.#count;
    const out: CommitLatencySample = {
      count: n, meanUs: n ? this.#sumNs / n / 1000 : 0, maxUs: this.#maxNs / 1000,
      p50Us: n ? this.#hdr.getValueAtPercentile(50) / 1000 : 0, p99Us: n ? this.#hdr.getValueAtPercentile(99) / 1000 : 0,
      sumS: this.#sumNs / 1e9, buckets: Array.from(this.#counts),
    };
    this.#counts.fill(0);
    this.#count = 0;
    this.#sumNs = 0;
    this.#maxNs = 0;
    this.#hdr.reset();
    return out;
  }
}

// metrics.ts -- the commit-latency histogram, fed from the data path's reports.
//
// Commits are timed in the worker thread (core/latency.ts), which sends, once
// a second, how many fell in each bucket and their summed time. prom-client
// cannot merge histograms, and observing a stand-in value per commit would
// make _sum a fiction (and cost one call per commit here). So this Histogram
// keeps the cumulative counts it was sent and reports them as they are:
// Prometheus sees every bucket, _sum and _count exactly as measured.

import client from "prom-client";
import { COMMIT_BUCKETS_S, type CommitLatencySample } from "../core/latency.js";

type HistogramData = Awaited<ReturnType<client.Histogram["get"]>>;

const NAME = "paste_commit_latency_seconds";
const HELP = "Batch commit latency, timed around the native commit: every batch's, since its replies wait for it";

export class CommitHistogram extends client.Histogram {
  /** Commits per bucket since the host started (the last is above the top bound), not cumulative. */
  readonly #counts = new Float64Array(COMMIT_BUCKETS_S.length + 1);
  #sum = 0;
  #count = 0;

  constructor(registry: client.Registry) {
    super({ name: NAME, help: HELP, buckets: [...COMMIT_BUCKETS_S], registers: [registry] });
  }

  /** add -- one report of the data path: its per-bucket counts are added to the totals. */
  add(s: CommitLatencySample): void {
    if (s.buckets.length !== this.#counts.length) throw new Error(`commit latency report has ${s.buckets.length} buckets, expected ${this.#counts.length}`);
    for (let i = 0; i < this.#counts.length; i++) this.#counts[i] += s.buckets[i];
    this.#sum += s.sumS;
    this.#count += s.count;
  }

  /** The registry's text exposition reads this (prom-client prefers it to get(); its types do not declare it). */
  async getForPromString(): Promise<HistogramData> {
    return this.#data();
  }

  override async get(): Promise<HistogramData> {
    return this.#data();
  }

  override reset(): void {
    if (!(#counts in this)) return;   // the base constructor resets before these fields exist
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }

  #data(): HistogramData {
    const name = `${NAME}_bucket`;
    let acc = 0;
    const values: HistogramData["values"] = COMMIT_BUCKETS_S.map((le, i) => {
      acc += this.#counts[i];
      return { labels: { le }, value: acc, metricName: name };
    });
    values.push(
      { labels: { le: "+Inf" }, value: this.#count, metricName: name },
      { labels: {}, value: this.#sum, metricName: `${NAME}_sum` },
      { labels: {}, value: this.#count, metricName: `${NAME}_count` },
    );
    // MetricType is a type-only enum: prom-client's runtime does not export it
    return { name: NAME, help: HELP, type: "histogram" as unknown as client.MetricType, values, aggregator: "sum", collect: () => {} };
  }
}

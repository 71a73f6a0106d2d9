// series.ts -- the last minutes of the data path's reports as per-second
// points, for the console's charts: a page opened now shows the minutes
// before it, not an empty chart filling up.

import type { HostSnapshot } from "./admin.js";

/** One report: rates over the interval before it, latency of its commits, connections at its end. */
export interface SeriesPoint {
  /** When the report was taken, ms since the epoch. */
  t: number;
  recordsPerSec: number;
  commitsPerSec: number;
  repliesPerSec: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  connections: number;
}

type Snapshot = Omit<HostSnapshot, "handler">;

/** Points kept: ten minutes of once-a-second reports. */
export const SERIES_POINTS = 600;

export class Series {
  readonly #points: SeriesPoint[] = [];

  /** add -- the point between two consecutive reports (the first report has none before it). */
  add(prev: Snapshot | null, s: Snapshot): SeriesPoint | null {
    if (!prev) return null;
    const dt = (s.at - prev.at) / 1000;
    if (!(dt > 0)) return null;
    // counters are the pool's, so they run on across a worker restart; a drop would be a new pool
    const rate = (now: number, before: number) => Math.max(0, (now - before) / dt);
    const p: SeriesPoint = {
      t: s.at,
      recordsPerSec: rate(s.stats.records, prev.stats.records),
      commitsPerSec: rate(s.stats.batches, prev.stats.batches),
      repliesPerSec: rate(s.stats.replies, prev.stats.replies),
      p50Us: s.commit.p50Us, p99Us: s.commit.p99Us, maxUs: s.commit.maxUs,
      connections: s.connections.open,
    };
    this.#points.push(p);
    if (this.#points.length > SERIES_POINTS) this.#points.shift();
    return p;
  }

  /** after -- the points taken after time t (ms), oldest first; all of them for t = 0. */
  after(t: number): SeriesPoint[] {
    let i = this.#points.length;
    while (i > 0 && this.#points[i - 1].t > t) i--;
    return this.#points.slice(i);
  }

  get latest(): SeriesPoint | undefined {
    return this.#points.at(-1);
  }
}

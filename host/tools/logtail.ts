// logtail.ts -- `paste-host log tail POOL [--from SEQ] [--follow]`: the log as
// a stream for a consumer, read-only, while a host serves the pool.
//
// It reads the pool through its own read-only mapping (the host's writes are
// in the same file), so it never slows the data path. Each poll walks the log
// from its head to the durable tail and prints what is newer than the last
// record printed: only committed records, in sequence order, each once. A
// record trimmed before a poll saw it is reported as a gap, on stderr; a walk
// that meets a record the host is overwriting at that moment (the cleaner,
// a trim) is retried at the next poll.

import { LogCorruptError, PasteError } from "../core/errors.js";
import { walkLog, type DumpedRecord } from "../core/logwalk.js";
import { check, native } from "../core/native.js";
import { Pool } from "../core/pool.js";

export interface TailOptions {
  /** The first sequence number to print; default: the last `lines` records. */
  from?: number;
  /** Without from: how many of the newest records to print first (default 10). */
  lines?: number;
  /** Keep printing records as they commit, until stop() (default: print and return). */
  follow?: boolean;
  /** How often to look for new records when following (default 200 ms). */
  intervalMs?: number;
}

export interface TailHandle {
  /** Resolves when the tail ends (at once without follow, after stop() with it): the records printed. */
  done: Promise<number>;
  stop(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * tailLog -- hand each committed record to `print`, from `from` (or the
 * newest `lines`), then, with follow, every record that commits after.
 * `gap(first, last)` is told about records trimmed before they were printed.
 */
export function tailLog(path: string, o: TailOptions, print: (r: DumpedRecord) => void, gap: (first: number, last: number) => void): TailHandle {
  let stopped = false;
  const pool = Pool.open(path, { readOnly: true });
  let next = o.from ?? startAt(pool, o.lines ?? 10);
  let printed = 0;
  /** one pass: every record from `next` on; false if the walk met a record being rewritten */
  const pass = (): boolean => {
    try {
      for (const r of walkLog(pool, next)) {
        // a gap: trimmed after the tail began, or before it reached an asked-for --from
        if (r.seq > next && (printed > 0 || o.from !== undefined)) gap(next, r.seq - 1);
        print(r);
        printed++;
        next = r.seq + 1;
      }
      return true;
    } catch (e) {
      if (e instanceof PasteError && (e instanceof LogCorruptError || e.code === "PASTE_ERR_POOL_CORRUPT") && o.follow) return false;
      throw e;
    }
  };
  const done = (async () => {
    try {
      pass();
      while (o.follow && !stopped) {
        await sleep(o.intervalMs ?? 200);
        if (!stopped) pass();
      }
      return printed;
    } finally {
      pool.close();
    }
  })();
  return { done, stop: () => { stopped = true; } };
}

/** startAt -- the sequence number of the newest `lines` records (the next one to commit when lines is 0); no payload is copied. */
function startAt(pool: Pool, lines: number): number {
  const n = native();
  const info: Record<string, number | bigint> = {};
  const seqs: number[] = [];
  let last = 0;
  check(n.walkBegin(pool.handle));
  while (check(n.walkNext(pool.handle, info)) !== 0) {
    last = Number(info.seq);
    seqs.push(last);
    if (seqs.length > lines) seqs.shift();
  }
  return seqs[0] ?? last + 1;
}

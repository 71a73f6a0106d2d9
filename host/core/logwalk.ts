// logwalk.ts -- reading a pool's log without running a handler, for `log
// dump`, `log verify` and the crash checker. Read-only: works on a pool a
// host is running.

import { check, native } from "./native.js";
import type { Pool } from "./pool.js";

export interface DumpedRecord {
  seq: number;
  pos: number;
  len: number;
  extents: { buf: number; off: number; len: number }[];
  crcOk: boolean;
  storedCrc: number;
  computedCrc: number;
  /** A copy of the payload (dumping copies; the data path never does). */
  data: Buffer;
}

/** walkLog -- every live record from the head, in order; throws LogCorrupt-class errors on a torn log. */
export function* walkLog(pool: Pool, from = 0): Generator<DumpedRecord> {
  const n = native();
  check(n.walkBegin(pool.handle));
  if (from > 0) check(n.walkSeek(pool.handle, from));
  const info: Record<string, number | bigint> = {};
  const ext: Record<string, number> = {};
  for (;;) {
    const r = n.walkNext(pool.handle, info);
    if (r === 0) return;
    check(r);
    const seq = Number(info.seq);
    if (seq < from) continue;
    const pos = Number(info.pos);
    const len = Number(info.len);
    const extents = [];
    for (let i = 0; i < Number(info.nextents); i++) {
      check(n.logExtent(pool.handle, pos, i, ext));
      extents.push({ buf: ext.buf_idx, off: ext.off, len: ext.len });
    }
    const data = Buffer.alloc(len);
    check(Number(n.logRead(pool.handle, pos, data, len)));
    yield {
      seq, pos, len, extents, data,
      crcOk: info.status === 0,
      storedCrc: Number(info.stored_crc),
      computedCrc: Number(info.computed_crc),
    };
  }
}

/** preview -- the first bytes of a payload, printable. */
export function preview(data: Buffer, max = 48): string {
  let s = "";
  for (const b of data.subarray(0, max)) {
    s += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : b === 0x0a ? "\\n" : b === 0x0d ? "\\r" : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return data.length > max ? `${s}...` : s;
}

/**
 * logSpace -- what `pool info` says of the pool's space without a host: the
 * records in the log, their payload bytes and the distinct buffers they
 * reference (one walk, no payload read). Read-only, like walkLog.
 */
export function logSpace(pool: Pool): { records: number; liveBytes: number; buffers: number } {
  const n = native();
  check(n.walkBegin(pool.handle));
  const info: Record<string, number | bigint> = {};
  const ext: Record<string, number> = {};
  const seen = new Uint8Array(pool.buffers);
  let records = 0;
  let liveBytes = 0;
  let buffers = 0;
  for (;;) {
    const r = n.walkNext(pool.handle, info);
    if (r === 0) return { records, liveBytes, buffers };
    check(r);
    records++;
    liveBytes += Number(info.len);
    for (let i = 0; i < Number(info.nextents); i++) {
      check(n.logExtent(pool.handle, Number(info.pos), i, ext));
      if (!seen[ext.buf_idx]) {
        seen[ext.buf_idx] = 1;
        buffers++;
      }
    }
  }
}

/** One record as the log browser shows it: no payload but a printable preview. */
export interface LogPageRecord {
  seq: number;
  len: number;
  extents: { buf: number; off: number; len: number }[];
  crcOk: boolean;
  preview: string;
}

/** A page of the log: records with seq >= from, and where the next page starts (null: none after). */
export interface LogPage {
  from: number;
  records: LogPageRecord[];
  next: number | null;
}

/**
 * logPage -- up to limit records from seq `from` on, each with the first
 * previewBytes of its payload (only those are copied). The walk starts at the
 * head whatever `from` is (the log has no index by seq), so a page costs a
 * walk of the records before it. Read-only, like walkLog; the walk cursor is
 * the pool's, so the caller must not walk (or replay) at the same time.
 */
export function logPage(pool: Pool, from: number, limit: number, previewBytes = 64): LogPage {
  const n = native();
  check(n.walkBegin(pool.handle));
  if (from > 0) check(n.walkSeek(pool.handle, from));   // in C: the data path pauses for this page, not for the log before it
  const info: Record<string, number | bigint> = {};
  const ext: Record<string, number> = {};
  const head = Buffer.alloc(previewBytes + 1);   // one byte more tells preview() there is more
  const records: LogPageRecord[] = [];
  for (;;) {
    const r = n.walkNext(pool.handle, info);
    if (r === 0) return { from, records, next: null };
    check(r);
    const seq = Number(info.seq);
    if (seq < from) continue;
    if (records.length === limit) return { from, records, next: seq };
    const pos = Number(info.pos);
    const extents = [];
    for (let i = 0; i < Number(info.nextents); i++) {
      check(n.logExtent(pool.handle, pos, i, ext));
      extents.push({ buf: ext.buf_idx, off: ext.off, len: ext.len });
    }
    const got = Number(check(Number(n.logRead(pool.handle, pos, head, head.length))));
    records.push({ seq, len: Number(info.len), extents, crcOk: info.status === 0, preview: preview(head.subarray(0, got), previewBytes) });
  }
}

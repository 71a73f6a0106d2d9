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

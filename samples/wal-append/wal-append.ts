// wal-append.ts -- the smallest useful WAL server: length-prefixed frames in,
// sequence numbers out.
//
//   request:  u32 length (little-endian), then that many payload bytes
//   reply:    u64 sequence number (little-endian), once the frame is durable;
//             0 if the frame was refused (longer than MAX_FRAME), after which
//             the connection is closed; 2^64-1 if the pool is full (frames
//             the consumer has not trimmed fill it): the frame was not
//             logged, the connection goes on, send it again after a trim
//   trim:     u32 0xffffffff, then a u64 sequence number: the consumer is done
//             with every frame up to it; reply: u64 frames released. Their
//             buffers return to the pool, so a steady stream never fills it.
//
// Each frame's payload is logged by reference, as it arrived (a frame split
// over several recv()s becomes one record of several extents), and replayed in
// order after a restart.
//
// Space comes back only through the consumer's trims, so there is nothing for
// a cleaner to do; on_clean is exported all the same, because a handler with
// a cleaner gets the host's reserve: when untrimmed frames fill the pool, new
// frames still arrive and get the refusal, and the consumer's trim frame
// still gets through. Without it a full pool would stop reading.

import { Ring, Record, Streams, Err, replies, closeConnection, trim, committed, lastError } from "paste-host/assembly";

const MAX_FRAME: u32 = 1 << 20;
const FULL: u64 = u64.MAX_VALUE;

const streams = new Streams();
let replayed: u64 = 0;
let replayedBytes: u64 = 0;

function ack(conn: u32, seq: u64): void {
  // eight little-endian bytes
  const b = replies.begin();
  for (let i = 0; i < 8; i++) b.byte(<u8>(seq >> (8 * i)));
  b.send(conn);
}

export function on_rx(ring: Ring): void {
  for (let i = ring.head; i != ring.tail; i = ring.next(i)) {
    const slot = ring.slot(i);
    const conn = slot.conn;
    const s = streams.of(conn);
    s.push(slot);
    while (s.length >= 4) {
      const len = <u32>s.byteAt(0) | (<u32>s.byteAt(1) << 8) | (<u32>s.byteAt(2) << 16) | (<u32>s.byteAt(3) << 24);
      if (len == 0xffffffff) {
        if (s.length < 12) break;
        let upTo: u64 = 0;
        for (let b: u32 = 0; b < 8; b++) upTo |= <u64>s.byteAt(4 + b) << (8 * b);
        const done = committed();          // only durable frames can be released: a client may ask for more
        ack(conn, trim(upTo < done ? upTo : done));
        s.consume(12);
        continue;
      }
      if (len > MAX_FRAME || len == 0) {
        ack(conn, 0);
        s.reset();
        closeConnection(conn);
        break;
      }
      if (s.length < 4 + len) break;       // the rest is still on its way; the stream holds what came
      const seq = s.tryLog(4, len);
      if (seq == Err.POOL_FULL || seq == Err.LOG_FULL) ack(conn, FULL);   // not logged: trim, then send it again
      else if (seq < 0) abort(lastError());
      else ack(conn, <u64>seq);           // durable before the ack leaves
      s.consume(4 + len);
    }
  }
  ring.release();
}

export function on_replay(rec: Record): void {
  replayed++;
  replayedBytes += rec.len;
}

export function on_close(conn: u32): void {
  streams.close(conn);
}

/** on_clean -- nothing to clean (the consumer trims); exported for the reserve (see the top). */
export function on_clean(): void {}

/** replay_stats -- records and bytes replayed at start-up (for tests and tools). */
export function replay_count(): f64 { return <f64>replayed; }
export function replay_bytes(): f64 { return <f64>replayedBytes; }

// wal-append.ts -- the smallest useful WAL server: length-prefixed frames in,
// sequence numbers out.
//
//   request:  u32 length (little-endian), then that many payload bytes
//   reply:    u64 sequence number (little-endian), once the frame is durable;
//             0 if the frame was refused (longer than MAX_FRAME), after which
//             the connection is closed
//   trim:     u32 0xffffffff, then a u64 sequence number: the consumer is done
//             with every frame up to it; reply: u64 frames released. Their
//             buffers return to the pool, so a steady stream never fills it.
//
// Each frame's payload is logged by reference, as it arrived (a frame split
// over several recv()s becomes one record of several extents), and replayed in
// order after a restart.

import { Ring, Record, Streams, replies, closeConnection, trim, committed } from "paste-host/assembly";

const MAX_FRAME: u32 = 1 << 20;

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
      ack(conn, s.log(4, len));            // durable before the ack leaves
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

/** replay_stats -- records and bytes replayed at start-up (for tests and tools). */
export function replay_count(): f64 { return <f64>replayed; }
export function replay_bytes(): f64 { return <f64>replayedBytes; }

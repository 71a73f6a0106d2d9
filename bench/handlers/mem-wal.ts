// mem-wal.ts -- the benchmark handler: the same WAL logic in three modes, so
// one run compares them side by side. Every request is acknowledged with its
// sequence number after the batch commits.
//   mode 0: no logging (acknowledge only: the networking-only baseline)
//   mode 1: copy logging (the host copies the payload into a fresh buffer)
//   mode 2: zero-copy logging (the record names the buffer it arrived in)
import { Ring, log, logCopy, replies } from "paste-host/assembly";

let mode: i32 = 2;
export function set_mode(m: i32): void { mode = m; }

export function on_rx(ring: Ring): void {
  for (let s = ring.head; s != ring.tail; s = ring.next(s)) {
    const slot = ring.slot(s);
    let seq: u64 = 0;
    if (mode == 2) seq = log(slot, 0, slot.len);
    else if (mode == 1) seq = logCopy(slot, 0, slot.len);
    replies.begin().u64(seq).ascii("\n").send(slot.conn);
  }
  ring.release();
}

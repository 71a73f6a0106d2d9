// handler.ts -- a line log: every line a client sends becomes one durable
// record, answered with "SEQ COUNT\n" (its sequence number, and how many
// lines the log holds) once it is durable. A line may arrive split over any
// number of receives: a Stream per connection holds the pieces in place, and
// the record is logged by reference to the buffers they arrived in.
//
// After a restart, on_replay sees every live record in order: that is how the
// count comes back. Start your own handler from here (docs/handlers.md).
import { Ring, Record, Streams, closeConnection, replies } from "paste-host/assembly";

const streams = new Streams();
/** Lines in the log: counted as they are logged, and rebuilt by on_replay. */
let lines: u64 = 0;

export function on_rx(ring: Ring): void {
  for (let i = ring.head; i != ring.tail; i = ring.next(i)) {
    const slot = ring.slot(i);
    const s = streams.of(slot.conn);
    if (s.full) {
      // a line over the stream's 1024 pieces: refuse it rather than hold the pool's buffers forever
      replies.begin().ascii("-ERR line too long\n").send(slot.conn);
      closeConnection(slot.conn);
      s.reset();
      continue;
    }
    s.push(slot);
    for (;;) {
      const eol = s.indexOf(0x0a);
      if (eol < 0) break;
      const seq = s.log(0, <u32>eol + 1);   // durable once this batch commits; the reply waits for that
      lines++;
      replies.begin().u64(seq).ascii(" ").u64(lines).ascii("\n").send(slot.conn);
      s.consume(<u32>eol + 1);
    }
  }
  ring.release();
}

export function on_replay(rec: Record): void {
  lines++;
}

export function on_close(conn: u32): void {
  streams.close(conn);
}

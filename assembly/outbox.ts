// outbox.ts -- the copied replies of one handler call, gathered in the
// handler's own memory and handed to the host in one import call when the
// call ends.
//
// Every import call from Wasm crosses into JavaScript and then native code:
// a pipelined batch of 800 SETs made 800 `reply` calls for 800 "+OK\r\n".
// Now reply() (and ReplyBuilder.send) append (conn, len) and the bytes here,
// and the host's call of paste_end (abi.ts) at the end of each handler call
// hands them all over with one `replies` import. Nothing changes for the
// client: the host queued each reply until the commit anyway, and each stays
// a reply of its own, in the order it was made.
//
// Order with the other ways out: a reply by reference (replyBuffer) and a
// close (closeConnection) flush the outbox first, so a connection's bytes
// leave in the order the handler produced them. A handler that calls the raw
// imports (paste-host/assembly/imports) directly bypasses the outbox and
// must call flushReplies() first to keep that order.

import * as host from "./imports";
import { failWith } from "./errors";

const PAIRS: u32 = 1024;              // replies gathered at most before a flush
const BYTES: u32 = 64 * 1024;         // their bytes at most; a larger reply goes on its own
const pairs = heap.alloc(<usize>PAIRS * 8);
const bytes = heap.alloc(BYTES);
let count: u32 = 0;
let used: u32 = 0;


/** queueReply -- len bytes at ptr for conn, after this call's earlier replies. */
export function queueReply(conn: u32, ptr: usize, len: u32): void {
  if (len > BYTES) {
    flushReplies();
    if (host.reply(conn, ptr, len) < 0) failWith("reply");
    return;
  }
  if (count == PAIRS || used + len > BYTES) flushReplies();
  const at = pairs + (<usize>count << 3);
  store<u32>(at, conn);
  store<u32>(at, len, 4);
  const dst = bytes + used;
  if (len <= 16) {
    // the common reply is a few bytes ("+OK\r\n"): memory.copy is a call out of Wasm
    for (let i: u32 = 0; i < len; i++) store<u8>(dst + i, load<u8>(ptr + i));
  } else {
    memory.copy(dst, ptr, len);
  }
  count++;
  used += len;
}

/** flushReplies -- hand the gathered replies to the host now (before a raw reply_ref or close). */
export function flushReplies(): void {
  if (!count) return;
  const n = count;
  count = 0;
  used = 0;
  if (host.replies(pairs, n, bytes) < 0) failWith("reply");
}

/** pendingReplies -- replies gathered and not yet handed over (for tests). */
export function pendingReplies(): u32 {
  return count;
}

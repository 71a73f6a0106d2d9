// imports.ts -- every host import a handler can call, module "paste".
//
// Each is a native function of the host (native/imports.c, paste_h_*), handed to
// Wasm directly: a call costs one JS->C transition (~30 ns), no JS work.
// (trace, off the request path, is the one JS function.)
// Results are f64 so sequence numbers cross the boundary without BigInt; they
// stay below 2^53. A negative result is an error code (see Err); the message
// is available through `error`.

/**
 * log -- log `len` bytes at `off` of buffer `buf_idx` as one record, by reference.
 * in:  buf_idx  a buffer the handler owns (in an RX slot of this batch, or already logged)
 * in:  off, len a range inside that buffer
 * out: the record's sequence number; durable once the batch commits.
 *      Err.LOG_FULL (trim first), Err.HANDLER (bad buffer or range)
 */
// @ts-ignore: decorator
@external("paste", "log")
export declare function log(buf_idx: u32, off: u32, len: u32): f64;

/**
 * log_copy -- the copying baseline: copy the bytes into a fresh pool buffer,
 * flush the copy, log it. What PASTE's zero copy is measured against; a real
 * handler uses log.
 * out: the sequence number, or Err.POOL_FULL / Err.LOG_FULL / Err.HANDLER
 */
// @ts-ignore: decorator
@external("paste", "log_copy")
export declare function log_copy(buf_idx: u32, off: u32, len: u32): f64;

/**
 * log_copy_extents -- the copying baseline for a record of several pieces:
 * the host copies them, packed, into fresh buffers and logs the copy.
 * out: the sequence number, or Err.POOL_FULL / Err.LOG_FULL / Err.HANDLER
 */
// @ts-ignore: decorator
@external("paste", "log_copy_extents")
export declare function log_copy_extents(ptr: usize, n: u32): f64;

/**
 * log_extents -- log one record made of n extents, in order (a request split across buffers).
 * in:  ptr  n packed Extent {buf_idx: u32, off: u16, len: u16}, 4-byte aligned
 * out: the sequence number, or Err.LOG_FULL / Err.HANDLER
 */
// @ts-ignore: decorator
@external("paste", "log_extents")
export declare function log_extents(ptr: usize, n: u32): f64;

/**
 * reply -- queue len bytes at ptr for connection conn. Sent only after the
 * batch's commit is durable, so an acknowledgement never precedes its record.
 * out: 0, or Err.HANDLER (range outside memory)
 */
// @ts-ignore: decorator
@external("paste", "reply")
export declare function reply(conn: u32, ptr: usize, len: u32): i32;

/**
 * replies -- n copied replies at once, as reply would queue each: n (conn,
 * len) u32 pairs at ptr (4-byte aligned), their bytes one after another at
 * data. What the SDK's replies use (outbox.ts): one import call per handler
 * call, not one per reply.
 * out: 0, or Err.HANDLER (the first reply refused and those after it are not queued)
 */
// @ts-ignore: decorator
@external("paste", "replies")
export declare function replies(ptr: usize, n: u32, data: usize): i32;

/**
 * reply_ref -- queue len bytes at off of pool buffer buf_idx for conn, sent
 * straight from the pool at the commit (a logged value served in place).
 * in:  buf_idx  a buffer the log references, the handler holds, or that arrived in this batch
 * out: 0, or Err.HANDLER
 */
// @ts-ignore: decorator
@external("paste", "reply_ref")
export declare function reply_ref(conn: u32, buf_idx: u32, off: u32, len: u32): i32;

/**
 * hold -- keep a received buffer after its slot is released: the rest of a
 * request is still on its way. Held buffers are given back with unhold, and
 * all of a connection's holds when it closes.
 * out: 0, or Err.HANDLER (not a received buffer, or already held)
 */
// @ts-ignore: decorator
@external("paste", "hold")
export declare function hold(buf_idx: u32, conn: u32): i32;

/**
 * unhold -- give a held buffer back; it returns to the free list once no
 * record references it.
 * out: 0, or Err.HANDLER (conn does not hold it)
 */
// @ts-ignore: decorator
@external("paste", "unhold")
export declare function unhold(buf_idx: u32, conn: u32): i32;

/**
 * close -- close connection conn once the replies queued so far have been
 * sent (an HTTP "Connection: close", a protocol error). on_close follows.
 * out: 0
 */
// @ts-ignore: decorator
@external("paste", "close")
export declare function close(conn: u32): i32;

/**
 * trim -- release every committed record up to and including seq; their
 * buffers return to the free list once the release is durable.
 * in:  seq  at most committed(): a seq past it is Err.HANDLER
 * out: records released (0 if none), or a negative error
 */
// @ts-ignore: decorator
@external("paste", "trim")
export declare function trim(seq: f64): f64;

/** committed -- the highest sequence number that is durable. */
// @ts-ignore: decorator
@external("paste", "committed")
export declare function committed(): f64;

/**
 * pressure -- the pool's space now: free buffers, log room, the reserve kept
 * for the cleaner, and flags saying whether cleaning is due.
 * out: ptr  a struct paste_pressure (layout.ts Pressure), 8-byte aligned
 * out: 0, or Err.HANDLER (ptr outside memory)
 */
// @ts-ignore: decorator
@external("paste", "pressure")
export declare function pressure(ptr: usize): i32;

/**
 * log_pack -- the cleaner's copy: the bytes of n LogExtents at ptr are copied
 * densely into shared pool buffers (many small records to a buffer) and
 * logged as one record, so the buffers they came from can be freed once the
 * originals are trimmed.
 * in:  ptr, n    the record's pieces (buffers the handler logged)
 * out: out       u32 count, u32 0, then count LogExtents: where the copy lives
 *                (at most out_cap are written)
 * out: the copy's sequence number; Err.POOL_FULL, Err.LOG_FULL (even the
 *      reserve is used up), Err.HANDLER (bad pieces or out range)
 */
// @ts-ignore: decorator
@external("paste", "log_pack")
export declare function log_pack(ptr: usize, n: u32, out: usize, out_cap: u32): f64;

/**
 * use_reserve -- 1: the logs that follow may use the reserve kept for the
 * cleaner (records that free space: a delete); 0: back to normal. Ends with
 * the host call it was made in.
 * out: 0
 */
// @ts-ignore: decorator
@external("paste", "use_reserve")
export declare function use_reserve(on: u32): i32;

/**
 * error -- copy the last error message (UTF-8) to ptr, at most cap bytes.
 * out: its length
 */
// @ts-ignore: decorator
@external("paste", "error")
export declare function error(ptr: usize, cap: u32): i32;

/**
 * config -- the handler's configuration (the bytes given with the module:
 * run --handler-config, deploy --config), copied to ptr, at most cap bytes.
 * A JS function like trace: it is read in on_init, off the request path.
 * config(0, 0) asks for the length alone.
 * out: the config's whole length (0: none), or Err.HANDLER (range outside memory)
 */
// @ts-ignore: decorator
@external("paste", "config")
export declare function config(ptr: usize, cap: u32): i32;

/**
 * trace -- log a message through the host's logger, with a level. Unlike the
 * imports above this is a JS function, not a native one: tracing is for
 * diagnostics, not the per-request path. Rate-limited per handler (burst 100,
 * then 20/s) so a chatty handler cannot flood the host; the host reports how
 * many it dropped with the next message it lets through. Longer than 1024
 * bytes is cut, with an ellipsis.
 * in:  level    0 debug, 1 info, 2 warn, 3 error (anything else: info)
 * in:  ptr, len the message, UTF-8
 * out: 0 logged, 1 dropped by the rate limit, Err.HANDLER (range outside memory)
 */
// @ts-ignore: decorator
@external("paste", "trace")
export declare function trace(level: u32, ptr: usize, len: u32): i32;

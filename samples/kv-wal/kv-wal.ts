// kv-wal.ts -- a Redis-protocol (RESP2) key-value store whose write-ahead log
// is the pool itself.
//
// SET, DEL and FLUSHALL are logged by reference: the record is the command as
// it arrived, in the buffers it arrived in. The index maps each key to where
// its value sits in those buffers, so GET answers straight from the pool
// (replyBuffer: no copy into this module's heap, none on the way out). Every
// write is acknowledged only after its batch is durable. After a restart,
// on_replay rebuilds the index from the log.
//
// The pool cleans itself (the SDK's Cleaner): when the host says space is
// short it calls on_clean, which takes the oldest SETs, drops the overwritten
// and deleted ones and moves the live ones to the log's tail (small ones
// copied densely into shared buffers, large ones by reference), then trims
// behind them. A pool whose live data really does not fit answers SETs with
// -OOM, like Redis at maxmemory, while GET, DEL, PING and INFO go on; a DEL
// or FLUSHALL may use the cleaner's reserve, since it frees space.
//
// Commands: PING ECHO SET GET DEL EXISTS DBSIZE FLUSHALL INFO COMMAND CONFIG
// SELECT QUIT, as arrays of bulk strings or inline.

import {
  Ring, Record, Stream, Streams, ReplyBuilder, replies, replyBuffer, replyPieces, committed,
  Cleaner, LiveRecord, BytesMap, packBelow, PressureFlags, pressure, useReserve, lastError, Err,
} from "paste-host/assembly";

const MAX_ARGS = 64;
const MAX_BULK: i64 = 512 * 1024 * 1024;
const MAX_INLINE: u32 = 64 * 1024;

/**
 * Where a key's value lives: the SET record (its pieces, to move it and to
 * answer GET from the pool) and the value's place inside it. The cleaner
 * moves it while the index still points at it. Three heap objects a key
 * (this, the pieces, the key's bytes in the index): at a million keys every
 * object counts, for memory and for the collector.
 *
 * Liveness costs no lookup: an overwrite or a DEL marks the entry dead, and
 * FLUSHALL starts a new epoch (every entry of an older one is dead).
 */
class Entry extends LiveRecord {
  dead: bool = false;
  constructor(seq: u64, rec: StaticArray<u32>, len: u32, public voff: u32, public vlen: u32, private epoch: u32) {
    super(seq, rec, len);
  }
  live(): bool {
    return !this.dead && this.epoch == epoch;
  }
}

const index = new BytesMap<Entry>();
let epoch: u32 = 0;                  // FLUSHALLs so far
let buffersShort = false;            // this batch: the host says free buffers are short
const cleaner = new Cleaner();
const streams = new Streams();
const replayStream = new Stream(0, 4096);
const scratch = new StaticArray<u32>(3 * 4096);

const argOff = new StaticArray<u32>(MAX_ARGS);
const argLen = new StaticArray<u32>(MAX_ARGS);
let argc: i32 = 0;
let protoError: string = "";


// ------------------------------------------------------------------ parsing

/** parse -- one command at the stream's cursor: bytes it takes, 0 if incomplete, -1 on a protocol error. */
function parse(s: Stream): i32 {
  if (s.length == 0) return 0;
  if (s.byteAt(0) != 42 /* '*' */) return parseInline(s);
  const crlf = s.indexOfCrlf(1);
  if (crlf < 0) return s.length > 32 ? error("Protocol error: invalid multibulk length") : 0;
  const n = s.parseI64(1, <u32>crlf - 1);
  if (n < 0 || n > MAX_ARGS) return error("Protocol error: invalid multibulk length");
  let pos = <u32>crlf + 2;
  for (let i = 0; i < <i32>n; i++) {
    if (pos >= s.length) return 0;
    if (s.byteAt(pos) != 36 /* '$' */) return error("Protocol error: expected '$'");
    const e = s.indexOfCrlf(pos + 1);
    if (e < 0) return s.length - pos > 32 ? error("Protocol error: invalid bulk length") : 0;
    const len = s.parseI64(pos + 1, <u32>e - pos - 1);
    if (len < 0 || len > MAX_BULK) return error("Protocol error: invalid bulk length");
    const start = <u32>e + 2;
    if (<u64>start + <u64>len + 2 > <u64>s.length) return 0;
    if (s.byteAt(start + <u32>len) != 13 || s.byteAt(start + <u32>len + 1) != 10) return error("Protocol error: bulk not followed by CRLF");
    unchecked((argOff[i] = start));
    unchecked((argLen[i] = <u32>len));
    pos = start + <u32>len + 2;
  }
  argc = <i32>n;
  return <i32>pos;
}

/** parseInline -- "PING\r\n", "SET k v\r\n": words separated by spaces. */
function parseInline(s: Stream): i32 {
  const crlf = s.indexOfCrlf(0);
  if (crlf < 0) return s.length > MAX_INLINE ? error("Protocol error: too big inline request") : 0;
  argc = 0;
  let i: u32 = 0;
  const end = <u32>crlf;
  while (i < end) {
    while (i < end && s.byteAt(i) == 32) i++;
    if (i == end) break;
    const start = i;
    while (i < end && s.byteAt(i) != 32) i++;
    if (argc == MAX_ARGS) return error("Protocol error: too many arguments");
    unchecked((argOff[argc] = start));
    unchecked((argLen[argc] = i - start));
    argc++;
  }
  return end + 2;
}

function error(msg: string): i32 {
  protoError = msg;
  return -1;
}

function is(s: Stream, i: i32, name: string): bool {
  return s.equalsNoCase(unchecked(argOff[i]), unchecked(argLen[i]), name);
}

/** key -- the address of argument i's bytes, for the index (valid until the next key()): Redis keys are bytes, not text. */
function key(s: Stream, i: i32): usize {
  return s.view(unchecked(argOff[i]), unchecked(argLen[i]));
}

function lookup(s: Stream, i: i32): Entry | null {
  return index.get(key(s, i), unchecked(argLen[i]));
}

function piecesOf(s: Stream, off: u32, len: u32): StaticArray<u32> {
  const k = s.pieces(off, len, scratch);
  const out = new StaticArray<u32>(k * 3);
  memory.copy(changetype<usize>(out), changetype<usize>(scratch), <usize>k * 12);
  return out;
}

// ---------------------------------------------------------------- the store

/**
 * apply -- the effect of a logged command on the index (live path and replay
 * alike). packed: where the record's copy lies, when it was logged packed.
 */
function apply(s: Stream, seq: u64, cmdLen: u32, packed: StaticArray<u32> | null = null): i32 {
  if (is(s, 0, "SET")) {
    const e = new Entry(seq, packed ? packed : piecesOf(s, 0, cmdLen), cmdLen, argOff[2], argLen[2], epoch);
    e.packed = packed != null;
    const old = index.set(key(s, 1), argLen[1], e);
    if (old) {
      old.dead = true;                  // the value it replaces
      cleaner.died();
    }
    cleaner.add(e);
    return 1;
  }
  if (is(s, 0, "DEL")) {
    let n = 0;
    for (let i = 1; i < argc; i++) {
      const old = index.delete(key(s, i), argLen[i]);
      if (old) {
        old.dead = true;
        n++;
      }
    }
    cleaner.died(n);
    return n;
  }
  if (is(s, 0, "FLUSHALL")) {
    cleaner.died(index.size);
    index.clear();
    epoch++;
  }
  return 0;
}

/** bulkRange -- "$len\r\n<bytes [off, off+len) of a record's pieces, from the pool>\r\n" */
function bulkRange(conn: u32, pieces: StaticArray<u32>, off: u32, len: u32): void {
  replies.begin().ascii("$").u64(len).ascii("\r\n").flush(conn);
  replyPieces(conn, pieces, off, len);
  replies.begin().ascii("\r\n").send(conn);
}

/** bulkPieces -- "$len\r\n<bytes from the pool>\r\n" */
function bulkPieces(conn: u32, pieces: StaticArray<u32>, len: u32): void {
  replies.begin().ascii("$").u64(len).ascii("\r\n").flush(conn);
  for (let i = 0; i < pieces.length; i += 3) replyBuffer(conn, pieces[i], pieces[i + 1], pieces[i + 2]);
  replies.begin().ascii("\r\n").send(conn);
}

function execute(conn: u32, s: Stream, cmdLen: u32): void {
  if (argc == 0) return;
  if (is(s, 0, "SET")) {
    if (argc != 3) return err(conn, "ERR syntax error (this server supports SET key value)");
    // While buffers are short, a small SET is copied densely into shared
    // buffers instead of holding the buffer it arrived in (a 16-byte value
    // would keep 2 KiB) until the cleaner comes round to it.
    const pack = buffersShort && cmdLen <= packBelow();
    const seq = pack ? s.tryLogPacked(0, cmdLen) : s.tryLog(0, cmdLen);
    if (seq < 0) return full(conn, <i32>seq);        // the pool is full: say so, serve on
    apply(s, <u64>seq, cmdLen, pack ? s.packedPieces() : null);   // durable before the +OK leaves
    replies.begin().ascii("+OK\r\n").send(conn);
  } else if (is(s, 0, "GET")) {
    if (argc != 2) return arity(conn, "get");
    const e = lookup(s, 1);
    if (!e) return replies.begin().ascii("$-1\r\n").send(conn);
    bulkRange(conn, e.rec, e.voff, e.vlen);
  } else if (is(s, 0, "DEL")) {
    if (argc < 2) return arity(conn, "del");
    let n = 0;
    for (let i = 1; i < argc; i++) if (lookup(s, i)) n++;
    if (n) apply(s, logFreeing(s, cmdLen), cmdLen);   // only a DEL that changes something is logged
    replies.begin().ascii(":").u64(n).ascii("\r\n").send(conn);
  } else if (is(s, 0, "EXISTS")) {
    if (argc < 2) return arity(conn, "exists");
    let n = 0;
    for (let i = 1; i < argc; i++) if (lookup(s, i)) n++;
    replies.begin().ascii(":").u64(n).ascii("\r\n").send(conn);
  } else if (is(s, 0, "DBSIZE")) {
    replies.begin().ascii(":").u64(index.size).ascii("\r\n").send(conn);
  } else if (is(s, 0, "FLUSHALL")) {
    apply(s, logFreeing(s, cmdLen), cmdLen);           // every SET before it is now dead: the cleaner drops them
    replies.begin().ascii("+OK\r\n").send(conn);
  } else if (is(s, 0, "PING")) {
    if (argc == 1) replies.begin().ascii("+PONG\r\n").send(conn);
    else bulkPieces(conn, piecesOf(s, argOff[1], argLen[1]), argLen[1]);
  } else if (is(s, 0, "ECHO")) {
    if (argc != 2) return arity(conn, "echo");
    bulkPieces(conn, piecesOf(s, argOff[1], argLen[1]), argLen[1]);
  } else if (is(s, 0, "INFO")) {
    // a bulk string needs its length first: measure the body, then send header and body
    const body = info(replies.begin()).length;
    replies.begin().ascii("$").u64(body).ascii("\r\n").flush(conn);
    info(replies.begin()).ascii("\r\n").send(conn);
  } else if (is(s, 0, "COMMAND") || is(s, 0, "CONFIG")) {
    replies.begin().ascii("*0\r\n").send(conn);       // enough for redis-cli and redis-benchmark
  } else if (is(s, 0, "SELECT")) {
    if (argc == 2 && s.byteAt(argOff[1]) == 48 && argLen[1] == 1) replies.begin().ascii("+OK\r\n").send(conn);
    else err(conn, "ERR DB index is out of range (only db 0)");
  } else if (is(s, 0, "QUIT") || is(s, 0, "CLIENT")) {
    replies.begin().ascii("+OK\r\n").send(conn);
  } else {
    replies.begin().ascii("-ERR unknown command '");
    const n = min<u32>(argLen[0], 64);
    for (let i: u32 = 0; i < n; i++) {
      const c = s.byteAt(argOff[0] + i);
      replies.bytes(changetype<usize>(StaticArray.fromArray<u8>([c >= 32 && c < 127 && c != 39 ? c : 63])), 1);
    }
    replies.ascii("'\r\n").send(conn);
  }
}

/** info -- the INFO body (the same bytes each time it is built within a batch). */
function info(b: ReplyBuilder): ReplyBuilder {
  return b.ascii("# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\npaste_wal:kv-wal\r\n# Keyspace\r\ndb0:keys=")
    .u64(index.size).ascii("\r\n# Persistence\r\npaste_log_records:").u64(<u64>cleaner.size)
    .ascii("\r\npaste_cleaner_moved:").u64(cleaner.moved).ascii("\r\npaste_cleaner_dropped:").u64(cleaner.dropped)
    .ascii("\r\npaste_committed_seq:").u64(committed()).ascii("\r\n");
}

/** logFreeing -- log a command that frees space (DEL, FLUSHALL): a full pool must still take it. */
function logFreeing(s: Stream, cmdLen: u32): u64 {
  useReserve(true);
  const seq = s.log(0, cmdLen);
  useReserve(false);
  return seq;
}

/** full -- a write refused for want of space: -OOM, as Redis answers at maxmemory. */
function full(conn: u32, code: i32): void {
  if (code != Err.POOL_FULL && code != Err.LOG_FULL) abort(lastError());
  const p = pressure();
  const b = replies.begin();
  if (code == Err.POOL_FULL) b.ascii("-OOM pool full: ").u64(p.live_bufs).ascii(" of ").u64(p.nbufs).ascii(" buffers live");
  else b.ascii("-OOM log full: ").u64(p.log_used).ascii(" of ").u64(p.log_capacity).ascii(" log bytes used");
  b.ascii("; free space with DEL or FLUSHALL, or use a bigger pool\r\n").send(conn);
}

function err(conn: u32, msg: string): void {
  replies.begin().ascii("-").ascii(msg).ascii("\r\n").send(conn);
}

function arity(conn: u32, cmd: string): void {
  err(conn, "ERR wrong number of arguments for '" + cmd + "' command");
}

// ------------------------------------------------------------------- exports

export function on_rx(ring: Ring): void {
  cleaner.finish();   // trim behind the cleaner's last moves once they are durable
  buffersShort = (pressure().flags & PressureFlags.BUFFERS) != 0;
  for (let i = ring.head; i != ring.tail; i = ring.next(i)) {
    const slot = ring.slot(i);
    const conn = slot.conn;
    const s = streams.of(conn);
    if (s.full) {
      err(conn, "ERR request too large");
      s.reset();
    }
    s.push(slot);
    for (;;) {
      const n = parse(s);
      if (n == 0) break;
      if (n < 0) {
        err(conn, "ERR " + protoError);
        s.reset();                                     // drop what cannot be parsed; the connection goes on
        break;
      }
      execute(conn, s, <u32>n);
      s.consume(<u32>n);
    }
  }
  ring.release();
}

export function on_replay(rec: Record): void {
  const s = Stream.fromRecord(rec, replayStream);
  const n = parse(s);
  if (n > 0) apply(s, rec.seq, <u32>n);
}

export function on_close(conn: u32): void {
  streams.close(conn);
}

/** on_clean -- the host says space is short: one bounded step of cleaning. */
export function on_clean(): void {
  cleaner.step();
}

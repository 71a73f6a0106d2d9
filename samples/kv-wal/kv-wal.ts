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
//
// Its config (paste-host run --handler-config FILE, deploy --config FILE) is
// in redis.conf's format; see configure below.

import {
  Ring, Record, Stream, Streams, ReplyBuilder, replies, replyBuffer, replyPieces, committed,
  Cleaner, LiveRecord, BytesMap, packBelow, PressureFlags, pressure, useReserve, lastError, Err, closeConnection,
  handlerConfigString,
} from "paste-host/assembly";
// RESP2 framing as redis-server 7 does it: the SDK's (assembly/resp.ts)
import {
  parse, argc, argOff, argLen, protoError, number, toNumber, maxBulk, setMaxBulk, MAX_BULK, isSpace, command, commandCode,
} from "paste-host/assembly/resp";


/**
 * Where a key's value lives: the SET record (its pieces, to move it and to
 * answer GET from the pool) and the value's place inside it. The cleaner
 * moves it while the index still points at it. Three heap objects a key
 * (this, the pieces, the key's bytes in the index; a fourth, the spare
 * pieces, once its record has lain in one buffer and in two): at a million
 * keys every object counts, for memory and for the collector. An overwrite
 * allocates none: the key's entry takes the new record's seq and pieces in
 * place (reuse).
 *
 * Liveness costs no lookup: an overwrite leaves the old record's place in the
 * cleaner's queue stale (queued with a seq the entry no longer has), a DEL
 * marks the entry dead, and FLUSHALL starts a new epoch (every entry of an
 * older one is dead).
 */
class Entry extends LiveRecord {
  dead: bool = false;
  /** The pieces array of the other length, from an earlier write (see reuse). */
  spare: StaticArray<u32> | null = null;
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
const closing = new Set<u32>();   // connections closed after their replies: QUIT or a protocol error
const replayStream = new Stream(0, 4096);
const scratch = new StaticArray<u32>(3 * 4096);

// ------------------------------------------------------------------- config
//
// The config is redis.conf's format: a directive a line, "name value",
// blank lines and '#' comments. kv-wal knows one directive:
//
//   proto-max-bulk-len SIZE   the longest bulk string (a key or a value) it
//                             takes: bytes, or Redis's units (1k = 1000,
//                             1kb = 1024, m, mb, g, gb); 1 to 512mb (the default)
//
// A longer bulk is what Redis answers it with: a protocol error and a closed
// connection. An unknown directive or a bad value aborts on_init, so a host
// does not start with it and a deploy of it is refused: a limit meant to be
// set is never silently ignored. CONFIG GET proto-max-bulk-len shows it.

/** configure -- apply the handler's config (empty: Redis's defaults). */
function configure(text: string): void {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const words = splitWords(lines[i]);
    if (words.length == 0 || words[0].charCodeAt(0) == 35 /* '#' */) continue;
    const where = "kv-wal config, line " + (i + 1).toString() + ": ";
    if (words[0].toLowerCase() != "proto-max-bulk-len") abort(where + "unknown directive '" + words[0] + "' (kv-wal knows proto-max-bulk-len)");
    if (words.length != 2) abort(where + "proto-max-bulk-len takes one value, e.g. proto-max-bulk-len 1mb");
    const v = memorySize(words[1]);
    if (v < 1 || v > MAX_BULK) abort(where + "proto-max-bulk-len must be a size from 1 to 512mb, not '" + words[1] + "'");
    setMaxBulk(v);
  }
}

function splitWords(line: string): string[] {
  const out = new Array<string>();
  let start = -1;
  for (let i = 0; i <= line.length; i++) {
    const space = i == line.length || isSpace(<u8>line.charCodeAt(i));
    if (space && start >= 0) {
      out.push(line.substring(start, i));
      start = -1;
    } else if (!space && start < 0) {
      start = i;
    }
  }
  return out;
}

/** memorySize -- redis.conf's memory units: "100", "1k", "1kb", "2mb", ...; -1 if it is not one. */
function memorySize(w: string): i64 {
  let i = 0;
  let v: i64 = 0;
  for (; i < w.length && w.charCodeAt(i) >= 48 && w.charCodeAt(i) <= 57; i++) {
    if (v > MAX_BULK) return -1;
    v = v * 10 + <i64>(w.charCodeAt(i) - 48);
  }
  if (i == 0) return -1;
  const unit = w.substring(i).toLowerCase();
  if (unit == "") return v;
  if (unit == "k") return v * 1000;
  if (unit == "kb") return v * 1024;
  if (unit == "m") return v * 1000 * 1000;
  if (unit == "mb") return v * 1024 * 1024;
  if (unit == "g") return v * 1000 * 1000 * 1000;
  if (unit == "gb") return v * 1024 * 1024 * 1024;
  return -1;
}

// ---------------------------------------------------------------- commands
//
// The framing is the SDK's (assembly/resp.ts: Redis 7's rules, byte for
// byte); a command is told by its name's code, one compare per candidate.

const C_CLIENT = commandCode("CLIENT");
const C_COMMAND = commandCode("COMMAND");
const C_CONFIG = commandCode("CONFIG");
const C_DBSIZE = commandCode("DBSIZE");
const C_DEL = commandCode("DEL");
const C_ECHO = commandCode("ECHO");
const C_EXISTS = commandCode("EXISTS");
const C_FLUSHALL = commandCode("FLUSHALL");
const C_GET = commandCode("GET");
const C_INFO = commandCode("INFO");
const C_PING = commandCode("PING");
const C_QUIT = commandCode("QUIT");
const C_SELECT = commandCode("SELECT");
const C_SET = commandCode("SET");

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

/**
 * reuse -- an array of n u32 for e's new pieces: its current one or its
 * spare when either has that length, else null (the caller allocates; the
 * current one becomes the spare). A 1 KiB SET lies in one buffer or across
 * two, as the bytes before it fell: a key written again and again takes the
 * two arrays in turn and allocates nothing after its first two writes.
 */
function reuse(e: Entry, n: i32): StaticArray<u32> | null {
  const cur = e.rec;
  if (cur.length == n) return cur;
  const spare = e.spare;
  e.spare = cur;
  return spare && spare.length == n ? spare : null;
}

/** piecesOf -- where [off, off+len) of the stream lies, as triples: into e's arrays when one has the right length (reuse). */
function piecesOf(s: Stream, off: u32, len: u32, e: Entry | null = null): StaticArray<u32> {
  const k = s.pieces(off, len, scratch);
  const r = e ? reuse(e, k * 3) : null;
  const out = r ? r : new StaticArray<u32>(k * 3);
  memory.copy(changetype<usize>(out), changetype<usize>(scratch), <usize>k * 12);
  return out;
}

// ---------------------------------------------------------------- the store

/**
 * apply -- the effect of a logged command on the index (live path and replay
 * alike). packed: the record was logged packed (tryLogPacked): its copy's
 * pieces are the stream's packedPieces(). logged: it was just logged by
 * reference from s (tryLog): its pieces are s.loggedPieces().
 */
function apply(s: Stream, seq: u64, cmdLen: u32, packed: bool = false, logged: bool = false): i32 {
  const cmd = command();
  if (cmd == C_SET) {
    const old = lookup(s, 1);
    if (old) {
      // The key's entry becomes the new value's, in place: an overwrite
      // allocates nothing. The old record is dead; the cleaner tells its
      // place in the queue by the seq it was queued with.
      old.rec = packed ? s.packedPieces(reuse(old, s.packedCount * 3))
        : logged ? s.loggedPieces(reuse(old, s.loggedCount * 3)) : piecesOf(s, 0, cmdLen, old);
      old.seq = seq;
      old.len = cmdLen;
      old.voff = unchecked(argOff[2]);
      old.vlen = unchecked(argLen[2]);
      old.packed = packed;
      cleaner.died();
      cleaner.add(old);
      return 1;
    }
    const e = new Entry(seq, packed ? s.packedPieces() : logged ? s.loggedPieces() : piecesOf(s, 0, cmdLen), cmdLen, unchecked(argOff[2]), unchecked(argLen[2]), epoch);
    e.packed = packed;
    index.set(key(s, 1), unchecked(argLen[1]), e);
    cleaner.add(e);
    return 1;
  }
  if (cmd == C_DEL) {
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
  if (cmd == C_FLUSHALL) {
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
  const cmd = command();
  if (cmd == C_SET) {
    if (argc < 3) return arity(conn, "set");
    if (argc > 3) return err(conn, "ERR syntax error (this server supports SET key value, no options)");
    // While buffers are short, a small SET is copied densely into shared
    // buffers instead of holding the buffer it arrived in (a 16-byte value
    // would keep 2 KiB) until the cleaner comes round to it.
    const pack = buffersShort && cmdLen <= packBelow();
    const seq = pack ? s.tryLogPacked(0, cmdLen) : s.tryLog(0, cmdLen);
    if (seq < 0) return full(conn, <i32>seq);        // the pool is full: say so, serve on
    apply(s, <u64>seq, cmdLen, pack, !pack);   // durable before the +OK leaves
    replies.begin().ascii("+OK\r\n").send(conn);
  } else if (cmd == C_GET) {
    if (argc != 2) return arity(conn, "get");
    const e = lookup(s, 1);
    if (!e) return replies.begin().ascii("$-1\r\n").send(conn);
    bulkRange(conn, e.rec, e.voff, e.vlen);
  } else if (cmd == C_DEL) {
    if (argc < 2) return arity(conn, "del");
    let n = 0;
    for (let i = 1; i < argc && n == 0; i++) if (lookup(s, i)) n++;
    if (n) n = apply(s, logFreeing(s, cmdLen), cmdLen);   // only a DEL that changes something is logged; "DEL a a" is 1
    replies.begin().ascii(":").u64(n).ascii("\r\n").send(conn);
  } else if (cmd == C_EXISTS) {
    if (argc < 2) return arity(conn, "exists");
    let n = 0;
    for (let i = 1; i < argc; i++) if (lookup(s, i)) n++;
    replies.begin().ascii(":").u64(n).ascii("\r\n").send(conn);
  } else if (cmd == C_DBSIZE) {
    if (argc != 1) return arity(conn, "dbsize");
    replies.begin().ascii(":").u64(index.size).ascii("\r\n").send(conn);
  } else if (cmd == C_FLUSHALL) {
    if (argc > 2 || (argc == 2 && !is(s, 1, "SYNC") && !is(s, 1, "ASYNC"))) return err(conn, "ERR syntax error");
    apply(s, logFreeing(s, cmdLen), cmdLen);           // every SET before it is now dead: the cleaner drops them
    replies.begin().ascii("+OK\r\n").send(conn);
  } else if (cmd == C_PING) {
    if (argc > 2) return arity(conn, "ping");
    if (argc == 1) replies.begin().ascii("+PONG\r\n").send(conn);
    else bulkPieces(conn, piecesOf(s, argOff[1], argLen[1]), argLen[1]);
  } else if (cmd == C_ECHO) {
    if (argc != 2) return arity(conn, "echo");
    bulkPieces(conn, piecesOf(s, argOff[1], argLen[1]), argLen[1]);
  } else if (cmd == C_INFO) {
    // a bulk string needs its length first: measure the body, then send header and body
    const body = info(replies.begin()).length;
    replies.begin().ascii("$").u64(body).ascii("\r\n").flush(conn);
    info(replies.begin()).ascii("\r\n").send(conn);
  } else if (cmd == C_CONFIG && argc == 3 && is(s, 1, "GET") && is(s, 2, "proto-max-bulk-len")) {
    // the one setting kv-wal's config holds, named and answered as Redis does
    const v = maxBulk.toString();
    replies.begin().ascii("*2\r\n$18\r\nproto-max-bulk-len\r\n$").u64(v.length).ascii("\r\n").ascii(v).ascii("\r\n").send(conn);
  } else if (cmd == C_COMMAND || cmd == C_CONFIG) {
    replies.begin().ascii("*0\r\n").send(conn);       // enough for redis-cli and redis-benchmark
  } else if (cmd == C_SELECT) {
    if (argc != 2) return arity(conn, "select");
    if (!toNumber(unchecked(argOff[1]), unchecked(argLen[1])) || number < i32.MIN_VALUE || number > i32.MAX_VALUE) return err(conn, "ERR value is not an integer or out of range");
    if (number == 0) replies.begin().ascii("+OK\r\n").send(conn);
    else err(conn, "ERR DB index is out of range (this server has db 0 only)");
  } else if (cmd == C_QUIT) {
    replies.begin().ascii("+OK\r\n").send(conn);
    closeConnection(conn);
    closing.add(conn);
  } else if (cmd == C_CLIENT) {
    replies.begin().ascii("+OK\r\n").send(conn);
  } else {
    unknown(conn, s);
  }
}

/**
 * unknown -- Redis 7's answer, byte for byte: the name and the arguments
 * (128 bytes of each at most, and of the arguments together), each cut at a
 * NUL as printf cuts it, with '\r' and '\n' made spaces.
 */
function unknown(conn: u32, s: Stream): void {
  const b = replies.begin().ascii("-ERR unknown command '");
  quoted(b, s, 0, 128);
  b.ascii("', with args beginning with: ");
  let used: u32 = 0;
  for (let i = 1; i < argc && used < 128; i++) {
    b.byte(39);
    const n = quoted(b, s, i, 128 - used);
    b.ascii("' ");
    used += n + 3;
  }
  b.ascii("\r\n").send(conn);
}

/** quoted -- argument i's bytes up to max, or up to a NUL; '\r' and '\n' as spaces. How many. */
function quoted(b: ReplyBuilder, s: Stream, i: i32, max: u32): u32 {
  const n = min<u32>(argLen[i], max);
  for (let k: u32 = 0; k < n; k++) {
    const c = s.byteAt(argOff[i] + k);
    if (c == 0) return k;
    b.byte(c == 13 || c == 10 ? 32 : c);
  }
  return n;
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
    if (closing.has(conn)) continue;                   // after QUIT or a protocol error nothing more is read
    const s = streams.of(conn);
    if (s.full) {
      // a command larger than the stream holds (its pieces): Redis would wait
      // for up to 1 GiB; kv-wal cannot, and says so
      hangUp(conn, s, "Protocol error: command too large for this server (" + s.capacity.toString() + " pieces)");
      continue;
    }
    s.push(slot);
    for (;;) {
      const n = parse(s);
      if (n == 0) break;
      if (n < 0) {
        hangUp(conn, s, protoError);
        break;
      }
      execute(conn, s, <u32>n);
      s.consume(<u32>n);
      if (closing.has(conn)) break;                  // QUIT
    }
  }
  ring.release();
}

/**
 * hangUp -- a protocol error: answer it and close, as Redis does. Where the
 * stream went wrong, the next command's start cannot be known; reading on
 * would run the middle of a value as a command.
 */
function hangUp(conn: u32, s: Stream, why: string): void {
  const b = replies.begin().ascii("-ERR ");
  for (let i = 0; i < why.length; i++) {
    const c = why.charCodeAt(i);
    b.byte(c == 13 || c == 10 ? 32 : <u8>c);
  }
  b.ascii("\r\n").send(conn);
  s.reset();
  closeConnection(conn);
  closing.add(conn);
}

export function on_init(): void {
  configure(handlerConfigString());
}

export function on_replay(rec: Record): void {
  // a record was taken under the limit of its day: a config that lowers
  // proto-max-bulk-len since must not make replay drop it
  const limit = maxBulk;
  setMaxBulk(MAX_BULK);
  const s = Stream.fromRecord(rec, replayStream);
  const n = parse(s);
  setMaxBulk(limit);
  if (n > 0) apply(s, rec.seq, <u32>n);
}

export function on_close(conn: u32): void {
  closing.delete(conn);
  streams.close(conn);
}

/** on_clean -- the host says space is short: one bounded step of cleaning. */
export function on_clean(): void {
  cleaner.step();
}

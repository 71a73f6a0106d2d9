// http-wal.ts -- HTTP/1.1 POST bodies logged by reference, answered 201 with
// the sequence number once durable.
//
//   POST /anything   Content-Length: N   -> 201 Created, body "<seq>\n", X-Seq: <seq>
//   GET  /healthz                        -> 200 ok
//   anything else                        -> a proper 4xx/5xx
//
// Keep-alive and pipelining work: requests on a connection are parsed in
// order from its Stream, and their responses queued in order. Unsupported
// requests get an error response and, where the request's end cannot be
// known (chunked bodies, malformed heads), the connection is closed after it,
// so it never goes out of step. "Expect: 100-continue" is answered.
// Retention: the newest RETAIN durable bodies are kept, older ones released,
// so a server under wrk never fills its pool. Releasing them is this
// handler's cleaner (on_clean, called by the host when space is short), so
// it also has the reserve a cleaner gets: when the bodies it must keep fill
// the pool, a POST is answered 507 Insufficient Storage at once, and
// everything else is served as before.

import {
  Ring, Record, Stream, replies, closeConnection, committed, trim, lastError, Err, pressure, bufferAddress,
} from "paste-host/assembly";

const MAX_HEAD: u32 = 8192;
const MAX_BODY: u64 = 1 << 20;
/** The benchmark builds a copy-logging variant by flipping this (bench/handlers). */
const COPY_LOGGING: bool = false;
/** Retention: the newest RETAIN durable records are kept; older ones are released. */
const RETAIN: u64 = 16384;

class Conn {
  stream: Stream;
  continued: bool = false;   // sent "100 Continue" for the request at the cursor
  constructor(conn: u32) {
    this.stream = new Stream(conn);
  }
}

const conns = new Map<u32, Conn>();
let replayed: u64 = 0;

function respond(conn: u32, status: string, body: string, close: bool, seq: u64 = 0): void {
  const r = replies.begin().ascii("HTTP/1.1 ").ascii(status).ascii("\r\nContent-Type: text/plain\r\nContent-Length: ")
    .u64(body.length).ascii("\r\n");
  if (seq) r.ascii("X-Seq: ").u64(seq).ascii("\r\n");
  if (close) r.ascii("Connection: close\r\n");
  r.ascii("\r\n").ascii(body).send(conn);
  if (close) closeConnection(conn);
}

/** fits -- can a body of len bytes still arrive and be logged without eating into the cleaner's reserve? */
function fits(len: u64): bool {
  const p = pressure();
  const bufSize = <u64>(bufferAddress(1) - bufferAddress(0));
  const need = len / bufSize + 2;
  return <u64>p.free_bufs >= <u64>p.reserve_bufs + need;
}

/** headerValue -- the value of header `name` in [from, end) of the head, as (start, len); len -1 if absent. */
let hvStart: u32 = 0;
function headerValue(s: Stream, from: u32, end: u32, name: string): i32 {
  let line = from;
  while (line < end) {
    const eol = s.indexOfCrlf(line);
    if (eol < 0 || <u32>eol > end) return -1;
    const colon = s.indexOf(58 /* ':' */, line);
    if (colon > 0 && <u32>colon < <u32>eol && s.equalsNoCase(line, <u32>colon - line, name)) {
      let v = <u32>colon + 1;
      while (v < <u32>eol && (s.byteAt(v) == 32 || s.byteAt(v) == 9)) v++;
      let e = <u32>eol;
      while (e > v && (s.byteAt(e - 1) == 32 || s.byteAt(e - 1) == 9)) e--;
      hvStart = v;
      return <i32>(e - v);
    }
    line = <u32>eol + 2;
  }
  return -1;
}

/** handle -- one request at the cursor: bytes it took, or 0 if incomplete. Closes on what it cannot frame. */
function handle(c: Conn): u32 {
  const s = c.stream;
  const conn = s.conn;
  // the head ends at the first empty line
  let headEnd: i32 = -1;
  for (let at: u32 = 0; ; ) {
    const e = s.indexOfCrlf(at);
    if (e < 0) break;
    if (<u32>e + 3 < s.length + 1 && s.byteAt(<u32>e + 2) == 13 && s.byteAt(<u32>e + 3) == 10) {
      headEnd = e;
      break;
    }
    at = <u32>e + 2;
    if (at > MAX_HEAD) break;
  }
  if (headEnd < 0) {
    if (s.length > MAX_HEAD) {
      respond(conn, "431 Request Header Fields Too Large", "request head too large\n", true);
      return s.length;
    }
    return 0;
  }
  const head = <u32>headEnd + 4;
  // request line: METHOD SP TARGET SP HTTP/1.x
  const eol = <u32>s.indexOfCrlf(0);
  const sp1 = s.indexOf(32, 0);
  const sp2 = sp1 < 0 ? -1 : s.indexOf(32, <u32>sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || <u32>sp2 >= eol || eol - <u32>sp2 - 1 != 8 ||
      !(s.equalsNoCase(<u32>sp2 + 1, 8, "HTTP/1.1") || s.equalsNoCase(<u32>sp2 + 1, 8, "HTTP/1.0"))) {
    respond(conn, "400 Bad Request", "malformed request line\n", true);
    return s.length;
  }
  const http10 = s.equalsNoCase(<u32>sp2 + 1, 8, "HTTP/1.0");
  const connHdr = headerValue(s, eol + 2, <u32>headEnd + 2, "Connection");
  const closeAfter = connHdr >= 0 ? s.equalsNoCase(hvStart, <u32>connHdr, "close") : http10;

  if (headerValue(s, eol + 2, <u32>headEnd + 2, "Transfer-Encoding") >= 0) {
    respond(conn, "501 Not Implemented", "chunked bodies are not supported; send Content-Length\n", true);
    return s.length;
  }
  let bodyLen: i64 = 0;
  const cl = headerValue(s, eol + 2, <u32>headEnd + 2, "Content-Length");
  if (cl >= 0) {
    bodyLen = s.parseI64(hvStart, <u32>cl);
    if (bodyLen < 0) {
      respond(conn, "400 Bad Request", "invalid Content-Length\n", true);
      return s.length;
    }
  }
  const isPost = s.equalsNoCase(0, <u32>sp1, "POST");
  if (isPost && cl < 0) {
    respond(conn, "411 Length Required", "POST needs a Content-Length\n", true);
    return s.length;
  }
  if (<u64>bodyLen > MAX_BODY) {
    respond(conn, "413 Content Too Large", "bodies are limited to 1 MiB\n", true);
    return s.length;
  }
  if (isPost && <u64>s.length < <u64>head + <u64>bodyLen && !fits(<u64>bodyLen)) {
    // A body that cannot be kept would hold buffers while it arrives, until
    // none is left to receive the rest: refuse it now, from its length, and
    // close (its body is still coming and is not read).
    respond(conn, "507 Insufficient Storage", "the pool is full of retained bodies; try again later, or use a bigger pool\n", true);
    return s.length;
  }
  if (<u64>s.length < <u64>head + <u64>bodyLen) {
    const ex = headerValue(s, eol + 2, <u32>headEnd + 2, "Expect");
    if (!c.continued && ex >= 0 && s.equalsNoCase(hvStart, <u32>ex, "100-continue")) {
      replies.begin().ascii("HTTP/1.1 100 Continue\r\n\r\n").send(conn);
      c.continued = true;
    }
    return 0;   // the body is still arriving
  }
  const total = head + <u32>bodyLen;
  c.continued = false;
  if (isPost) {
    const seq = COPY_LOGGING ? <i64>s.logCopy(head, <u32>bodyLen) : s.tryLog(head, <u32>bodyLen);   // durable before the 201 leaves
    if (seq == <i64>Err.POOL_FULL || seq == <i64>Err.LOG_FULL) {
      respond(conn, "507 Insufficient Storage", "the pool is full of retained bodies; try again later, or use a bigger pool\n", closeAfter);
    } else {
      if (seq < 0) abort(lastError());
      respond(conn, "201 Created", seq.toString() + "\n", closeAfter, <u64>seq);
    }
  } else if (s.equalsNoCase(0, <u32>sp1, "GET") && s.equalsNoCase(<u32>sp1 + 1, <u32>sp2 - <u32>sp1 - 1, "/healthz")) {
    respond(conn, "200 OK", "ok\n", closeAfter);
  } else {
    const r = replies.begin().ascii("HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n");
    if (closeAfter) r.ascii("Connection: close\r\n");
    r.ascii("\r\nonly POST is logged\n").send(conn);
    if (closeAfter) closeConnection(conn);
  }
  return closeAfter ? s.length : total;
}

/** release -- every durable body but the newest RETAIN; in steps of 1024, not every batch. */
function release(): void {
  const done = committed();
  if (done > RETAIN + 1024) trim(done - RETAIN);
}

export function on_rx(ring: Ring): void {
  release();
  for (let i = ring.head; i != ring.tail; i = ring.next(i)) {
    const slot = ring.slot(i);
    const id = slot.conn;
    let c: Conn;
    if (conns.has(id)) c = conns.get(id);
    else {
      c = new Conn(id);
      conns.set(id, c);
    }
    c.stream.push(slot);
    for (;;) {
      const n = handle(c);
      if (n == 0) break;
      c.stream.consume(n);
      if (c.stream.length == 0) break;
    }
  }
  ring.release();
}

export function on_replay(rec: Record): void {
  replayed++;
}

/** on_clean -- space is short: release what retention lets go (there may be nothing). */
export function on_clean(): void {
  release();
}

export function on_close(conn: u32): void {
  if (conns.has(conn)) {
    conns.get(conn).stream.reset();
    conns.delete(conn);
  }
}

export function replay_count(): f64 { return <f64>replayed; }

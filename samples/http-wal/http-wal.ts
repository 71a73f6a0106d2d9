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
/** Connections closed after their last response: what else arrives on them is not read (RFC 9112 9.6). */
const closing = new Set<u32>();
let replayed: u64 = 0;

function respond(conn: u32, status: string, body: string, close: bool, seq: u64 = 0, headOnly: bool = false, extra: string = ""): void {
  const r = replies.begin().ascii("HTTP/1.1 ").ascii(status).ascii("\r\nContent-Type: text/plain\r\nContent-Length: ")
    .u64(body.length).ascii("\r\n").ascii(extra);
  if (seq) r.ascii("X-Seq: ").u64(seq).ascii("\r\n");
  if (close) r.ascii("Connection: close\r\n");
  r.ascii("\r\n");
  if (!headOnly) r.ascii(body);   // a response to HEAD has no body (RFC 9110 9.3.2), only its length
  r.send(conn);
  if (close) {
    closeConnection(conn);
    closing.add(conn);
  }
}

/** fits -- can a body of len bytes still arrive and be logged without eating into the cleaner's reserve? */
function fits(len: u64): bool {
  const p = pressure();
  const bufSize = <u64>(bufferAddress(1) - bufferAddress(0));
  const need = len / bufSize + 2;
  return <u64>p.free_bufs >= <u64>p.reserve_bufs + need;
}

// ------------------------------------------------------------------ framing
//
// RFC 9112 to the letter, and where it lets a server choose, the stricter
// choice: a request whose framing is in any doubt is refused and its
// connection closed, since the next request's start cannot be known. A front
// proxy that frames the stream differently would otherwise let a client
// smuggle a request past it. test/http-rfc9112.test.ts quotes each rule next
// to the request that tests it; test/fuzz/http-wal.fuzz.ts compares this
// parser with Node's (llhttp) on generated streams.

// What scanHead found (one request at a time, so module state is enough).
let headLen: u32 = 0;        // bytes of the head, through its empty line
let refusal: string = "";    // a status line: refuse the request with it and close
let refusalWhy: string = "";
let method: i32 = 0;
let http10: bool = false;
let bodyLen: i64 = 0;
let hasLength: bool = false;
let keepAlive: bool = true;
let expect100: bool = false;
let targetOff: u32 = 0;
let targetLen: u32 = 0;
let hosts: i32 = 0;
let teCount: i32 = 0;        // transfer codings listed, over every Transfer-Encoding line
let teChunkedLast: bool = false;
let teChunkedEarly: bool = false;

const GET = 1, HEAD = 2, POST = 3, OTHER = 4, UNKNOWN = 5;

function refuse(status: string, why: string): void {
  if (refusal.length == 0) {
    refusal = status;
    refusalWhy = why;
  }
}

/** tchar -- RFC 9110 5.6.2: the bytes of a token (method, field name, coding). */
function tchar(c: u8): bool {
  if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return true;
  return c == 33 || (c >= 35 && c <= 39) || c == 42 || c == 43 || c == 45 || c == 46 || c == 94 || c == 95 || c == 96 || c == 124 || c == 126;
}

/**
 * lineEnd -- the CR of the CRLF ending the line at `from`; -1 if not here
 * yet; -2 for a bare LF or a bare CR (RFC 9112 2.2), found as soon as it
 * arrives, so a head that can never end is refused at once.
 */
function lineEnd(s: Stream, from: u32): i32 {
  const lf = s.indexOf(10, from, from + MAX_HEAD + 2);
  const to = lf < 0 ? min<u32>(s.length, from + MAX_HEAD + 2) : <u32>lf;
  for (let cr = s.indexOf(13, from, to); cr >= 0; cr = s.indexOf(13, <u32>cr + 1, to)) {
    if (<u32>cr + 1 < to) return -2;   // a CR, and after it a byte that is not the line's LF
  }
  if (lf < 0) return -1;
  if (<u32>lf == from || s.byteAt(<u32>lf - 1) != 13) return -2;
  return lf - 1;
}

/**
 * scanHead -- the head at the cursor: its length, 0 if it has not all
 * arrived. A head that breaks a rule sets `refusal`; the first broken rule
 * gives the status.
 */
function scanHead(s: Stream): u32 {
  refusal = "";
  const first = lineEnd(s, 0);
  if (first == -1) return s.length > MAX_HEAD ? tooLarge() : 0;
  if (first == -2) return malformed("a bare LF or CR; lines end in CRLF");
  // find the empty line first: line ends are judged as they arrive, the rest once the head is whole
  let at = <u32>first + 2;
  for (;;) {
    const e = lineEnd(s, at);
    if (e == -1) return s.length > MAX_HEAD ? tooLarge() : 0;
    if (e == -2) return malformed("a bare LF or CR; lines end in CRLF");
    if (<u32>e > MAX_HEAD) return tooLarge();
    if (<u32>e == at) break;
    at = <u32>e + 2;
  }
  headLen = at + 2;
  method = 0;
  http10 = false;
  requestLine(s, <u32>first);
  hosts = 0;
  hasLength = false;
  bodyLen = 0;
  teCount = 0;
  teChunkedLast = false;
  teChunkedEarly = false;
  expect100 = false;
  keepAlive = !http10;
  let connClose = false;
  let connKeep = false;
  for (let line = <u32>first + 2; line < at; ) {
    const e = <u32>lineEnd(s, line);
    const f = field(s, line, e);
    if (f == F_CONNECTION_CLOSE) connClose = true;
    else if (f == F_CONNECTION_KEEP) connKeep = true;
    line = e + 2;
  }
  keepAlive = !connClose && (!http10 || connKeep);
  framing();
  return headLen;
}

function tooLarge(): u32 {
  refuse("431 Request Header Fields Too Large", "request head too large (8 KiB at most)");
  return 1;
}

function malformed(why: string): u32 {
  refuse("400 Bad Request", why);
  return 1;   // scanHead's answer: not incomplete (the refusal says the rest)
}

/** requestLine -- RFC 9112 3: method SP request-target SP HTTP-version, one SP each. */
function requestLine(s: Stream, end: u32): void {
  let i: u32 = 0;
  while (i < end && tchar(s.byteAt(i))) i++;
  if (i == 0 || i == end || s.byteAt(i) != 32) { malformed("malformed request line (method SP target SP HTTP/1.1)"); return; }
  method = methodOf(s, i);
  targetOff = ++i;
  while (i < end && s.byteAt(i) > 32 && s.byteAt(i) < 127) i++;   // VCHAR: no whitespace, no CTL, no obs-text in a URI
  targetLen = i - targetOff;
  if (targetLen == 0 || i == end || s.byteAt(i) != 32) { malformed("malformed request line (method SP target SP HTTP/1.1)"); return; }
  i++;
  // HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3)
  const v = i;
  if (end - v != 8 || !bytesAre(s, v, "HTTP/") || !digit(s.byteAt(v + 5)) || s.byteAt(v + 6) != 46 || !digit(s.byteAt(v + 7))) {
    { malformed("malformed request line (method SP target SP HTTP/1.1)"); return; }
  }
  http10 = bytesAre(s, v, "HTTP/1.0");
  if (!http10 && !bytesAre(s, v, "HTTP/1.1")) refuse("505 HTTP Version Not Supported", "this server speaks HTTP/1.1 and HTTP/1.0");
  if (method == UNKNOWN) refuse("501 Not Implemented", "unknown method");
}

function digit(c: u8): bool {
  return c >= 48 && c <= 57;
}

/** bytesAre -- do the bytes at off spell s exactly (case matters)? */
function bytesAre(s: Stream, off: u32, t: string): bool {
  for (let i = 0; i < t.length; i++) if (s.byteAt(off + <u32>i) != <u8>t.charCodeAt(i)) return false;
  return true;
}

/** methodOf -- methods are case-sensitive (RFC 9110 9.1); CONNECT changes the framing, so it is not served. */
function methodOf(s: Stream, len: u32): i32 {
  if (len == 3 && bytesAre(s, 0, "GET")) return GET;
  if (len == 4 && bytesAre(s, 0, "HEAD")) return HEAD;
  if (len == 4 && bytesAre(s, 0, "POST")) return POST;
  const known = ["PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"];
  for (let k = 0; k < known.length; k++) if (<u32>known[k].length == len && bytesAre(s, 0, known[k])) return OTHER;
  return UNKNOWN;
}

const F_OTHER = 0, F_CONNECTION_CLOSE = 1, F_CONNECTION_KEEP = 2;

/**
 * field -- one field line [line, e): RFC 9112 5, field-name ":" OWS
 * field-value OWS. The fields that frame the request are read here.
 */
function field(s: Stream, line: u32, e: u32): i32 {
  const c0 = s.byteAt(line);
  if (c0 == 32 || c0 == 9) { malformed("a field line starts with whitespace (obs-fold, or space before the first field)"); return F_OTHER; }
  let i = line;
  while (i < e && tchar(s.byteAt(i))) i++;
  if (i == line || i == e || s.byteAt(i) != 58 /* ':' */) {
    { malformed(i < e && (s.byteAt(i) == 32 || s.byteAt(i) == 9) ? "whitespace between a field name and its colon" : "malformed field line"); return F_OTHER; }
  }
  const nameLen = i - line;
  let v = i + 1;
  while (v < e && (s.byteAt(v) == 32 || s.byteAt(v) == 9)) v++;
  let ve = e;
  while (ve > v && (s.byteAt(ve - 1) == 32 || s.byteAt(ve - 1) == 9)) ve--;
  for (let k = v; k < ve; k++) {
    const c = s.byteAt(k);
    if ((c < 32 && c != 9) || c == 127) { malformed("a control character in a field value"); return F_OTHER; }
  }
  if (s.equalsNoCase(line, nameLen, "Content-Length")) contentLength(s, v, ve);
  else if (s.equalsNoCase(line, nameLen, "Transfer-Encoding")) transferEncoding(s, v, ve);
  else if (s.equalsNoCase(line, nameLen, "Host")) hosts++;
  else if (s.equalsNoCase(line, nameLen, "Expect")) expect100 = s.equalsNoCase(v, ve - v, "100-continue");
  else if (s.equalsNoCase(line, nameLen, "Connection")) return connectionOptions(s, v, ve);
  return F_OTHER;
}

/** contentLength -- 1*DIGIT, once (RFC 9112 6.3 rule 5; a repeated field, even an equal one, is refused). */
function contentLength(s: Stream, v: u32, ve: u32): void {
  if (hasLength) { malformed("more than one Content-Length"); return; }
  hasLength = true;
  if (v == ve) { malformed("invalid Content-Length"); return; }
  let n: i64 = 0;
  for (let k = v; k < ve; k++) {
    const c = s.byteAt(k);
    if (!digit(c)) { malformed("invalid Content-Length"); return; }
    if (n > (i64.MAX_VALUE - 9) / 10) {
      n = i64.MAX_VALUE;   // past any limit: refused as too large below, framing still known to be invalid
      { refuse("413 Content Too Large", "bodies are limited to 1 MiB"); return; }
    }
    n = n * 10 + <i64>(c - 48);
  }
  bodyLen = n;
}

/** transferEncoding -- the codings, in order, across every Transfer-Encoding line (RFC 9112 6.1). */
function transferEncoding(s: Stream, v: u32, ve: u32): void {
  let k = v;
  for (;;) {
    while (k < ve && (s.byteAt(k) == 32 || s.byteAt(k) == 9)) k++;
    const start = k;
    while (k < ve && tchar(s.byteAt(k))) k++;
    if (k == start) { malformed("invalid Transfer-Encoding"); return; }
    if (teChunkedLast) teChunkedEarly = true;   // a coding after chunked: chunked is not the final one
    teChunkedLast = s.equalsNoCase(start, k - start, "chunked");
    teCount++;
    while (k < ve && (s.byteAt(k) == 32 || s.byteAt(k) == 9)) k++;
    if (k == ve) return;
    if (s.byteAt(k) != 44 /* ',' */) { malformed("invalid Transfer-Encoding"); return; }
    k++;
  }
}

/** connectionOptions -- the Connection field's comma-separated options, case-insensitive (RFC 9110 7.6.1). */
function connectionOptions(s: Stream, v: u32, ve: u32): i32 {
  let r = F_OTHER;
  let k = v;
  while (k < ve) {
    while (k < ve && (s.byteAt(k) == 32 || s.byteAt(k) == 9 || s.byteAt(k) == 44)) k++;
    const start = k;
    while (k < ve && s.byteAt(k) != 44 && s.byteAt(k) != 32 && s.byteAt(k) != 9) k++;
    if (s.equalsNoCase(start, k - start, "close")) return F_CONNECTION_CLOSE;
    if (s.equalsNoCase(start, k - start, "keep-alive")) r = F_CONNECTION_KEEP;
  }
  return r;
}

/** framing -- RFC 9112 6.3's rules for a request's body length, in order, and 3.2's for Host. */
function framing(): void {
  if (teCount > 0) {
    if (http10) { malformed("Transfer-Encoding in an HTTP/1.0 request"); return; }
    if (hasLength) { malformed("both Transfer-Encoding and Content-Length"); return; }
    if (!teChunkedLast || teChunkedEarly) { malformed("chunked is not the final transfer coding"); return; }
    refuse("501 Not Implemented", "chunked bodies are not supported; send Content-Length");
    return;
  }
  if (!http10 && hosts == 0) { malformed("no Host field"); return; }
  if (hosts > 1) { malformed("more than one Host field"); return; }
  if (method == POST && !hasLength) { refuse("411 Length Required", "POST needs a Content-Length"); return; }
  if (<u64>bodyLen > MAX_BODY) refuse("413 Content Too Large", "bodies are limited to 1 MiB");
}

/** handle -- one request at the cursor: bytes it took, or 0 if incomplete. Closes on what it cannot frame. */
function handle(c: Conn): u32 {
  const s = c.stream;
  const conn = s.conn;
  // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the
  // request-line. A bare LF there is ignored too, as llhttp does: between
  // requests it can frame nothing, so both sides of a proxy agree on it.
  if (s.byteAt(0) == 10) return 1;
  if (s.length >= 2 && s.byteAt(0) == 13 && s.byteAt(1) == 10) return 2;
  if (s.length == 1 && s.byteAt(0) == 13) return 0;
  if (scanHead(s) == 0) return 0;
  if (refusal.length) {
    respond(conn, refusal, refusalWhy + "\n", true, 0, method == HEAD);
    return s.length;
  }
  const head = headLen;
  if (method == POST && <u64>s.length < <u64>head + <u64>bodyLen && !fits(<u64>bodyLen)) {
    // A body that cannot be kept would hold buffers while it arrives, until
    // none is left to receive the rest: refuse it now, from its length, and
    // close (its body is still coming and is not read).
    respond(conn, "507 Insufficient Storage", "the pool is full of retained bodies; try again later, or use a bigger pool\n", true);
    return s.length;
  }
  if (<u64>s.length < <u64>head + <u64>bodyLen) {
    if (!c.continued && expect100) {
      replies.begin().ascii("HTTP/1.1 100 Continue\r\n\r\n").send(conn);
      c.continued = true;
    }
    return 0;   // the body is still arriving
  }
  c.continued = false;
  serve(conn, s, head);
  return keepAlive ? head + <u32>bodyLen : s.length;
}

/** serve -- a request framed and whole: log a POST's body, answer the rest. */
function serve(conn: u32, s: Stream, head: u32): void {
  const closeAfter = !keepAlive;
  if (method == POST) {
    const seq = COPY_LOGGING ? <i64>s.logCopy(head, <u32>bodyLen) : s.tryLog(head, <u32>bodyLen);   // durable before the 201 leaves
    if (seq == <i64>Err.POOL_FULL || seq == <i64>Err.LOG_FULL) {
      respond(conn, "507 Insufficient Storage", "the pool is full of retained bodies; try again later, or use a bigger pool\n", closeAfter);
    } else {
      if (seq < 0) abort(lastError());
      respond(conn, "201 Created", seq.toString() + "\n", closeAfter, <u64>seq);
    }
  } else if ((method == GET || method == HEAD) && targetLen == 8 && bytesAre(s, targetOff, "/healthz")) {
    respond(conn, "200 OK", "ok\n", closeAfter, 0, method == HEAD);
  } else {
    respond(conn, "405 Method Not Allowed", "only POST is logged\n", closeAfter, 0, method == HEAD, "Allow: POST\r\n");
  }
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
    if (closing.has(id)) continue;
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
      if (c.stream.length == 0 || closing.has(id)) break;
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
  closing.delete(conn);
  if (conns.has(conn)) {
    conns.get(conn).stream.reset();
    conns.delete(conn);
  }
}

export function replay_count(): f64 { return <f64>replayed; }

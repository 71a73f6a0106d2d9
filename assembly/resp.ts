// resp.ts -- RESP2 framing, as redis-server 7 frames it: where one command
// ends and the next begins, for a handler that speaks the Redis protocol
// (samples/kv-wal). parse(s) frames the command at a Stream's cursor and
// leaves its arguments in argc, argOff and argLen (offsets into the stream,
// in place: nothing is copied); command() gives the name's code to compare
// with commandCode("SET"). One command at a time: the state is this
// module's, so the helpers on the fast path hold no reference the collector
// must see (see byte() below).
//
//   import { parse, argc, argOff, argLen, protoError, command, commandCode } from "paste-host/assembly/resp";

import { Stream } from "./stream";

// Redis 7's framing limits, so that a stream is framed where redis-server frames it.
const INLINE_MAX: u32 = 64 * 1024;                 // PROTO_INLINE_MAX_SIZE: a line without its end
export const MAX_BULK: i64 = 512 * 1024 * 1024;    // proto-max-bulk-len's default, and the most a bulk may be here
const MAX_MULTIBULK: i64 = 2147483647;             // INT_MAX: more is "invalid multibulk length"

// A command's arguments, as offsets into the stream. They grow with the
// command: a count of a million costs nothing until its arguments arrive,
// and what arrives is bounded by the stream's capacity.
export let argOff = new StaticArray<u32>(16);
export let argLen = new StaticArray<u32>(16);
export let argc: i32 = 0;
/** Why the last parse() returned -1: Redis's own message. */
export let protoError: string = "";
/** The value the last toNumber() that succeeded read. */
export let number: i64 = 0;
/** proto-max-bulk-len: the longest bulk string taken (setMaxBulk lowers it). */
export let maxBulk: i64 = MAX_BULK;

/** setMaxBulk -- the longest bulk string parse() takes, 1 to MAX_BULK (Redis's proto-max-bulk-len). */
export function setMaxBulk(v: i64): void {
  maxBulk = v;
}

// ------------------------------------------------------------------ parsing
//
// The framing is redis-server 7's (networking.c), rule for rule, so that a
// client, a proxy and this parser always agree on where one command ends and the
// next begins: test/fuzz/kv-wal.fuzz.test.ts compares the two on generated streams.
// Redis finds a line's end with strchr, which stops at a NUL byte (the line
// then never ends), takes the byte after a '\r' as its '\n' without looking,
// and skips the two bytes after a bulk string the same way. The one rule
// kept out is quoting in inline commands: see parseInline.

function setArg(i: i32, off: u32, len: u32): void {
  if (i >= argOff.length) {
    const o = new StaticArray<u32>(argOff.length * 2);
    const l = new StaticArray<u32>(argOff.length * 2);
    memory.copy(changetype<usize>(o), changetype<usize>(argOff), <usize>argOff.length * 4);
    memory.copy(changetype<usize>(l), changetype<usize>(argLen), <usize>argLen.length * 4);
    argOff = o;
    argLen = l;
  }
  unchecked((argOff[i] = off));
  unchecked((argLen[i] = len));
}

// The parser reads the stream it parses through byte(): the first piece
// straight from memory (nearly every byte of a command's framing lies there;
// only a value runs on into the next buffer), the rest through the stream.
// The stream is a global, not an argument, so the helpers below hold no
// reference the collector must see: AssemblyScript gives such a function no
// shadow-stack frame (a store, a bounds check and a memory.fill per call).
// command() and toNumber() read the command parse() just framed, from the
// same stream.
let src: Stream = new Stream(0, 1);   // parse() sets it
let srcAt: usize = 0;
let srcLen: u32 = 0;

/** byte -- byte i of the stream being parsed. */
// @ts-ignore: decorator
@inline function byte(i: u32): u8 {
  return i < srcLen ? load<u8>(srcAt + i) : farByte(i);
}

/** farByte -- byte i past the first piece (a function of its own: the frame stays off the fast path). */
function farByte(i: u32): u8 {
  return src.byteAt(i);
}

/** lineEnd -- the first byte c at or after from, as strchr finds it: -1 if a NUL or the end comes first. */
function lineEnd(from: u32, c: u8): i32 {
  let i = from;
  for (; i < srcLen; i++) {
    const b = load<u8>(srcAt + i);
    if (b == c) return <i32>i;
    if (b == 0) return -1;
  }
  return farLineEnd(i, c);
}

function farLineEnd(from: u32, c: u8): i32 {
  const at = src.indexOfEither(c, 0, from);
  return at < 0 || src.byteAt(<u32>at) == 0 ? -1 : at;
}

/** toNumber -- Redis's string2ll: [off, off+len) as a decimal i64 into `number`; no '+', no leading zeros, no "-0". */
export function toNumber(off: u32, len: u32): bool {
  if (len == 0 || len >= 21) return false;
  if (len == 1 && byte(off) == 48) {
    number = 0;
    return true;
  }
  let i: u32 = 0;
  const neg = byte(off) == 45;
  if (neg && ++i == len) return false;
  const first = byte(off + i);
  if (first < 49 || first > 57) return false;
  let v: u64 = 0;
  for (; i < len; i++) {
    const c = byte(off + i);
    if (c < 48 || c > 57) return false;
    if (v > (u64.MAX_VALUE - 9) / 10) return false;   // the next digit could overflow
    v = v * 10 + <u64>(c - 48);
  }
  if (neg ? v > <u64>i64.MAX_VALUE + 1 : v > <u64>i64.MAX_VALUE) return false;
  number = neg ? -<i64>v : <i64>v;
  return true;
}

/**
 * digitsTo -- the common case of a count line, "*3\r" or "$1024\r" from the
 * digits at `from`: 1 to 18 digits with no leading zero, then a '\r', all in
 * the first piece. The '\r''s position, with `number` set to the value; -1
 * for anything else, which the general path (lineEnd, toNumber) then frames
 * exactly as Redis does. Both agree wherever this one answers: such a line
 * holds no NUL and no earlier '\r', and string2ll takes its digits.
 */
function digitsTo(from: u32): i32 {
  const end = min<u32>(srcLen, from + 19);
  if (from >= end) return -1;
  let c = load<u8>(srcAt + from);
  if (c < 49 || c > 57) return -1;
  let v: i64 = <i64>(c - 48);
  for (let i = from + 1; i < end; i++) {
    c = load<u8>(srcAt + i);
    if (c == 13) {
      number = v;
      return <i32>i;
    }
    if (c < 48 || c > 57) return -1;
    v = v * 10 + <i64>(c - 48);
  }
  return -1;
}

/** parse -- one command at the stream's cursor: bytes it takes, 0 if incomplete, -1 on a protocol error. */
export function parse(s: Stream): i32 {
  argc = 0;
  src = s;
  srcAt = s.frontAddress;
  srcLen = s.frontLength;
  const length = s.length;
  if (length == 0) return 0;
  if (byte(0) != 42 /* '*' */) return parseInline(length);
  let r = digitsTo(1);
  if (r < 0) {
    r = lineEnd(0, 13);
    if (r < 0) return length > INLINE_MAX ? error("Protocol error: too big mbulk count string") : 0;
    if (<u32>r + 2 > length) return 0;            // the '\n' is not here yet
    if (!toNumber(1, <u32>r - 1)) return error("Protocol error: invalid multibulk length");
  } else if (<u32>r + 2 > length) {
    return 0;
  }
  if (number > MAX_MULTIBULK) return error("Protocol error: invalid multibulk length");
  const n = number;
  let pos = <u32>r + 2;
  if (n <= 0) return <i32>pos;                      // "*0", "*-1": nothing to run
  for (let i: i64 = 0; i < n; i++) {
    if (pos >= length) return 0;
    let e = byte(pos) == 36 /* '$' */ ? digitsTo(pos + 1) : -1;
    if (e < 0) {
      e = lineEnd(pos, 13);
      if (e < 0) return length - pos > INLINE_MAX ? error("Protocol error: too big bulk count string") : 0;
      if (<u32>e + 2 > length) return 0;
      const lead = byte(pos);
      if (lead != 36 /* '$' */) return error("Protocol error: expected '$', got '" + String.fromCharCode(lead) + "'");
      if (!toNumber(pos + 1, <u32>e - pos - 1)) return error("Protocol error: invalid bulk length");
    } else if (<u32>e + 2 > length) {
      return 0;
    }
    if (number < 0 || number > maxBulk) return error("Protocol error: invalid bulk length");
    const start = <u32>e + 2;
    if (<u64>start + <u64>number + 2 > <u64>length) return 0;
    setArg(<i32>i, start, <u32>number);
    pos = start + <u32>number + 2;                  // Redis skips the two bytes after a bulk unseen
  }
  argc = <i32>n;
  return <i32>pos;
}

/** isSpace -- C's isspace: what Redis skips between inline arguments. */
export function isSpace(c: u8): bool {
  return c == 32 || (c >= 9 && c <= 13);
}

/**
 * parseInline -- "PING\r\n", "SET k v\n": Redis's sdssplitargs on the line
 * up to its '\n' (a '\r' before it dropped). An argument ends at a space, a
 * tab, '\r' or '\n'. Quoted arguments ("a b", "\x41") are refused, with a
 * protocol error: their bytes are not the bytes that arrived, and a command
 * is logged as it arrived. Clients send arrays of bulk strings; quoting is
 * for people at a terminal, and redis-cli sends arrays too.
 */
function parseInline(length: u32): i32 {
  const nl = lineEnd(0, 10);
  if (nl < 0) return length > INLINE_MAX ? error("Protocol error: too big inline request") : 0;
  const end: u32 = nl > 0 && byte(<u32>nl - 1) == 13 ? <u32>nl - 1 : <u32>nl;
  let i: u32 = 0;
  for (;;) {
    while (i < end && isSpace(byte(i))) i++;
    if (i == end) break;
    const start = i;
    for (; i < end; i++) {
      const c = byte(i);
      if (c == 32 || c == 9 || c == 10 || c == 13) break;
      if (c == 34 || c == 39) return error("Protocol error: quoted inline arguments are not supported (send an array of bulk strings)");
    }
    setArg(argc++, start, i - start);
  }
  return nl + 1;
}

function error(msg: string): i32 {
  protoError = msg;
  argc = 0;
  return -1;
}

/**
 * commandCode -- a command name of at most 8 ASCII letters as one u64 (7
 * bits a byte, upper-cased, and the length in the top byte), so that a
 * command is told by one compare instead of a string compare per candidate.
 */
export function commandCode(name: string): u64 {
  let v: u64 = <u64>name.length << 56;
  for (let i = 0; i < name.length; i++) v |= <u64>upper(<u8>name.charCodeAt(i)) << (<u64>i * 7);
  return v;
}

function upper(c: u8): u8 {
  return c >= 97 && c <= 122 ? c - 32 : c;
}

/** command -- the code of argument 0 of the command parse() just framed, as commandCode; 0 (no command's) if it cannot be one. */
export function command(): u64 {
  if (argc == 0) return 0;
  const len = unchecked(argLen[0]);
  if (len > 8) return 0;
  const off = unchecked(argOff[0]);
  let v: u64 = <u64>len << 56;
  for (let i: u32 = 0; i < len; i++) {
    const c = byte(off + i);
    if (c >= 0x80) return 0;
    v |= <u64>upper(c) << (<u64>i * 7);
  }
  return v;
}

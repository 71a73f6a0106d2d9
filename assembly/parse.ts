// parse.ts -- parsing on (ptr, len) in place: no allocation, no copy. Bytes
// stay in the pool buffer they arrived in.

/** indexOf -- first position of byte b in [ptr+from, ptr+len), or -1. */
export function indexOf(ptr: usize, len: u32, b: u8, from: u32 = 0): i32 {
  for (let i = from; i < len; i++) if (load<u8>(ptr + i) == b) return <i32>i;
  return -1;
}

/** indexOfCrlf -- first "\r\n" in [ptr+from, ptr+len), or -1. */
export function indexOfCrlf(ptr: usize, len: u32, from: u32 = 0): i32 {
  for (let i = from; i + 1 < len; i++) {
    if (load<u8>(ptr + i) == 13 && load<u8>(ptr + i + 1) == 10) return <i32>i;
  }
  return -1;
}

/** equalsAscii -- do the len bytes at ptr spell s exactly? */
export function equalsAscii(ptr: usize, len: u32, s: string): bool {
  if (<u32>s.length != len) return false;
  for (let i: u32 = 0; i < len; i++) if (load<u8>(ptr + i) != <u8>s.charCodeAt(i)) return false;
  return true;
}

/** equalsAsciiNoCase -- the same, ignoring ASCII case (for protocol verbs). */
export function equalsAsciiNoCase(ptr: usize, len: u32, s: string): bool {
  if (<u32>s.length != len) return false;
  for (let i: u32 = 0; i < len; i++) {
    let c = load<u8>(ptr + i);
    if (c >= 97 && c <= 122) c -= 32;
    let d = <u8>s.charCodeAt(i);
    if (d >= 97 && d <= 122) d -= 32;
    if (c != d) return false;
  }
  return true;
}

/** startsWithAscii -- do the bytes at ptr begin with s? */
export function startsWithAscii(ptr: usize, len: u32, s: string): bool {
  const n = <u32>s.length;
  return n <= len && equalsAscii(ptr, n, s);
}

/** parseU64 -- a decimal number filling all len bytes, or -1 if it is not one (or overflows 2^63). */
export function parseU64(ptr: usize, len: u32): i64 {
  if (len == 0 || len > 18) return -1;
  let v: i64 = 0;
  for (let i: u32 = 0; i < len; i++) {
    const c = load<u8>(ptr + i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

/** bytesEqual -- compare len bytes at a and b. */
export function bytesEqual(a: usize, b: usize, len: u32): bool {
  return memory.compare(a, b, len) == 0;
}

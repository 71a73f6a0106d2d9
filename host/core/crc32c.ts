// crc32c.ts -- crc32c (Castagnoli) through the native library: the SSE4.2
// instruction where the CPU has it, the table path otherwise, same results.
import { native } from "./native.js";

/** crc32c -- checksum of bytes, continuing from crc (0 to start). */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  return native().crc32c(crc, bytes, bytes.byteLength) as number;
}
